"""The label key: AIGC_LABEL_SIGNING_KEY, else its own file in the var dir, never the URL key's;
a verifier never makes one."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from aigc.labels.keys import KEY_FILE, label_signing_key
from aigc.settings import Settings
from aigc.signing import url_signing_key

SECRET = "l" * 40


def test_the_label_key_file_is_its_own(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    with pytest.raises(RuntimeError, match="no label signing key"):
        label_signing_key(settings, create=False)
    key = label_signing_key(settings)
    assert (tmp_path / KEY_FILE).is_file() and len(key) == 64
    assert label_signing_key(settings, create=False) == key
    assert url_signing_key(settings) != key


def test_the_setting_wins_and_is_checked(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, label_signing_key=SecretStr(SECRET))
    assert label_signing_key(settings, create=False) == SECRET
    assert not (tmp_path / KEY_FILE).exists()
    assert SECRET not in repr(settings)
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(label_signing_key=SecretStr("short"))
