"""Retention: when artifacts, files and stored batch results expire, and the queries of the
dispatcher's sweep that deletes their bytes once they have.

An expiry is set when a row is made: now plus the team's retention, or the deployment's
default where the team has none; NULL (keep forever) where neither is set. The sweep takes
the oldest expired rows a bounded batch at a time; the caller deletes their bytes, then
marks the rows, each step idempotent: a crash between the two deletes the bytes again (a
no-op) next round. Rows are kept, so the API answers 410 naming the expiry.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Integer, exists, func, literal, or_, select, tuple_, update
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from aigc.labels.text import sidecar_keys
from db.session import affected_rows
from db.tables import Artifact, Batch, File, Team

# (row id, storage key) of an expired object whose bytes are to be deleted.
DueObject = tuple[Any, str]


def expiry(
    team_id: Any, retention: InstrumentedAttribute[int | None], default_s: int | None
) -> Any:
    """SQL for when a row of the team made now expires: now() + the team's `retention`
    column, else `default_s`; NULL when both are unset. `team_id` is a value or a column
    (correlated, in an UPDATE of the team's rows)."""
    team_retention = select(retention).where(Team.id == team_id).scalar_subquery()
    retention_s = func.coalesce(team_retention, literal(default_s, Integer))
    return func.now() + func.make_interval(0, 0, 0, 0, 0, 0, retention_s)


class Sweep(Protocol):
    """One kind of expiring object: its rows whose bytes are due for deletion (oldest
    expiry first, at most `limit`), and the marking of those whose bytes are deleted."""

    @property
    def name(self) -> str: ...

    def due(self, session: Session, *, limit: int) -> list[DueObject]: ...

    def keys_of(self, key: str) -> list[str]:
        """The stored objects to delete for a row's key: itself, and any sidecar."""
        ...

    def mark_deleted(self, session: Session, deleted: Sequence[DueObject]) -> int: ...


@dataclass(frozen=True)
class PurgedRows:
    """Artifacts or files: the row gets purged_at, its storage_key stays (it says what was
    there)."""

    name: str
    table: type[Artifact] | type[File]
    # Text artifacts have their label in a sidecar object, which goes with them.
    sidecars: bool = False
    # Several rows may serve the same bytes (a cache hit's artifacts share their source's,
    # db.result_cache): an expired row is due only once no live row serves its key, and then
    # every expired row of that key is, so the bytes go with the last of them.
    shared: bool = False

    def keys_of(self, key: str) -> list[str]:
        return [key, *sidecar_keys([key])] if self.sidecars else [key]

    def due(self, session: Session, *, limit: int) -> list[DueObject]:
        table = self.table
        query = select(table.id, table.storage_key).where(
            table.expires_at <= func.now(), table.purged_at.is_(None)
        )
        if self.shared:
            live = aliased(table)
            query = query.where(
                ~exists().where(
                    live.storage_key == table.storage_key,
                    live.purged_at.is_(None),
                    or_(live.expires_at.is_(None), live.expires_at > func.now()),
                )
            )
        rows = session.execute(query.order_by(table.expires_at).limit(limit)).all()
        return [(row_id, key) for row_id, key in rows]

    def mark_deleted(self, session: Session, deleted: Sequence[DueObject]) -> int:
        table = self.table
        result = session.execute(
            update(table)
            .where(table.id.in_([row_id for row_id, _ in deleted]), table.purged_at.is_(None))
            .values(purged_at=func.now())
        )
        return affected_rows(result)


@dataclass(frozen=True)
class BatchResults:
    """A batch's stored results: the key is cleared, and only if it is still the one whose
    bytes were deleted (a retry may have stored new results meanwhile)."""

    name: str

    def keys_of(self, key: str) -> list[str]:
        return [key]

    def due(self, session: Session, *, limit: int) -> list[DueObject]:
        rows = session.execute(
            select(Batch.id, Batch.results_key)
            .where(Batch.expires_at <= func.now(), Batch.results_key.is_not(None))
            .order_by(Batch.expires_at)
            .limit(limit)
        ).all()
        return [(batch_id, key) for batch_id, key in rows if key is not None]

    def mark_deleted(self, session: Session, deleted: Sequence[DueObject]) -> int:
        result = session.execute(
            update(Batch)
            .where(tuple_(Batch.id, Batch.results_key).in_(list(deleted)))
            .values(results_key=None, results_bytes=None, results_sha256=None)
        )
        return affected_rows(result)


SWEEPS: tuple[Sweep, ...] = (
    PurgedRows("artifacts", Artifact, sidecars=True, shared=True),
    PurgedRows("files", File),
    BatchResults("batch results"),
)


def batch_results_expiry(session: Session, *, batch_id: uuid.UUID, default_s: int | None) -> None:
    """Set when the batch's just-stored results expire: as its artifacts would, under the
    team's artifact retention."""
    session.execute(
        update(Batch)
        .where(Batch.id == batch_id)
        .values(expires_at=expiry(Batch.team_id, Team.artifact_retention_s, default_s))
        .execution_options(synchronize_session=False)
    )
