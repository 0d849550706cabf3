"""Encoding generator outputs as Artifact bytes (no torch: plain bytes, PIL and the stdlib)."""

from __future__ import annotations

import io
import wave
from typing import TYPE_CHECKING

from models.base import Artifact

if TYPE_CHECKING:
    from PIL.Image import Image

TEXT_MIME = "text/plain; charset=utf-8"


def text_artifact(text: str, tokens: int) -> Artifact:
    return Artifact(
        data=text.encode("utf-8"),
        mime_type=TEXT_MIME,
        extension="txt",
        facts={"characters": len(text), "tokens": tokens},
    )


def png_artifact(image: Image) -> Artifact:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    width, height = image.size
    return Artifact(
        data=buffer.getvalue(),
        mime_type="image/png",
        extension="png",
        facts={"width": width, "height": height},
    )


def wav_artifact(pcm16: bytes, sample_rate: int) -> Artifact:
    """`pcm16` is mono little-endian signed 16-bit samples."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm16)
    frames = len(pcm16) // 2
    return Artifact(
        data=buffer.getvalue(),
        mime_type="audio/wav",
        extension="wav",
        facts={"duration_s": round(frames / sample_rate, 3), "sample_rate": sample_rate},
    )
