"""The SDK is a light client: importing it pulls in none of the server's stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aigc.client


def test_importing_the_sdk_imports_no_server_or_ml_package() -> None:
    code = (
        "import sys, aigc.client, aigc.tabular\n"
        "heavy = {'fastapi', 'sqlalchemy', 'torch', 'celery', 'api', 'db', 'workers'}\n"
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_package_is_typed() -> None:
    assert aigc.client.__file__ is not None
    assert (Path(aigc.client.__file__).parent / "py.typed").is_file()
