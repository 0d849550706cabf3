"""`aigc verify FILE`: check a file's AI-generated label against this deployment's label
key, offline (no API call). Exit codes: 0 a valid label, 1 none, 2 a damaged, altered or
foreign one, and 2 too where it cannot check (not a PNG, WAV or text; no label key)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from aigc.cli.common import console, err_console
from aigc.content_credentials import ContentCredentials, Credentials, write_test_credentials
from aigc.labels import LayerStatus, VerifyReport, verify
from aigc.labels.keys import label_signer
from aigc.settings import get_settings

EXIT_CODES = {LayerStatus.VALID: 0, LayerStatus.MISSING: 1, LayerStatus.INVALID: 2}
EXIT_CANNOT_CHECK = 2  # nothing shows the file is labelled by us: as for an invalid label
# Artifacts are far smaller; a bigger file is not one of ours and is not read whole.
MAX_FILE_BYTES = 512 * 1024 * 1024


def verify_command(
    file: Annotated[
        Path, typer.Argument(help="A PNG, WAV, text, or re-encoded JPEG/WebP file.", exists=True)
    ],
    sidecar: Annotated[
        Path | None,
        typer.Option(
            help="For text: its label (FILE.label.json, or the job response's label object). "
            "Default: FILE.label.json where it exists.",
            exists=True,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check a file's AI-generated label: found, signed by this deployment, which job."""
    if sidecar is None and Path(f"{file}.label.json").is_file():
        sidecar = Path(f"{file}.label.json")
    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(f"{file} is over {MAX_FILE_BYTES // 2**20} MiB: not an artifact")
        settings = get_settings()
        signer = label_signer(settings, create=False)
        credentials = Credentials.existing(settings)
        report = verify(
            file.read_bytes(),
            signer,
            filename=file.name,
            sidecar=sidecar.read_bytes() if sidecar is not None else None,
            credentials=(
                ContentCredentials(credentials, settings.label_producer) if credentials else None
            ),
        )
    except (OSError, ValueError, RuntimeError) as exc:  # UnsupportedFormat is a ValueError
        err_console.print(f"[red]cannot verify[/]: {exc}", highlight=False)
        raise typer.Exit(EXIT_CANNOT_CHECK) from exc
    if as_json:
        console.print_json(json.dumps(report.as_dict()))
    else:
        _print(file, report)
    raise typer.Exit(EXIT_CODES[report.status])


def _print(file: Path, report: VerifyReport) -> None:
    colour = {"valid": "green", "invalid": "red", "missing": "yellow"}[report.status]
    console.print(f"{file} ({report.format}): [{colour}]{report.status}[/]", highlight=False)
    shown = False  # the label's fields once, under the first layer that carries it
    for layer in report.layers:
        console.print(f"  {layer.layer}: {layer.status}: {layer.detail}", highlight=False)
        if layer.label is not None and not shown:
            shown = True
            for name, value in layer.label.as_dict().items():
                console.print(f"    {name}: {value}", highlight=False)


def c2pa_test_credentials(
    folder: Annotated[
        Path, typer.Argument(help="Where to write chain.pem, key.pem and trust-anchors.pem.")
    ],
) -> None:
    """Make test C2PA signing credentials for a trial deployment of several containers
    (docker-compose's AIGC_C2PA_DIR): they must all sign with one. Production uses a
    certificate from a CA that C2PA readers trust."""
    try:
        paths = write_test_credentials(folder)
    except (OSError, FileExistsError) as exc:
        err_console.print(f"[red]not written[/]: {exc}", highlight=False)
        raise typer.Exit(1) from exc
    for path in paths:
        console.print(f"wrote {path}", highlight=False)
