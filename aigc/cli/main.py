"""The `aigc` command line: one command per process the system runs, plus the demo."""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from aigc.cli.audit import audit, blocked
from aigc.cli.batch import batch_app
from aigc.cli.common import TINY_NOTICE
from aigc.cli.teams import keys_app, teams_app
from aigc.cli.verify import c2pa_test_credentials, verify_command
from aigc.settings import get_settings

app = typer.Typer(
    help="aigc-jobs: asynchronous text, image and audio generation on Celery workers.",
    no_args_is_help=True,
    add_completion=False,
)
models_app = typer.Typer(help="The generators: list them, build the tiny offline ones.")
app.add_typer(models_app, name="models")
app.add_typer(batch_app, name="batch")
app.add_typer(teams_app, name="teams")
app.add_typer(keys_app, name="keys")
app.command()(audit)
app.command()(blocked)
app.command("verify")(verify_command)
app.command("c2pa-test-credentials")(c2pa_test_credentials)

console = Console()


def _logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def up(
    flower: Annotated[bool, typer.Option(help="Also start Flower.")] = True,
) -> None:
    """Start everything: embedded PostgreSQL and Valkey where no URL is set, migrations, the
    API, one worker for all queues, the dispatcher, the webhook deliverer and Flower.
    Ctrl-C stops it all."""
    from aigc.cli.stack import run_stack

    _logging()
    settings = get_settings()
    # SIGTERM (from a supervisor) stops the stack as cleanly as Ctrl-C does; and Ctrl-C
    # stops it even where the launcher was started with SIGINT ignored (a background job
    # of a shell without job control), in which case Python installs no handler of its own.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with run_stack(settings, flower=flower) as stack:
            console.print(f"[bold green]aigc-jobs is up[/]: API {stack.api_url} (docs at /docs)")
            console.print(
                f"Web page: {stack.api_url}/ui (sign in with the API key below)",
                highlight=False,
            )
            made = "new admin key" if stack.api_key_created else "admin key"
            console.print(
                f"API key: {made} of team default in {stack.api_key_file} "
                "(send it as `Authorization: Bearer <key>`)",
                highlight=False,
            )
            if stack.flower_credentials:
                user, _, password = stack.flower_credentials.partition(":")
                console.print(
                    f"Flower: http://127.0.0.1:{settings.flower_port} "
                    f"(user {user}, password {password})"
                )
            elif flower:
                console.print(
                    f"Flower: http://127.0.0.1:{settings.flower_port} "
                    "(credentials from AIGC_FLOWER_BASIC_AUTH)"
                )
            console.print("Ctrl-C stops everything.")
            while not stack.exited():
                time.sleep(0.5)
            console.print(f"[red]{', '.join(stack.exited())} exited; stopping the rest[/]")
            raise typer.Exit(1)
    except KeyboardInterrupt:
        console.print("stopped")


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int, typer.Option(help="Uvicorn worker processes.")] = 1,
) -> None:
    """Serve the HTTP API (uvicorn)."""
    import uvicorn

    from aigc.metrics import prepare_multiprocess_dir

    settings = get_settings()
    if workers > 1:
        # Each uvicorn worker counts its own requests; /metrics, served by any of them,
        # adds up the files they all write here (emptied first: no counts of a past run).
        prepare_multiprocess_dir(
            settings.var_dir / "prometheus" / f"api-{port or settings.api_port}"
        )
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        log_level="info",
    )


@app.command()
def worker(
    queues: Annotated[
        str,
        typer.Option(help="Comma-separated kinds to serve: text, image, audio (all their tiers)."),
    ] = "text,image,audio",
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "INFO",
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            help="Port to serve /metrics on (0: none); default AIGC_WORKER_METRICS_PORT. "
            "Each worker process on a host needs its own.",
        ),
    ] = None,
) -> None:
    """Run a Celery worker for the given queues (solo pool: safe with CUDA, one job at a time
    per process; run one process per GPU)."""
    from aigc.vocab import KINDS
    from workers.celery_app import get_celery_app
    from workers.metrics import serve_worker_metrics
    from workers.routing import queues_for_kinds

    kinds = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        raise typer.BadParameter(
            f"unknown kind(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(KINDS)}",
            param_hint="--queues",
        )
    # Each kind's tiers, highest first: a worker drains high before normal before low.
    names = queues_for_kinds(kinds)
    # The solo pool runs jobs in this process: its metrics server lives here too.
    settings = get_settings()
    if metrics_port is not None:
        settings = settings.model_copy(update={"worker_metrics_port": metrics_port})
    serve_worker_metrics(settings, kinds)
    get_celery_app().worker_main(
        [
            "worker",
            "--pool=solo",
            f"--queues={','.join(names)}",
            f"--hostname={'-'.join(kinds)}-{os.getpid()}@%h",
            f"--loglevel={loglevel}",
            "--task-events",
            f"--heartbeat-interval={settings.worker_heartbeat_s}",
            # Gossip and mingle talk to the other workers over broadcast messages; nothing
            # here needs them, and mingle waits a second at start for replies.
            "--without-gossip",
            "--without-mingle",
        ]
    )


