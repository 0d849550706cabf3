"""The URL signing key: from AIGC_URL_SIGNING_KEY, else made once in the var dir and shared
by every process; the API does not start without one."""

from __future__ import annotations

import stat
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from aigc.errors import Forbidden
from aigc.settings import Settings
from aigc.signing import KEY_FILE, UrlSigner, load_or_create_key, url_signing_key

SECRET = "s" * 40


def test_the_key_file_is_made_once_private_and_reused(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: load_or_create_key(var_dir), range(16)))
    assert len(keys) == 1
    [key] = keys
    assert len(key) == 64
    path = var_dir / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in var_dir.iterdir()] == [KEY_FILE]  # no temporary files left
    assert url_signing_key(Settings(var_dir=var_dir)) == key


def test_the_setting_wins_over_the_file(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, url_signing_key=SecretStr(SECRET))
    assert url_signing_key(settings) == SECRET
    assert not (tmp_path / KEY_FILE).exists()


def test_a_short_setting_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(url_signing_key=SecretStr("changeme"))


@pytest.mark.parametrize("ttl", [0, 7 * 24 * 3600 + 1])
def test_the_ttl_is_bounded(ttl: int) -> None:
    with pytest.raises(ValidationError):
        Settings(url_ttl_s=ttl)


def test_no_key_to_be_had_stops_the_api(tmp_path: Path) -> None:
    from api.main import create_app

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings = Settings(
        var_dir=blocker / "var",
        database_url="postgresql+psycopg://postgres@127.0.0.1:1/none",
        redis_url="redis://127.0.0.1:1/0",
    )
    with pytest.raises(RuntimeError, match="AIGC_URL_SIGNING_KEY"):
        create_app(settings)


def test_signatures_bind_the_id_and_expiry() -> None:
    signer = UrlSigner(SECRET.encode(), ttl_s=60)
    artifact, other = uuid.uuid4(), uuid.uuid4()
    expires = 2_000_000_000
    good = signer.signature(artifact, expires)
    signer.check(artifact, str(expires), good, now=expires - 1)
    signer.check(artifact, str(expires), good, now=expires)  # valid through its last second
    for args in [
        (other, str(expires), good),
        (artifact, str(expires + 1), good),
        (artifact, str(expires), signer.signature(other, expires)),
        (artifact, str(expires), UrlSigner(b"t" * 40, 60).signature(artifact, expires)),
    ]:
        with pytest.raises(Forbidden, match="not valid"):
            signer.check(*args, now=expires - 1)
    with pytest.raises(Forbidden, match="expired"):
        signer.check(artifact, str(expires), good, now=expires + 1)
