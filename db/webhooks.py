"""Queries on webhooks: endpoints, signing secrets, the deliveries outbox and its attempts,
and the fan-out's place in job_events. A delivery changes state by conditional UPDATEs only:
a sender whose lease ran out (another took the delivery over) records its attempt and
changes nothing else."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, selectinload

from aigc.ids import uuid7
from aigc.webhooks.events import DeliveryStatus
from aigc.webhooks.signing import new_secret
from db.events import EventCursor
from db.session import affected_rows
from db.tables import (
    Batch,
    WebhookAttempt,
    WebhookCursor,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSecret,
)

DELIVERIES_CHANNEL = "aigc_webhooks"  # NOTIFYed when deliveries are added: senders wake


# ---- Secrets ----------------------------------------------------------------------------


def valid_secrets(session: Session, team_id: uuid.UUID) -> Sequence[WebhookSecret]:
    """The team's secrets that sign now: the current one first, then rotated-out ones not
    yet expired."""
    return session.scalars(
        select(WebhookSecret)
        .where(
            WebhookSecret.team_id == team_id,
            WebhookSecret.expires_at.is_(None) | (WebhookSecret.expires_at > func.now()),
        )
        .order_by(WebhookSecret.expires_at.desc().nulls_first(), WebhookSecret.id.desc())
    ).all()


def ensure_secrets(session: Session, team_ids: Iterable[uuid.UUID]) -> None:
    """Give each team without a current secret one (concurrent callers make one)."""
    rows = [{"id": uuid7(), "team_id": team_id, "secret": new_secret()} for team_id in team_ids]
    if rows:
        session.execute(
            insert(WebhookSecret)
            .values(rows)
            .on_conflict_do_nothing(
                index_elements=["team_id"], index_where=text("expires_at IS NULL")
            )
        )


def secrets_by_team(session: Session, team_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """Each team's signing secrets (current first), made where a team has none yet."""
    teams = set(team_ids)
    found = _valid_secrets_of(session, teams)
    missing = [team for team, secrets in found.items() if not secrets]
    if missing:
        ensure_secrets(session, missing)
        found.update(_valid_secrets_of(session, missing))
    return found


def _valid_secrets_of(session: Session, teams: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    teams = list(teams)
    rows = session.execute(
        select(WebhookSecret.team_id, WebhookSecret.secret)
        .where(
            WebhookSecret.team_id.in_(teams),
            WebhookSecret.expires_at.is_(None) | (WebhookSecret.expires_at > func.now()),
        )
        .order_by(WebhookSecret.expires_at.desc().nulls_first(), WebhookSecret.id.desc())
    )
    found: dict[uuid.UUID, list[str]] = {team: [] for team in teams}
    for team_id, secret in rows:
        found[team_id].append(secret)
    return found


def rotate_secret(session: Session, team_id: uuid.UUID, *, overlap_s: int) -> None:
    """A new current secret; the one it replaces keeps signing for `overlap_s` seconds.
    The team's current row is locked first, so two rotations run one after the other."""
    session.execute(
        update(WebhookSecret)
        .where(WebhookSecret.team_id == team_id, WebhookSecret.expires_at.is_(None))
        .values(expires_at=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, overlap_s))
        .execution_options(synchronize_session=False)
    )
    session.add(WebhookSecret(team_id=team_id, secret=new_secret()))
    session.flush()


# ---- Endpoints --------------------------------------------------------------------------


def list_endpoints(
    session: Session, *, limit: int, before: uuid.UUID | None = None
) -> Sequence[WebhookEndpoint]:
    query = select(WebhookEndpoint).order_by(WebhookEndpoint.id.desc()).limit(limit)
    if before is not None:
        query = query.where(WebhookEndpoint.id < before)
    return session.scalars(query).all()


