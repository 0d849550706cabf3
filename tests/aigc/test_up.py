"""`aigc up` on a machine with no PostgreSQL or Redis configured: it starts the embedded
servers, migrates, serves jobs end to end, and Ctrl-C stops everything it started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from aigc.cli.stack import ensure_admin_key, spawn, stop_process, wait_for_http
from aigc.vocab import Role
from db import teams as team_queries
from tests.conftest import auth_headers
from tests.live import submit, wait_for_job

OUTPUT_TIMEOUT_S = 60.0


@pytest.mark.timeout(240)
def test_up_with_embedded_servers_runs_a_job_and_stops_cleanly(
    tmp_path: Path, tiny_models: Path, free_port: Callable[[], int]
) -> None:
    api_port, flower_port, redis_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_")}
    env.update(
        AIGC_VAR_DIR=str(tmp_path / "var"),
        AIGC_ARTIFACT_DIR=str(tmp_path / "var" / "artifacts"),
        AIGC_MODEL_DIR=str(tiny_models),
        AIGC_API_PORT=str(api_port),
        AIGC_FLOWER_PORT=str(flower_port),
        AIGC_EMBEDDED_REDIS_PORT=str(redis_port),
        AIGC_PRELOAD_MODELS="false",
        HF_HUB_OFFLINE="1",
    )
    # Wide enough that rich does not wrap the line with Flower's password.
    env["COLUMNS"] = "200"
    output = tmp_path / "up.log"
    with output.open("wb") as out:
        up = subprocess.Popen([sys.executable, "-m", "aigc", "up"], env=env, stdout=out)
    try:
        api_url = f"http://127.0.0.1:{api_port}"
        wait_for_http(f"{api_url}/healthz", 120, up)
        # First start: an admin key of team `default`, readable by its owner alone, its
        # place printed and the key itself nowhere in the output.
        key_file = tmp_path / "var" / "api-key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        key = key_file.read_text().strip()
        printed_output = _wait_for_output(output, "Ctrl-C stops everything.", up)
        assert f"new admin key of team default in {key_file}" in printed_output
        assert key not in printed_output
        assert key not in "".join(p.read_text() for p in (tmp_path / "var").glob("**/*.log"))
        assert httpx.get(f"{api_url}/v1/jobs").status_code == 401
        with httpx.Client(base_url=api_url, timeout=30, headers=auth_headers(key)) as client:
            checks = client.get("/readyz").json()["checks"]
            # The embedded default is the local store, checked like the servers.
            assert checks == {"database": "ok", "broker": "ok", "store": "ok"}
            assert client.get("/v1/admin/teams").status_code == 200
            job = submit(client, kind="text", model="echo", prompt="embedded all the way")
            done = wait_for_job(client, job["id"], timeout_s=120)
            assert done["status"] == "succeeded"
            text = client.get(done["artifacts"][0]["url"]).text
            assert text == "embedded all the way"
        flower_url = f"http://127.0.0.1:{flower_port}"
        wait_for_http(f"{flower_url}/healthcheck", 60)
        # No AIGC_FLOWER_BASIC_AUTH: `aigc up` made a password, gave it to Flower, printed it.
        printed = re.search(r"\(user (\S+), password (\S+)\)", output.read_text())
        assert printed, output.read_text()
        assert httpx.get(f"{flower_url}/workers").status_code == 401
        assert httpx.get(f"{flower_url}/workers", auth=printed.groups()).status_code == 200
        assert httpx.get(f"{flower_url}/metrics").status_code == 200
        assert (tmp_path / "var" / "postgres" / "PG_VERSION").exists()
        assert (tmp_path / "var" / "valkey").is_dir()
        children = psutil.Process(up.pid).children(recursive=True)
        assert children
    finally:
        up.send_signal(signal.SIGINT)
        returncode = up.wait(timeout=60)
    assert returncode == 0
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"
    # Nor the servers it started, which run in sessions of their own.
    var_dir = str(tmp_path / "var")
    leftovers = [
        proc.info["cmdline"]
        for proc in psutil.process_iter(["cmdline"])
        if any(var_dir in part for part in proc.info["cmdline"] or [])
    ]
    assert not leftovers, f"left running: {leftovers}"


def _wait_for_output(path: Path, text: str, proc: subprocess.Popen[bytes]) -> str:
    """The process's output once it has printed `text`."""
    deadline = time.monotonic() + OUTPUT_TIMEOUT_S
    while text not in (output := path.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, output
        time.sleep(0.1)
    return output


def test_first_start_writes_one_admin_key(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "var" / "api-key"
    old_umask = os.umask(0)  # whatever the umask, the file is private
    try:
        assert ensure_admin_key(database_url, path) is True
    finally:
        os.umask(old_umask)
    assert path.stat().st_mode & 0o777 == 0o600
    key = path.read_text().strip()
    assert not [p.name for p in path.parent.iterdir() if p != path]  # no partial file left
    engine = sa.create_engine(database_url)
    try:
        with Session(engine) as session:
            owner = team_queries.key_owner(session, key)
        assert owner is not None
        assert (owner.team_name, owner.role) == ("default", Role.ADMIN)
        # A later start keeps the key.
        assert ensure_admin_key(database_url, path) is False
        assert path.read_text().strip() == key
    finally:
        engine.dispose()


def test_flower_refuses_to_start_without_credentials() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_")}
    env.update(AIGC_REDIS_URL="redis://127.0.0.1:1/0", COLUMNS="200")
    result = subprocess.run(
        [sys.executable, "-m", "aigc", "flower"], env=env, capture_output=True, timeout=60
    )
    assert result.returncode == 2
    assert b"AIGC_FLOWER_BASIC_AUTH" in result.stdout
    assert b"--no-auth" in result.stdout


def test_flower_with_no_auth_serves_without_credentials(free_port: Callable[[], int]) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_")}
    env.update(AIGC_REDIS_URL="redis://127.0.0.1:1/0")
    flower = spawn("flower", ["flower", "--no-auth", "--port", str(port)], env)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthcheck", 60, flower)
        assert httpx.get(f"http://127.0.0.1:{port}/workers").status_code == 200
    finally:
        stop_process(flower)
