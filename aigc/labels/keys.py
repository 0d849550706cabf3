"""The deployment's label key: AIGC_LABEL_SIGNING_KEY, else a file made once in
AIGC_VAR_DIR, separate from the URL key (a leaked download link's key must not forge
labels)."""

from __future__ import annotations

from aigc.labels.label import LabelSigner
from aigc.settings import Settings
from aigc.signing import load_or_create_key

KEY_FILE = "label-signing-key"


def label_signing_key(settings: Settings) -> str:
    """Raises RuntimeError, saying what to do, when there is neither setting nor file."""
    if settings.label_signing_key is not None:
        return settings.label_signing_key.get_secret_value()
    try:
        return load_or_create_key(settings.var_dir, KEY_FILE)
    except OSError as exc:
        raise RuntimeError(
            f"no label signing key: AIGC_LABEL_SIGNING_KEY is unset and "
            f"{settings.var_dir / KEY_FILE} cannot be read or created ({exc}); set "
            "AIGC_LABEL_SIGNING_KEY to a random secret shared by every worker and API "
            "process (e.g. `openssl rand -hex 32`)"
        ) from exc


def label_signer(settings: Settings) -> LabelSigner:
    return LabelSigner(label_signing_key(settings).encode(), settings.label_producer)
