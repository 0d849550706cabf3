"""Webhooks: a team's endpoints, its deliveries and their attempts, redelivery, and the
signing secrets. Sending is the deliverer's (workers.deliverer), never a request's."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy import func, select

from aigc.errors import Conflict, InvalidRequest, NotFound
from aigc.settings import Settings
from aigc.ssrf import RefusedDestination, check_submitted_url
from aigc.webhooks.events import DeliveryStatus
from api.auth import CallerDep, authenticate
from api.deps import SessionDep, SettingsDep
from api.schemas import (
    WebhookAttemptPublic,
    WebhookDeliveryList,
    WebhookDeliveryPublic,
    WebhookEndpointCreate,
    WebhookEndpointList,
    WebhookEndpointPublic,
    WebhookEndpointUpdate,
    WebhookSecretPublic,
    WebhookSecrets,
)
from api.validation import StrictJsonRoute
from db import webhooks as webhook_queries
from db.tables import WebhookDelivery, WebhookEndpoint

router = APIRouter(
    prefix="/v1/webhooks",
    tags=["webhooks"],
    route_class=StrictJsonRoute,
    dependencies=[Depends(authenticate)],
)

MAX_PAGE_SIZE = 100
MAX_ENDPOINTS_PER_TEAM = 50  # each event is sent to each matching endpoint


def valid_webhook_url(url: str | None, settings: Settings, field: str = "webhook") -> str | None:
    """The URL if this service may send to it (https, no credentials, no literal address in
    a refused range; names are checked at each delivery); else a 422 naming `field`."""
    if url is None:
        return None
    try:
        check_submitted_url(
            url,
            allow_http=settings.webhook_allow_http,
            allow_private=settings.webhook_allow_private,
        )
    except RefusedDestination as exc:
        raise InvalidRequest.for_field(field, str(exc)) from None
    return url


def _endpoint_public(endpoint: WebhookEndpoint) -> WebhookEndpointPublic:
    return WebhookEndpointPublic(
        id=endpoint.id,
        url=endpoint.url,
        events=endpoint.events,
        description=endpoint.description,
        enabled=endpoint.enabled,
        created_at=endpoint.created_at,
    )


def _delivery_public(delivery: WebhookDelivery) -> WebhookDeliveryPublic:
    return WebhookDeliveryPublic(
        id=delivery.id,
        msg_id=delivery.msg_id,
        endpoint_id=delivery.endpoint_id,
        url=delivery.url,
        event_type=delivery.event_type,
        job_id=delivery.job_id,
        batch_id=delivery.batch_id,
        status=DeliveryStatus(delivery.status),
        attempts=delivery.attempts,
        next_attempt_at=(
            delivery.next_attempt_at if delivery.status == DeliveryStatus.PENDING else None
        ),
        last_status_code=delivery.last_status_code,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
        payload=delivery.payload,
        attempt_history=[
            WebhookAttemptPublic(
                attempted_at=attempt.attempted_at,
                status_code=attempt.status_code,
                error=attempt.error,
                latency_ms=attempt.latency_ms,
                response_snippet=attempt.response_snippet,
            )
            for attempt in delivery.attempt_log
        ],
    )


def _get_endpoint(session: SessionDep, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound("webhook endpoint", endpoint_id)
    return endpoint


# Fixed paths first: `/deliveries` and `/secret` are not endpoint ids.


@router.get("/deliveries", response_model=WebhookDeliveryList)
def list_webhook_deliveries(
    session: SessionDep,
    status: DeliveryStatus | None = None,
    job_id: uuid.UUID | None = None,
    batch_id: uuid.UUID | None = None,
    endpoint_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    cursor: uuid.UUID | None = None,
) -> WebhookDeliveryList:
    """The team's webhook deliveries with their attempts, newest first; follow
    `next_cursor` for older ones."""
    deliveries = webhook_queries.list_deliveries(
        session,
        limit=limit,
        before=cursor,
        status=status,
        job_id=job_id,
        batch_id=batch_id,
        endpoint_id=endpoint_id,
    )
    next_cursor = str(deliveries[-1].id) if len(deliveries) == limit else None
    return WebhookDeliveryList(
        data=[_delivery_public(d) for d in deliveries], next_cursor=next_cursor
    )


@router.get("/deliveries/{delivery_id}", response_model=WebhookDeliveryPublic)
def get_webhook_delivery(delivery_id: uuid.UUID, session: SessionDep) -> WebhookDeliveryPublic:
    """One delivery with every attempt: status code, latency, the answer's start."""
    delivery = webhook_queries.get_delivery(session, delivery_id)
    if delivery is None:
        raise NotFound("webhook delivery", delivery_id)
    return _delivery_public(delivery)


