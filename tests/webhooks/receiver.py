"""A webhook receiver as a customer would run one, in its own process: it verifies each
request with the `standardwebhooks` package, unchanged, and appends what it got to a JSON
lines log. Usage:

    python receiver.py PORT LOG SECRETS_FILE [--fail-first N] [--fail-rate P] [--hang]

SECRETS_FILE holds one `whsec_` secret per line, read at every request (a test rotates
them). It answers 500 to the first N requests (or to a fraction P of them, at random), or
never answers at all (--hang); otherwise 200 once the signature verifies, 401 if not."""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

MAX_BODY_BYTES = 1024 * 1024


def read_records(log: Path) -> list[dict[str, Any]]:
    """What the receiver has logged so far, a record per request. A line it is still
    writing has no newline yet, so it is no record yet."""
    if not log.exists():
        return []
    *complete, _partial = log.read_text().split("\n")
    return [json.loads(line) for line in complete if line]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("log", type=Path)
    parser.add_argument("secrets", type=Path)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--hang", action="store_true")
    args = parser.parse_args()
    lock = threading.Lock()
    seen = [0]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *values: object) -> None:
            pass

        def do_POST(self) -> None:
            received = time.time()
            length = min(int(self.headers.get("content-length", "0")), MAX_BODY_BYTES)
            body = self.rfile.read(length)
            if args.hang:
                time.sleep(3600)
                return
            headers = {name.lower(): value for name, value in self.headers.items()}
            secrets = [
                line.strip() for line in args.secrets.read_text().splitlines() if line.strip()
            ]
            verified = []
            for secret in secrets:
                try:
                    Webhook(secret).verify(body, headers)
                    verified.append(True)
                except WebhookVerificationError:
                    verified.append(False)
            with lock:
                seen[0] += 1
                number = seen[0]
            if number <= args.fail_first or random.random() < args.fail_rate:
                status, answer = 500, b"flaky receiver says no"
            elif any(verified):
                status, answer = 200, b"ok"
            else:
                status, answer = 401, b"bad signature"
            record = {
                "received_at": received,
                "headers": headers,
                "body": body.decode(),
                "verified": verified,
                "status": status,
            }
            with lock, args.log.open("a") as log:
                log.write(json.dumps(record) + "\n")
            self.send_response(status)
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
