"""What several commands print or name the same way."""

from __future__ import annotations

TINY_NOTICE = (
    "Tiny models are built locally with random weights so everything runs offline; "
    "their output is noise-like (garbled text, noise images and audio), not real content. "
    "Set AIGC_PROFILE=hub on a GPU host to run real models."
)

# File extensions for the artifact types the generators produce.
EXTENSIONS = {"text/plain; charset=utf-8": "txt", "image/png": "png", "audio/wav": "wav"}
