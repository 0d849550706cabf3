"""The README's SDK example, run as written, and `aigc demo` on the SDK, against the real
stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rich.console import Console

from aigc.cli.demo import _submit_and_follow
from aigc.client import Client
from aigc.labels import LayerStatus, verify
from aigc.labels.keys import label_signer
from aigc.settings import Settings
from tests.conftest import TeamKey
from tests.e2e.conftest import LiveStack

# Word for word the README's "Python SDK" example.
README_EXAMPLE = """\
from aigc.client import Client

with Client() as client:  # AIGC_API_URL and AIGC_API_KEY from the environment
    job = client.wait(client.submit("text", "A haiku about queues").id)
    print(job.status, client.download(job.artifacts[0], "haiku.txt").read_text())
"""


def test_the_readme_example_runs(live: LiveStack, team: TeamKey, tmp_path: Path) -> None:
    # This checkout's aigc, whichever one the virtualenv has installed.
    source = str(Path(__file__).resolve().parents[2])
    env = {**live.env, "PYTHONPATH": source, "AIGC_API_URL": live.api_url, "AIGC_API_KEY": team.key}
    result = subprocess.run(
        [sys.executable, "-c", README_EXAMPLE],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("succeeded ")
    assert (tmp_path / "haiku.txt").read_text(encoding="utf-8") in result.stdout


def test_the_demo_runs_on_the_sdk(live: LiveStack, team: TeamKey, tmp_path: Path) -> None:
    console = Console(file=(tmp_path / "demo.log").open("w"), width=200)
    with Client(live.api_url, team.key) as client:
        assert _submit_and_follow(client, console, tmp_path / "demo", timeout_s=120) == 0
    files = sorted((tmp_path / "demo").iterdir())
    # The text's label beside it: text bytes carry none.
    assert sorted(p.suffix for p in files) == [".json", ".png", ".txt", ".wav"]
    signer = label_signer(Settings(var_dir=Path(live.env["AIGC_VAR_DIR"])), create=False)
    for path in files:
        if path.suffix != ".json":
            sidecar = Path(f"{path}.label.json")
            found = verify(
                path.read_bytes(),
                signer,
                filename=path.name,
                sidecar=sidecar.read_bytes() if sidecar.exists() else None,
            )
            assert found.status == LayerStatus.VALID, (path, found)
