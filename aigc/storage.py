"""Artifact byte storage behind a small interface, so an S3-compatible store can sit beside it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol


class InvalidKey(ValueError):
    """A storage key that is empty, absolute or climbs out of the store."""


class ArtifactStore(Protocol):
    def put(self, key: str, data: bytes) -> None:
        """Store bytes under key atomically: readers see all of them or nothing."""

    def open(self, key: str) -> BinaryIO: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def local_path(self, key: str) -> Path | None:
        """A filesystem path to the bytes where the store has one (lets the API sendfile)."""


def check_key(key: str) -> PurePosixPath:
    """Keys are relative POSIX paths of plain names: nothing absolute, no `..`, no backslashes."""
    path = PurePosixPath(key)
    if (
        not key
        or "\\" in key
        or "\x00" in key
        or path.is_absolute()
        or any(part in ("", ".", "..") for part in key.split("/"))
    ):
        raise InvalidKey(f"invalid storage key {key!r}")
    return path


class LocalStore:
    """Files under one root directory (a local disk or a shared mount such as NFS)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        # resolve() follows symlinks: a link planted inside the store must not lead out of it.
        if not path.is_relative_to(self.root):
            raise InvalidKey(f"storage key {key!r} leaves the store")
        return path

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)
