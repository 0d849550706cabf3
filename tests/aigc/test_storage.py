from __future__ import annotations

from pathlib import Path

import pytest

from aigc.storage import InvalidKey, LocalStore


def test_put_then_read_back(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("jobs/a/1/0.txt", b"hello")
    assert store.exists("jobs/a/1/0.txt")
    with store.open("jobs/a/1/0.txt") as f:
        assert f.read() == b"hello"
    assert not [p for p in tmp_path.rglob(".tmp-*")], "temporary files left behind"
    store.delete("jobs/a/1/0.txt")
    assert not store.exists("jobs/a/1/0.txt")


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "../escape", "a/../../b", "a//b", "a/./b", "a\\..\\b", "nul\x00"]
)
def test_keys_cannot_escape_the_store(tmp_path: Path, key: str) -> None:
    with pytest.raises(InvalidKey):
        LocalStore(tmp_path / "store").put(key, b"x")


def test_symlink_inside_store_cannot_lead_out(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(InvalidKey):
        LocalStore(root).put("link/outside.txt", b"x")
    assert not (tmp_path / "outside.txt").exists()