@app.command()
def dispatcher() -> None:
    """Run the dispatcher: sends queued jobs to the workers by team share and tier, requeues
    jobs whose worker died and rebuilds what the broker lost. Without one nothing runs; run
    one or more anywhere, one leads at a time."""
    import threading

    from workers.dispatcher import run_dispatcher

    _logging()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_dispatcher(get_settings(), stop)


@app.command()
def deliverer() -> None:
    """Run the webhook deliverer: turns job events into signed webhook deliveries and sends
    them, with retries, to public addresses only. Run one or more anywhere; one fans out at
    a time, all of them send."""
    import threading

    from workers.deliverer import run_deliverer

    _logging()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_deliverer(get_settings(), stop)


@app.command()
def flower(
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    address: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="Serve Flower without credentials: only behind something that authenticates.",
        ),
    ] = False,
) -> None:
    """Run Flower, the Celery monitor (workers, queues, task events). It asks for the
    credentials in AIGC_FLOWER_BASIC_AUTH (user:password); /metrics and /healthcheck stay
    open for scrapers and health checks."""
    from workers.celery_app import get_celery_app

    settings = get_settings()
    if settings.flower_basic_auth is None and not no_auth:
        console.print(
            "[red]Flower needs credentials: set AIGC_FLOWER_BASIC_AUTH=user:password "
            "(or pass --no-auth to serve it without any).[/]"
        )
        raise typer.Exit(2)
    if settings.flower_basic_auth is not None:
        # Through Flower's environment rather than its command line, which `ps` shows.
        os.environ["FLOWER_BASIC_AUTH"] = settings.flower_basic_auth.get_secret_value()
    get_celery_app().start(
        ["flower", f"--port={port or settings.flower_port}", f"--address={address}"]
    )


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (alembic upgrade head)."""
    from db.migrate import upgrade

    upgrade(get_settings().require_database_url())
    console.print("database schema is up to date")


@app.command()
def demo(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the jobs.")] = 600.0,
) -> None:
    """Bring the stack up (or use a running one), generate a text, an image and an audio
    artifact, and show where they are."""
    from aigc.cli.demo import run_demo

    raise typer.Exit(run_demo(get_settings(), console, timeout_s=timeout))


@models_app.command("list")
def models_list() -> None:
    """The models this deployment serves, per kind."""
    from aigc.catalog import build_catalog

    catalog = build_catalog(get_settings())
    table = Table("kind", "name", "default", "description")
    for spec in sorted(catalog, key=lambda s: (s.kind, s.name)):
        default = "yes" if catalog.defaults[spec.kind] == spec.name else ""
        table.add_row(spec.kind, spec.name, default, spec.description)
    console.print(table)


@models_app.command("build-tiny")
def models_build_tiny(
    force: Annotated[bool, typer.Option(help="Rebuild models that already exist.")] = False,
) -> None:
    """Build the tiny offline text, image and audio models under AIGC_MODEL_DIR."""
    from rich.progress import Progress

    from models.registry import TINY_MODELS
    from models.tiny import build_tiny_model, ensure_tiny_model

    model_dir = get_settings().model_dir
    console.print(f"[yellow]{TINY_NOTICE}[/]")
    with Progress(console=console) as progress:
        task = progress.add_task("building tiny models", total=len(TINY_MODELS))
        for spec in TINY_MODELS:
            progress.update(task, description=f"building {spec.name}")
            path = (build_tiny_model if force else ensure_tiny_model)(spec.name, model_dir)
            progress.advance(task)
            progress.console.print(f"{spec.name}: {path}")


if __name__ == "__main__":
    app()
