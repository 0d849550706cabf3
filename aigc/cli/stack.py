"""Starting the whole stack on one machine: embedded servers where no URL is given, the
migrations, then the API, a worker, the dispatcher, the webhook deliverer and Flower as
child processes."""

from __future__ import annotations

import ctypes
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from aigc.cli.common import api_key_path
from aigc.private_file import create_private, read_private
from aigc.servers import EmbeddedPostgres, EmbeddedValkey
from aigc.settings import Settings
from aigc.signing import url_signing_key
from aigc.vocab import KINDS, Role
from db import teams as team_queries
from db.migrate import upgrade
from db.session import make_engine, make_session_factory

log = logging.getLogger(__name__)

API_START_TIMEOUT_S = 60.0  # a cold API import takes a few seconds on a small machine
STOP_GRACE_S = 15.0  # a worker finishing its current job before it is killed
_PR_SET_PDEATHSIG = 1
FLOWER_USER = "aigc"
FLOWER_PASSWORD_BYTES = 18  # 144 random bits, 24 URL-safe characters
ADMIN_KEY_NAME = "aigc up"  # the label of the key `aigc up` makes on first start


@dataclass
class Stack:
    settings: Settings
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # `user:password` generated for Flower when AIGC_FLOWER_BASIC_AUTH is unset.
    flower_credentials: str | None = None
    # Where the admin key of team `default` is, and whether this start made it.
    api_key_file: Path | None = None
    api_key_created: bool = False

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    def exited(self) -> list[str]:
        """Names of the children that have stopped on their own."""
        return [name for name, proc in self.processes.items() if proc.poll() is not None]


def stack_env(settings: Settings, database_url: str, redis_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["AIGC_DATABASE_URL"] = database_url
    env["AIGC_REDIS_URL"] = redis_url
    if settings.url_signing_key is None:
        # One key for every process of the stack, kept in the var dir across restarts.
        env["AIGC_URL_SIGNING_KEY"] = url_signing_key(settings)
    if settings.profile == "offline":
        # Tiny models are local: never let a missing path wander off to the hub.
        env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def generate_flower_credentials() -> str:
    """`aigc:<random password>` for a Flower the operator gave no credentials."""
    return f"{FLOWER_USER}:{secrets.token_urlsafe(FLOWER_PASSWORD_BYTES)}"


def ensure_admin_key(database_url: str, path: Path) -> bool:
    """On first start (no key file yet): an admin key of team `default`, written to `path`
    (mode 0600). True when a key was made. The key itself is never logged."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            key = read_private(path)
            if key is not None:
                if team_queries.key_owner(session, key) is None:
                    log.warning(
                        "the key in %s is not a live key of this database (revoked, or made "
                        "for another one); remove the file and restart for a new one",
                        path,
                    )
                return False
            team = team_queries.get_team(session, team_queries.DEFAULT_TEAM)
            if team is None:
                team = team_queries.create_team(session, name=team_queries.DEFAULT_TEAM)
            row, new = team_queries.create_key(
                session, team=team, role=Role.ADMIN, name=ADMIN_KEY_NAME
            )
            session.commit()
            # Should writing fail, the key is held by nobody: harmless, and revocable.
            if not create_private(path, new.key + "\n"):
                log.warning("%s appeared meanwhile; key %s is unused: revoke it", path, row.prefix)
                return False
            log.info("admin key %s of team %s written to %s", row.prefix, team.name, path)
            return True
    finally:
        engine.dispose()


def _die_with_parent() -> None:
    # Children of a launcher that was killed outright must not run on unsupervised.
    with suppress(OSError):
        ctypes.CDLL("libc.so.6").prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    name: str, args: list[str], env: dict[str, str], log_dir: Path | None = None
) -> subprocess.Popen[bytes]:
    """`python -m aigc <args>` in its own session, so a Ctrl-C reaches only the launcher,
    which then stops the children in order. Output goes to `<log_dir>/<name>.log` when a
    log directory is given, else to the launcher's terminal."""
    log.info("starting %s", name)
    output = None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        output = (log_dir / f"{name}.log").open("ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "aigc", *args],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    finally:
        if output is not None:
            output.close()  # the child holds its own descriptor


def stop_process(proc: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for_http(url: str, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url} did not come up: its process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s:.0f}s")


@contextmanager
def run_stack(
    settings: Settings, *, flower: bool = True, log_dir: Path | None = None
) -> Iterator[Stack]:
    """Bring everything up; on exit stop it all in reverse order, whatever happened.

    With `log_dir`, the children's output goes to files there instead of the terminal.
    """
    with ExitStack() as cleanup:
        database_url = settings.database_url
        if not database_url:
            database_url = cleanup.enter_context(
                EmbeddedPostgres(settings.var_dir / "postgres")
            ).url
            log.info("embedded PostgreSQL at %s", database_url)
        redis_url = settings.redis_url
        if not redis_url:
            redis_url = cleanup.enter_context(
                EmbeddedValkey(settings.var_dir / "valkey", settings.embedded_redis_port)
            ).url
            log.info("embedded Valkey at %s", redis_url)

        upgrade(database_url)
        stack = Stack(settings=settings, env=stack_env(settings, database_url, redis_url))
        stack.api_key_file = api_key_path(settings)
        stack.api_key_created = ensure_admin_key(database_url, stack.api_key_file)

        def stop_children() -> None:
            # API first (no new submissions), then the worker (finishes its job), then Flower.
            for proc in stack.processes.values():
                stop_process(proc)

        cleanup.callback(stop_children)
        stack.processes["api"] = spawn(
            "api",
            ["api", "--host", settings.api_host, "--port", str(settings.api_port)],
            stack.env,
            log_dir,
        )
        stack.processes["worker"] = spawn(
            "worker", ["worker", "--queues", ",".join(KINDS)], stack.env, log_dir
        )
        stack.processes["dispatcher"] = spawn("dispatcher", ["dispatcher"], stack.env, log_dir)
        stack.processes["deliverer"] = spawn("deliverer", ["deliverer"], stack.env, log_dir)
        if flower:
            if settings.flower_basic_auth is None:
                stack.flower_credentials = generate_flower_credentials()
                stack.env["AIGC_FLOWER_BASIC_AUTH"] = stack.flower_credentials
            stack.processes["flower"] = spawn(
                "flower", ["flower", "--port", str(settings.flower_port)], stack.env, log_dir
            )
        wait_for_http(f"{stack.api_url}/healthz", API_START_TIMEOUT_S, stack.processes["api"])
        yield stack