@router.post(
    "/deliveries/{delivery_id}/redeliver", status_code=202, response_model=WebhookDeliveryPublic
)
def redeliver_webhook(
    delivery_id: uuid.UUID, session: SessionDep, settings: SettingsDep
) -> WebhookDeliveryPublic:
    """Send a delivered or failed delivery again: the same message (same `webhook-id`),
    retried as a new one would be. A delivery still pending or being sent answers 409."""
    redelivered = webhook_queries.redeliver(
        session, delivery_id, max_age_s=settings.webhook_max_age_s
    )
    session.commit()
    delivery = webhook_queries.get_delivery(session, delivery_id)
    if delivery is None:
        raise NotFound("webhook delivery", delivery_id)
    if not redelivered:
        raise Conflict(f"webhook delivery {delivery_id} is {delivery.status}: it is sent anyway")
    return _delivery_public(delivery)


def _secrets(session: SessionDep, caller: CallerDep) -> WebhookSecrets:
    return WebhookSecrets(
        data=[
            WebhookSecretPublic(
                secret=row.secret, created_at=row.created_at, expires_at=row.expires_at
            )
            for row in webhook_queries.valid_secrets(session, caller.team_id)
        ]
    )


@router.get("/secret", response_model=WebhookSecrets)
def get_webhook_secret(
    session: SessionDep, caller: CallerDep, response: Response
) -> WebhookSecrets:
    """The secrets that sign your team's webhooks (made on first use): verify with the
    current one, and during a rotation with either."""
    response.headers["Cache-Control"] = "no-store"
    webhook_queries.ensure_secrets(session, [caller.team_id])
    session.commit()
    return _secrets(session, caller)


@router.post("/secret/rotate", response_model=WebhookSecrets)
def rotate_webhook_secret(
    session: SessionDep, settings: SettingsDep, caller: CallerDep, response: Response
) -> WebhookSecrets:
    """A new signing secret; the previous one keeps signing too for
    AIGC_WEBHOOK_SECRET_OVERLAP_S (24 h by default) while receivers switch."""
    response.headers["Cache-Control"] = "no-store"
    webhook_queries.ensure_secrets(session, [caller.team_id])
    webhook_queries.rotate_secret(
        session, caller.team_id, overlap_s=settings.webhook_secret_overlap_s
    )
    session.commit()
    return _secrets(session, caller)


@router.post("", status_code=201, response_model=WebhookEndpointPublic)
def create_webhook(
    body: WebhookEndpointCreate, session: SessionDep, settings: SettingsDep, caller: CallerDep
) -> WebhookEndpointPublic:
    """Register an endpoint: every event of the listed types of the team's jobs and
    batches is sent to it."""
    valid_webhook_url(body.url, settings, field="url")
    count = session.scalar(
        select(func.count())
        .select_from(WebhookEndpoint)
        .where(WebhookEndpoint.team_id == caller.team_id)
    )
    if (count or 0) >= MAX_ENDPOINTS_PER_TEAM:
        raise Conflict(f"a team has at most {MAX_ENDPOINTS_PER_TEAM} webhook endpoints")
    endpoint = WebhookEndpoint(
        team_id=caller.team_id,
        url=body.url,
        events=[str(event) for event in dict.fromkeys(body.events)],
        description=body.description,
        enabled=body.enabled,
    )
    session.add(endpoint)
    session.commit()
    return _endpoint_public(endpoint)


@router.get("", response_model=WebhookEndpointList)
def list_webhooks(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    cursor: uuid.UUID | None = None,
) -> WebhookEndpointList:
    """The team's endpoints, newest first."""
    endpoints = webhook_queries.list_endpoints(session, limit=limit, before=cursor)
    next_cursor = str(endpoints[-1].id) if len(endpoints) == limit else None
    return WebhookEndpointList(
        data=[_endpoint_public(e) for e in endpoints], next_cursor=next_cursor
    )


@router.get("/{endpoint_id}", response_model=WebhookEndpointPublic)
def get_webhook(endpoint_id: uuid.UUID, session: SessionDep) -> WebhookEndpointPublic:
    """One endpoint."""
    return _endpoint_public(_get_endpoint(session, endpoint_id))


@router.patch("/{endpoint_id}", response_model=WebhookEndpointPublic)
def update_webhook(
    endpoint_id: uuid.UUID, body: WebhookEndpointUpdate, session: SessionDep, settings: SettingsDep
) -> WebhookEndpointPublic:
    """Change an endpoint's URL, event types, description or whether it is enabled."""
    endpoint = _get_endpoint(session, endpoint_id)
    if body.url is not None:
        endpoint.url = valid_webhook_url(body.url, settings, field="url") or endpoint.url
    if body.events is not None:
        endpoint.events = [str(event) for event in dict.fromkeys(body.events)]
    if body.description is not None:
        endpoint.description = body.description
    if body.enabled is not None:
        endpoint.enabled = body.enabled
    session.commit()
    return _endpoint_public(endpoint)


@router.delete("/{endpoint_id}", status_code=204)
def delete_webhook(endpoint_id: uuid.UUID, session: SessionDep) -> Response:
    """Remove an endpoint; its past deliveries stay listed."""
    if not webhook_queries.delete_endpoint(session, endpoint_id):
        raise NotFound("webhook endpoint", endpoint_id)
    session.commit()
    return Response(status_code=204)
