"""Per-team limits checked when work is submitted, before anything is stored: submissions
per second (`rate_per_s`, a token bucket in Redis) and jobs queued or running at once
(`max_queued`, counted in PostgreSQL). Over either: 429 with Retry-After. `max_running` is
the dispatcher's to enforce, not the API's.

A submission is one request (`POST /v1/jobs`, `/v1/batches`, `/v1/files`) whatever number
of jobs it carries; `max_queued` counts the jobs.
"""

from __future__ import annotations

import logging
import math
from functools import lru_cache
from typing import Any

from redis import Redis, RedisError
from redis.commands.core import Script
from sqlalchemy.orm import Session

from aigc.errors import QuotaExceeded, RateLimited
from api.auth import Caller
from db import jobs as job_queries
from db import teams as team_queries

log = logging.getLogger(__name__)

RATE_KEY_PREFIX = "aigc:rate:"
# Jobs leave the queue as workers finish them, at no rate the API knows: a short wait
# before trying again, not a promise.
QUEUE_FULL_RETRY_AFTER_S = 5

# A token bucket per team, atomic in Redis and timed by Redis' clock (every API replica
# shares it). The bucket holds at most `burst` tokens and refills at `rate` per second; a
# submission takes one. Answers {1, "0"} when allowed, else {0, seconds until a token}.
# The key expires once the bucket would be full again, so idle teams cost nothing.
TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
end
if tokens < 1 then
  return {0, tostring((1 - tokens) / rate)}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {1, '0'}
"""

TOO_MANY_REQUESTS: dict[int | str, dict[str, Any]] = {
    429: {
        "description": (
            "Over one of the team's limits (`rate_limited`: submissions per second; "
            "`quota_exceeded`: jobs queued or running); nothing was stored"
        ),
        "headers": {
            "Retry-After": {
                "description": "Whole seconds to wait before trying again",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    }
}


def burst(rate_per_s: float) -> float:
    """One second's worth of submissions, at least one."""
    return max(1.0, rate_per_s)


@lru_cache(maxsize=4)
def _token_bucket(broker: Redis) -> Script:
    """The token-bucket script of this client, made once (its SHA computed once): calling
    it is an EVALSHA, loading the script on the first call to each server."""
    return broker.register_script(TOKEN_BUCKET)


def check_rate(broker: Redis, caller: Caller) -> None:
    """Take one submission from the team's bucket; RateLimited when it is empty. With Redis
    unreachable the limit is not enforced (logged): submissions must not depend on it."""
    rate = caller.limits.rate_per_s
    if rate is None:
        return
    try:
        allowed, wait_s = _token_bucket(broker)(
            keys=[f"{RATE_KEY_PREFIX}{caller.team_id}"], args=[rate, burst(rate)]
        )
    except RedisError as exc:
        log.warning(
            "rate limit of team %s not checked: Redis unreachable (%s)", caller.team_name, exc
        )
        return
    if not int(allowed):
        retry_after_s = math.ceil(float(wait_s))
        raise RateLimited(
            f"rate_per_s: team {caller.team_name!r} may submit {rate:g} requests per second; "
            f"retry after {max(1, retry_after_s)} s",
            retry_after_s=retry_after_s,
        )


def check_queue(session: Session, caller: Caller, adding: int) -> None:
    """QuotaExceeded when the team's queued and running jobs plus `adding` new ones would
    pass its max_queued. Where the team has a limit, its row stays locked until the
    caller's transaction ends, so concurrent submissions cannot both squeeze under it."""
    if caller.limits.max_queued is None:
        return
    limit = team_queries.team_limits(session, team_id=caller.team_id, lock=True).max_queued
    if limit is None:
        return  # lifted meanwhile
    active = job_queries.count_active_jobs(session, team_id=caller.team_id)
    if active + adding <= limit:
        return
    if adding > limit:
        advice = f"this request alone has {adding} jobs: split it into batches of at most {limit}"
    else:
        advice = f"it has {active} and this request adds {adding}"
    session.rollback()  # release the team row now, not when the session closes
    raise QuotaExceeded(
        f"max_queued: team {caller.team_name!r} may have at most {limit} jobs queued or "
        f"running; {advice}",
        retry_after_s=QUEUE_FULL_RETRY_AFTER_S,
    )


def check_requeue(session: Session, caller: Caller) -> None:
    """After a retry put jobs back in the queue (in the caller's transaction): QuotaExceeded,
    with the requeue rolled back, when the team is now past its max_queued. Admin keys
    manage every team and are not held to a team's limit."""
    if not caller.is_admin:
        check_queue(session, caller, adding=0)
