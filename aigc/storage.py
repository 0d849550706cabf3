"""Artifact byte storage behind a small interface, so an S3-compatible store can sit beside it."""

from __future__ import annotations

import ctypes
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

# What a store takes: bytes, or a binary file to copy from.
Content = bytes | BinaryIO
COPY_BUFFER_BYTES = 1024 * 1024


class InvalidKey(ValueError):
    """A storage key that is empty, absolute or climbs out of the store."""


class ArtifactStore(Protocol):
    def put(self, key: str, data: Content) -> None:
        """Store bytes (or a binary file's contents, read from its current position) under key
        atomically: readers see all of them or nothing."""

    def put_many(self, items: Iterable[tuple[str, Content]]) -> None:
        """Store several objects, each atomically; all are durable when this returns."""

    def open(self, key: str) -> BinaryIO: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def local_path(self, key: str) -> Path | None:
        """A filesystem path to the bytes where the store has one (lets the API sendfile)."""


def _syncfs(path: Path) -> bool:
    """Flush the whole filesystem holding `path` (Linux syncfs); False where unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY)
    except (OSError, AttributeError):
        return False
    try:
        return bool(libc.syncfs(fd) == 0)
    except AttributeError:
        return False
    finally:
        os.close(fd)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        # Folders already created and checked to lie inside the store: a bulk write then
        # costs no mkdir or path resolution per file.
        self._known_dirs: set[Path] = set()

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        # resolve() follows symlinks: a link planted inside the store must not lead out of it.
        if not path.is_relative_to(self.root):
            raise InvalidKey(f"storage key {key!r} leaves the store")
        return path

    def put(self, key: str, data: Content) -> None:
        self.put_many([(key, data)])

    def put_many(self, items: Iterable[tuple[str, Content]]) -> None:
        written = [self._write(key, data) for key, data in items]
        # One flush of the filesystem for the lot instead of an fsync per file and folder:
        # a chunk's artifacts cost one disk round trip.
        if not _syncfs(self.root):
            for path in written:
                _fsync_path(path)
                _fsync_path(path.parent)

    def _directory_for(self, key: str) -> Path:
        directory = self.root / check_key(key).parent
        if directory not in self._known_dirs:
            directory.mkdir(parents=True, exist_ok=True)
            if not directory.resolve().is_relative_to(self.root):
                raise InvalidKey(f"storage key {key!r} leaves the store")
            self._known_dirs.add(directory)
        return directory

    def _write(self, key: str, data: Content) -> Path:
        directory = self._directory_for(key)
        # The file itself is created by rename, which replaces a planted link, not follows it.
        path = directory / PurePosixPath(key).name
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as tmp:
                if isinstance(data, bytes):
                    tmp.write(data)
                else:
                    # Large contents (result files, uploads) are copied, never held in memory.
                    shutil.copyfileobj(data, tmp, COPY_BUFFER_BYTES)
            # Renamed into place complete: a reader never sees a partly written file.
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return path

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)