def enabled_endpoints(
    session: Session, team_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[WebhookEndpoint]]:
    by_team: dict[uuid.UUID, list[WebhookEndpoint]] = {}
    teams = list(set(team_ids))
    if not teams:
        return by_team
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.team_id.in_(teams), WebhookEndpoint.enabled.is_(True)
    )
    for endpoint in session.scalars(query):
        by_team.setdefault(endpoint.team_id, []).append(endpoint)
    return by_team


# ---- The fan-out's cursor and batch completion ----------------------------------------


def read_cursor(session: Session, consumer: str) -> EventCursor | None:
    """Where `consumer` stopped reading job_events; the row is locked until the caller's
    transaction ends, so a second reader (a leader that lost its lock late) waits."""
    row = session.execute(
        select(WebhookCursor.txid, WebhookCursor.event_id)
        .where(WebhookCursor.consumer == consumer)
        .with_for_update()
    ).first()
    return EventCursor(row[0], row[1]) if row else None


def save_cursor(session: Session, consumer: str, cursor: EventCursor) -> None:
    values = {"consumer": consumer, "txid": cursor.txid, "event_id": cursor.id}
    session.execute(
        insert(WebhookCursor)
        .values(values)
        .on_conflict_do_update(
            index_elements=["consumer"],
            set_={"txid": cursor.txid, "event_id": cursor.id, "updated_at": func.now()},
        )
    )


def mark_batches_completed(session: Session, batch_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Record that these batches' completion was announced; returns those not already
    recorded (each completion is announced once)."""
    ids = list(batch_ids)
    if not ids:
        return set()
    result = session.scalars(
        update(Batch)
        .where(Batch.id.in_(ids), Batch.completed_event_at.is_(None))
        .values(completed_event_at=func.now())
        .returning(Batch.id)
        .execution_options(synchronize_session=False)
    )
    return set(result)


def clear_batches_completed(session: Session, batch_ids: Iterable[uuid.UUID]) -> None:
    """A job of these batches went back to the queue (a retry): their next completion is
    announced again."""
    ids = list(batch_ids)
    if ids:
        session.execute(
            update(Batch)
            .where(Batch.id.in_(ids), Batch.completed_event_at.is_not(None))
            .values(completed_event_at=None)
            .execution_options(synchronize_session=False)
        )


def purge_read_events(
    session: Session, *, upto: EventCursor, older_than_s: float, limit: int
) -> int:
    """Forget up to `limit` job events older than `older_than_s` that the fan-out has
    passed; returns how many."""
    result = session.execute(
        text(
            """
            DELETE FROM job_events WHERE (txid, id) IN (
                SELECT txid, id FROM job_events
                WHERE created_at < now() - make_interval(secs => :age)
                    AND (txid, id) <= (CAST(:txid AS text)::xid8, :id)
                ORDER BY created_at LIMIT :limit
            )
            """
        ),
        {"age": older_than_s, "txid": str(upto.txid), "id": upto.id, "limit": limit},
    )
    return affected_rows(result)


# ---- Deliveries -------------------------------------------------------------------------


def add_deliveries(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert deliveries, skipping any whose msg_id exists (a fan-out run again); senders
    are woken when the caller commits. Returns how many were new."""
    if not rows:
        return 0
    result = session.execute(
        insert(WebhookDelivery).values(list(rows)).on_conflict_do_nothing(index_elements=["msg_id"])
    )
    added = affected_rows(result)
    if added:
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": DELIVERIES_CHANNEL})
    return added


@dataclass(frozen=True)
class DueDelivery:
    """A delivery leased to this sender until `lease` (also its fencing token)."""

    id: uuid.UUID
    team_id: uuid.UUID
    msg_id: str
    url: str
    payload: dict[str, Any]
    attempts: int
    deadline_at: datetime
    lease: datetime


def take_due(session: Session, *, limit: int, lease_s: float) -> list[DueDelivery]:
    """Lease up to `limit` due deliveries (and those whose sender's lease ran out): they are
    `delivering` until now + lease_s. Rows other senders hold are skipped, not waited for."""
    rows = session.execute(
        text(
            """
            UPDATE webhook_deliveries SET status = 'delivering',
                next_attempt_at = now() + make_interval(secs => :lease_s)
            WHERE id IN (
                SELECT id FROM webhook_deliveries
                WHERE status IN ('pending', 'delivering') AND next_attempt_at <= now()
                ORDER BY next_attempt_at LIMIT :limit
                FOR UPDATE SKIP LOCKED
            )
            RETURNING id, team_id, msg_id, url, payload, attempts, deadline_at, next_attempt_at
            """
        ),
        {"limit": limit, "lease_s": lease_s},
    )
    return [DueDelivery(*row) for row in rows]


def record_attempt(
    session: Session,
    due: DueDelivery,
    *,
    status_code: int | None,
    error: str | None,
    latency_ms: float,
    snippet: str | None,
    retry_at: datetime | None,
) -> bool:
    """Record one attempt; the delivery becomes delivered (a 2xx), pending again until
    `retry_at`, or failed (no `retry_at`). False when the lease was lost meanwhile (the
    attempt is kept, the state is the new holder's)."""
    session.add(
        WebhookAttempt(
            delivery_id=due.id,
            status_code=status_code,
            error=error,
            latency_ms=latency_ms,
            response_snippet=snippet,
        )
    )
    delivered = status_code is not None and 200 <= status_code < 300
    values: dict[str, Any] = {
        "attempts": WebhookDelivery.attempts + 1,
        "last_status_code": status_code,
        "last_error": error,
    }
    if delivered:
        values.update(status=DeliveryStatus.DELIVERED, delivered_at=func.now())
    elif retry_at is not None:
        values.update(status=DeliveryStatus.PENDING, next_attempt_at=retry_at)
    else:
        values.update(status=DeliveryStatus.FAILED)
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == due.id,
            WebhookDelivery.status == DeliveryStatus.DELIVERING,
            WebhookDelivery.next_attempt_at == due.lease,
        )
        .values(values)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(result) == 1


