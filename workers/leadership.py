"""One leader among several processes of a kind (dispatchers, deliverers' fan-out): the one
holding a PostgreSQL advisory lock on a connection of its own leads; the others stand by
and take over when that connection goes (its process died, or its database link broke)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Connection, Engine

from db.session import try_advisory_lock

log = logging.getLogger(__name__)


def lead_while_locked(
    engine: Engine,
    lock_key: int,
    stop: threading.Event,
    lead: Callable[[Connection, threading.Event], None],
    *,
    what: str,
    standby_s: float,
    retry_s: float,
    leading: Callable[[bool], None] | None = None,
) -> None:
    """Run `lead` on an AUTOCOMMIT connection holding the lock `lock_key` until `stop`;
    check every standby_s while another process holds it, and after retry_s when the
    database (or whatever `lead` talks to) fails. `leading` hears each change of role."""
    while not stop.is_set():
        try:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                try:
                    if not try_advisory_lock(conn, lock_key):
                        stop.wait(standby_s)
                        continue
                    log.info("%s leads", what)
                    if leading is not None:
                        leading(True)
                    lead(conn, stop)
                finally:
                    if leading is not None:
                        leading(False)
                    # Closed, not pooled: the lock and any LISTEN go with it, so no pooled
                    # connection keeps leadership after this one stepped down.
                    conn.invalidate()
        except Exception as exc:
            # The database down: keep trying; nothing is lost meanwhile.
            log.warning("%s failed: %s: %s", what, type(exc).__name__, exc)
            stop.wait(retry_s)
