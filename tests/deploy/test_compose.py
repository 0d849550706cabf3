"""Static checks of the production deployment: docker-compose.yml and deploy/Dockerfile.*.

No Docker engine is needed: the compose file is parsed as YAML, and every command a built
service runs is checked against the real CLI with `--help` (typer exits 0 on `--help` before
validating option values, and exits 2 on an unknown command or option).
"""

from __future__ import annotations

import json
import re
import shlex
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"

EXPECTED_SERVICES = {
    "postgres",
    "redis",
    "migrate",
    "api",
    "worker-text",
    "worker-image",
    "worker-audio",
    "flower",
    "dispatcher",
}
WORKERS = {"worker-text": "text", "worker-image": "image", "worker-audio": "audio"}


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


def services() -> dict[str, dict[str, Any]]:
    return load_compose()["services"]


def built_services() -> list[str]:
    return sorted(name for name, svc in services().items() if "build" in svc)


def dockerfile_path(service: dict[str, Any]) -> Path:
    build = service["build"]
    if isinstance(build, str):
        return ROOT / build / "Dockerfile"
    return ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")


def dockerfile_cmd(path: Path) -> list[str]:
    """The last CMD of a Dockerfile, exec form (JSON) or shell form."""
    cmds = [
        line.strip()[len("CMD") :].strip()
        for line in path.read_text().splitlines()
        if re.match(r"\s*CMD\s", line)
    ]
    assert cmds, f"{path.name} has no CMD"
    cmd = cmds[-1]
    return json.loads(cmd) if cmd.startswith("[") else shlex.split(cmd)


def service_command(name: str) -> list[str]:
    svc = services()[name]
    command = svc.get("command")
    if command is None:
        return dockerfile_cmd(dockerfile_path(svc))
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def depends_on_names(service: dict[str, Any]) -> list[str]:
    deps = service.get("depends_on", [])
    return list(deps) if isinstance(deps, (list, dict)) else []


def test_expected_services_exist() -> None:
    missing = EXPECTED_SERVICES - set(services())
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"


def test_some_services_are_built_here() -> None:
    assert {"api", "migrate", "flower", *WORKERS} <= set(built_services())


@pytest.mark.parametrize("name", built_services())
def test_built_service_runs_aigc(name: str) -> None:
    command = service_command(name)
    assert command and command[0] == "aigc", f"{name} runs {command!r}, not the aigc CLI"


@pytest.mark.parametrize("name", built_services())
def test_built_service_command_is_a_real_cli_command(name: str) -> None:
    from typer.testing import CliRunner

    from aigc.cli.main import app

    args = service_command(name)[1:]
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, (
        f"{name}: `aigc {shlex.join(args)} --help` exited {result.exit_code}:\n{result.output}"
    )


@pytest.mark.parametrize("dockerfile", ["Dockerfile.api", "Dockerfile.worker"])
def test_dockerfile_cmd_is_a_real_cli_command(dockerfile: str) -> None:
    from typer.testing import CliRunner

    from aigc.cli.main import app

    command = dockerfile_cmd(ROOT / "deploy" / dockerfile)
    assert command[0] == "aigc"
    result = CliRunner().invoke(app, [*command[1:], "--help"])
    assert result.exit_code == 0, f"{dockerfile} CMD {command!r}:\n{result.output}"


@pytest.mark.parametrize("name,flag", [("api", "--host"), ("flower", "--address")])
def test_published_service_binds_all_interfaces(name: str, flag: str) -> None:
    # The CLI binds 127.0.0.1 by default, which a published container port cannot reach.
    command = service_command(name)
    assert flag in command and command[command.index(flag) + 1] == "0.0.0.0", command


def test_depends_on_names_existing_services() -> None:
    all_services = services()
    for name, svc in all_services.items():
        for dep in depends_on_names(svc):
            assert dep in all_services, f"{name} depends on unknown service {dep!r}"