def list_deliveries(
    session: Session,
    *,
    limit: int,
    before: uuid.UUID | None = None,
    status: str | None = None,
    job_id: uuid.UUID | None = None,
    batch_id: uuid.UUID | None = None,
    endpoint_id: uuid.UUID | None = None,
) -> Sequence[WebhookDelivery]:
    """Newest first, with their attempts; `before` is the last id of the previous page."""
    query = (
        select(WebhookDelivery)
        .options(selectinload(WebhookDelivery.attempt_log))
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if job_id is not None:
        query = query.where(WebhookDelivery.job_id == job_id)
    if batch_id is not None:
        query = query.where(WebhookDelivery.batch_id == batch_id)
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    return session.scalars(query).all()


def get_delivery(session: Session, delivery_id: uuid.UUID) -> WebhookDelivery | None:
    return session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .options(selectinload(WebhookDelivery.attempt_log))
    )


def redeliver(session: Session, delivery_id: uuid.UUID, *, max_age_s: float) -> bool:
    """Send a delivered or failed delivery again (same message id and payload), with a new
    retry window; False while it is pending or being sent (it will be anyway)."""
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status.in_((DeliveryStatus.DELIVERED, DeliveryStatus.FAILED)),
        )
        .values(
            status=DeliveryStatus.PENDING,
            next_attempt_at=func.now(),
            deadline_at=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, max_age_s),
            delivered_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    if affected_rows(result) == 1:
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": DELIVERIES_CHANNEL})
        return True
    return False


def delete_endpoint(session: Session, endpoint_id: uuid.UUID) -> bool:
    """Remove the endpoint; what is still waiting to go to it is failed first (nothing more
    is sent), and its past deliveries stay listed."""
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        .values(status=DeliveryStatus.FAILED, last_error="the endpoint was deleted")
        .execution_options(synchronize_session=False)
    )
    result = session.execute(
        delete(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(result) == 1
