"""What several commands print or name the same way."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from aigc.private_file import read_private
from aigc.settings import Settings

TINY_NOTICE = (
    "Tiny models are built locally with random weights so everything runs offline; "
    "their output is noise-like (garbled text, noise images and audio), not real content. "
    "Set AIGC_PROFILE=hub on a GPU host to run real models."
)

# File extensions for the artifact types the generators produce.
EXTENSIONS = {"text/plain; charset=utf-8": "txt", "image/png": "png", "audio/wav": "wav"}

# Tables and results to stdout, messages to stderr, each line whole whatever the terminal
# width (so it can be grepped, and `keys create` prints only the key on stdout).
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
EXIT_FAILED = 1  # what a command that could not do its work exits with

API_KEY_FILE = "api-key"  # under AIGC_VAR_DIR, written by `aigc up`


class MissingApiKey(Exception):
    """Neither AIGC_API_KEY nor the key file `aigc up` writes; the message says so."""


def api_key_path(settings: Settings) -> Path:
    return settings.var_dir / API_KEY_FILE


def api_key(settings: Settings) -> str:
    """The key commands call the API with: AIGC_API_KEY, else the file `aigc up` wrote."""
    if settings.api_key is not None:
        return settings.api_key.get_secret_value().strip()
    path = api_key_path(settings)
    try:
        key = read_private(path)
    except OSError as exc:
        raise MissingApiKey(f"cannot read the API key in {path}: {exc.strerror}") from exc
    if not key:
        raise MissingApiKey(
            f"no API key: set AIGC_API_KEY, or run `aigc up` once, which writes one to {path}"
        )
    return key