def test_depends_on_uses_conditions() -> None:
    allowed = {"service_healthy", "service_completed_successfully"}
    for name, svc in services().items():
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on should say which condition"
        for dep, spec in deps.items():
            assert spec.get("condition") in allowed, f"{name} -> {dep}: {spec!r}"


@pytest.mark.parametrize("name", sorted(WORKERS))
def test_worker_reserves_a_gpu(name: str) -> None:
    devices = services()[name]["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices
    ), f"{name} reserves no NVIDIA GPU"


@pytest.mark.parametrize("name,queue", sorted(WORKERS.items()))
def test_worker_consumes_its_queue(name: str, queue: str) -> None:
    command = service_command(name)
    assert command[:2] == ["aigc", "worker"]
    assert command[command.index("--queues") + 1] == queue


def test_postgres_password_is_required() -> None:
    text = COMPOSE_FILE.read_text()
    uses = re.findall(r"\$\{POSTGRES_PASSWORD([^}]*)\}", text)
    assert uses, "POSTGRES_PASSWORD is never used"
    assert all(u.startswith(":?") for u in uses), f"POSTGRES_PASSWORD not required: {uses}"
    assert "POSTGRES_PASSWORD" in services()["postgres"]["environment"]


@pytest.mark.parametrize("name", built_services())
def test_build_dockerfile_exists(name: str) -> None:
    path = dockerfile_path(services()[name])
    assert path.is_file(), f"{name}: {path.relative_to(ROOT)} does not exist"


@pytest.mark.parametrize("name", ["postgres", "redis", "api", "flower"])
def test_long_running_service_has_healthcheck(name: str) -> None:
    healthcheck = services()[name].get("healthcheck", {})
    assert healthcheck.get("test") and not healthcheck.get("disable")


def test_migrate_is_one_shot() -> None:
    migrate = services()["migrate"]
    assert service_command("migrate")[:2] == ["aigc", "migrate"]
    assert str(migrate.get("restart", "no")) == "no"
    for name in ["api", *WORKERS]:
        cond = services()[name]["depends_on"]["migrate"]["condition"]
        assert cond == "service_completed_successfully", name


@pytest.mark.parametrize("name", sorted({"migrate", "api", "flower", *WORKERS}))
def test_app_services_share_the_settings(name: str) -> None:
    env = services()[name]["environment"]
    for key in ("AIGC_DATABASE_URL", "AIGC_REDIS_URL", "AIGC_ARTIFACT_DIR"):
        assert key in env, f"{name} lacks {key}"
    assert env["AIGC_PROFILE"] == "hub"


@pytest.mark.parametrize("name", sorted({"api", *WORKERS}))
def test_artifacts_volume_is_shared(name: str) -> None:
    volumes = [str(v) for v in services()[name].get("volumes", [])]
    assert any(v.endswith(":/data/artifacts") for v in volumes), f"{name}: {volumes}"


def dockerfile_lines(name: str) -> list[str]:
    """The instructions of deploy/<name>, continuation lines joined."""
    text = (ROOT / "deploy" / name).read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def dockerfile_args(name: str) -> dict[str, str]:
    return dict(
        line[len("ARG ") :].split("=", 1)
        for line in dockerfile_lines(name)
        if line.startswith("ARG ") and "=" in line
    )


@pytest.mark.parametrize("dockerfile", ["Dockerfile.api", "Dockerfile.worker"])
def test_image_runs_as_a_fixed_non_root_user(dockerfile: str) -> None:
    lines = dockerfile_lines(dockerfile)
    users = [i for i, line in enumerate(lines) if line.startswith("USER ")]
    assert users, f"{dockerfile} never leaves root"
    user = lines[users[-1]].split()[1]
    assert user not in {"root", "0"} and not user.startswith("0:"), user
    # Nothing runs as root after it, and the command runs as that user.
    assert not any(line.startswith("RUN ") for line in lines[users[-1] :])
    created = next(line for line in lines if "useradd" in line)
    uid = re.search(r"--uid\s+\"?(\$\{\w+\}|\d+)\"?", created)
    assert uid, created
    uid_value = dockerfile_args(dockerfile).get(uid.group(1).strip("${}"), uid.group(1))
    assert uid_value.isdigit() and int(uid_value) >= 1000, uid_value
    assert re.search(rf"useradd .*\b{user}\b", created)
    assert re.search(rf"chown -R {user}:{user} /data\b", created), "data dirs not owned"


