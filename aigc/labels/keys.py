"""The deployment's label key: AIGC_LABEL_SIGNING_KEY, else a file made once in
AIGC_VAR_DIR, separate from the URL key (a leaked download link's key must not forge
labels)."""

from __future__ import annotations

from aigc.labels.label import LabelSigner
from aigc.private_file import read_private
from aigc.settings import Settings
from aigc.signing import load_or_create_key

KEY_FILE = "label-signing-key"


def label_signing_key(settings: Settings, *, create: bool = True) -> str:
    """Raises RuntimeError, saying what to do, when there is neither setting nor file. With
    `create=False` (a verifier) a missing file is an error too: a key made now would call
    every existing label invalid."""
    if settings.label_signing_key is not None:
        return settings.label_signing_key.get_secret_value()
    path = settings.var_dir / KEY_FILE
    try:
        if create:
            return load_or_create_key(settings.var_dir, KEY_FILE)
        key = read_private(path)
        if not key:
            raise RuntimeError(
                f"no label signing key: AIGC_LABEL_SIGNING_KEY is unset and {path} does not "
                "exist; verify where the deployment's key is (its AIGC_VAR_DIR or setting)"
            )
        return key
    except OSError as exc:
        raise RuntimeError(
            f"no label signing key: AIGC_LABEL_SIGNING_KEY is unset and "
            f"{settings.var_dir / KEY_FILE} cannot be read or created ({exc}); set "
            "AIGC_LABEL_SIGNING_KEY to a random secret shared by every worker and API "
            "process (e.g. `openssl rand -hex 32`)"
        ) from exc


def label_signer(settings: Settings, *, create: bool = True) -> LabelSigner:
    key = label_signing_key(settings, create=create)
    return LabelSigner(key.encode(), settings.label_producer)
