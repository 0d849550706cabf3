"""Artifact byte storage behind a small interface: a local directory (LocalStore) or an
S3-compatible bucket (aigc.s3_store.S3Store), chosen by settings in `open_store`."""

from __future__ import annotations

import ctypes
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from aigc.settings import Settings

# What a store takes: bytes, or a binary file to copy from.
Content = bytes | BinaryIO
COPY_BUFFER_BYTES = 1024 * 1024
# What a readiness check writes, reads back and deletes, under a key of its own each time.
PROBE_PREFIX = "health"
PROBE_BYTES = b"aigc store probe\n"


class InvalidKey(ValueError):
    """A storage key that is empty, absolute or climbs out of the store."""


class StoreUnavailable(OSError):
    """The store could not be reached, or refused or garbled an operation (not a missing
    key, which is FileNotFoundError)."""


class ArtifactStore(Protocol):
    # Where the bytes are, for people and /readyz: a directory or s3://bucket/prefix.
    location: str

    def put(self, key: str, data: Content) -> None:
        """Store bytes (or a binary file's contents, read from its current position) under key
        atomically: readers see all of them or nothing."""

    def put_many(self, items: Iterable[tuple[str, Content]]) -> None:
        """Store several objects, each atomically; all are durable when this returns."""

    def open(self, key: str) -> BinaryIO: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def delete_many(self, keys: Sequence[str]) -> set[str]:
        """Delete several objects, in as few requests as the store allows; returns the keys
        now gone (a missing one counts), leaving out any the store refused."""

    def local_path(self, key: str) -> Path | None:
        """A filesystem path to the bytes where the store has one (lets the API sendfile)."""

    def download_url(self, key: str, *, ttl_s: int, media_type: str, filename: str) -> str | None:
        """A URL the client fetches the bytes from directly, valid for ttl_s, served with
        this type and as an attachment of this name; None where the API serves them."""

    def check(self) -> None:
        """Write, read back and delete a small probe object; StoreUnavailable (an OSError)
        when any step fails."""


def open_store(settings: Settings) -> ArtifactStore:
    """The store settings.artifact_store names, made once per process (its client too)."""
    if settings.artifact_store == "local":
        return LocalStore(settings.artifact_dir)
    from aigc.s3_store import S3Store  # boto3 is imported only by processes that use it

    return S3Store.from_settings(settings)


def probe_key() -> str:
    """A fresh key for a readiness probe: concurrent checks never touch each other's."""
    return f"{PROBE_PREFIX}/probe-{uuid.uuid4().hex}"


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
        self.location = str(self.root)
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

    def delete_many(self, keys: Sequence[str]) -> set[str]:
        deleted = set()
        for key in keys:
            try:
                self.delete(key)
            except (OSError, InvalidKey):
                continue  # left for the caller to try again
            deleted.add(key)
        return deleted

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def download_url(self, key: str, *, ttl_s: int, media_type: str, filename: str) -> str | None:
        return None  # the API serves local bytes itself, behind its own signed URLs

    def check(self) -> None:
        key = probe_key()
        try:
            # No flush: the probe proves the directory takes writes, not durability, and a
            # readiness poll must not sync the whole filesystem every few seconds.
            path = self._write(key, PROBE_BYTES)
            try:
                if path.read_bytes() != PROBE_BYTES:
                    raise StoreUnavailable(f"{self.location}: the probe read back different bytes")
            finally:
                path.unlink(missing_ok=True)
        except StoreUnavailable:
            raise
        except OSError as exc:
            raise StoreUnavailable(f"{self.location}: {type(exc).__name__}: {exc}") from exc