def test_images_share_the_uid() -> None:
    # Volumes written by the API and by the workers must be writable by both.
    uids = {dockerfile_args(name)["AIGC_UID"] for name in ("Dockerfile.api", "Dockerfile.worker")}
    assert len(uids) == 1, uids


@pytest.mark.parametrize("name", built_services())
def test_volumes_are_owned_by_the_image_user(name: str) -> None:
    service = services()[name]
    assert "user" not in service, f"{name} overrides the image's non-root user"
    created = " ".join(
        line for line in dockerfile_lines(dockerfile_path(service).name) if "mkdir -p" in line
    )
    for volume in service.get("volumes", []):
        target = next(part for part in str(volume).split(":") if part.startswith("/"))
        # A named volume starts as a copy of the image's directory, owner included.
        made = [path for path in created.split() if f"{path}/".startswith(f"{target}/")]
        assert made, f"{name}: {target} is not made (and owned) in the image"


def test_flower_requires_credentials() -> None:
    flower = services()["flower"]
    value = str(flower["environment"]["AIGC_FLOWER_BASIC_AUTH"])
    assert value.startswith("${AIGC_FLOWER_BASIC_AUTH:?"), value
    assert "--no-auth" not in service_command("flower")


def test_api_requires_the_url_signing_key() -> None:
    # Replicas generating keys of their own would refuse each other's signed URLs.
    value = str(services()["api"]["environment"]["AIGC_URL_SIGNING_KEY"])
    assert value.startswith("${AIGC_URL_SIGNING_KEY:?"), value
    uses = re.findall(r"\$\{AIGC_URL_SIGNING_KEY([^}]*)\}", COMPOSE_FILE.read_text())
    assert uses and all(u.startswith(":?") for u in uses), uses


@pytest.mark.parametrize("name", ["api", "worker-text", "worker-image", "worker-audio"])
def test_workers_and_api_share_the_required_label_key(name: str) -> None:
    # Keys generated per container would make every label invalid at the API.
    value = str(services()[name]["environment"]["AIGC_LABEL_SIGNING_KEY"])
    assert value.startswith("${AIGC_LABEL_SIGNING_KEY:?"), value


def test_worker_image_torch_is_the_tested_one() -> None:
    pinned = dockerfile_args("Dockerfile.worker")["TORCH_VERSION"]
    build_args = services()["worker-text"]["build"]["args"]
    assert build_args["TORCH_VERSION"] == f"${{TORCH_VERSION:-{pinned}}}"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"^TORCH_SPEC \?= torch=={re.escape(pinned)}$", makefile, re.M), pinned
    try:
        tested = version("torch").split("+")[0]
    except PackageNotFoundError:
        return  # an API-only install: the Makefile's pin is what the tests run with
    assert tested == pinned, f"tests run torch {tested}, the worker image builds {pinned}"


@pytest.mark.parametrize("name", ["api", "worker-text", "worker-image", "worker-audio"])
def test_workers_and_api_share_the_operators_c2pa_credentials(name: str) -> None:
    # Test credentials made per container: the API would trust no worker's manifest.
    service = services()[name]
    mounts = [str(volume) for volume in service.get("volumes", [])]
    assert any(m.startswith("${AIGC_C2PA_DIR:?") and ":/run/c2pa:ro" in m for m in mounts), mounts
    environment = service["environment"]
    assert environment["AIGC_C2PA_SIGNING_CERT"] == "/run/c2pa/chain.pem"
    assert environment["AIGC_C2PA_SIGNING_KEY"] == "/run/c2pa/key.pem"
    assert environment["AIGC_C2PA_TRUST_ANCHORS"] == "/run/c2pa/trust-anchors.pem"
