"""Visible ("explicit") labels, drawn before the implicit label is written: a small corner
mark on images, a first line on text and an audible mark on audio, a short two-tone chime
before the speech. A spoken "AI-generated" would need a speech model in every worker that
stores audio; a chime any listener learns to recognise costs a few lines of numpy."""

from __future__ import annotations

import io
import wave
from dataclasses import replace
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from models.base import Artifact

TEXT_PREFIX = "[AI-generated]\n"
MARK = "AI生成 / AI-generated"
# Without a font that has the Chinese glyphs, the mark is the English part alone rather
# than boxes. These are the usual names of the Noto CJK and WenQuanYi fonts.
CJK_FONTS = ("NotoSansCJK-Regular.ttc", "NotoSansSC-Regular.otf", "wqy-microhei.ttc")
MARK_HEIGHT_SHARE = 0.05  # of the image's height: visible without covering the picture
MIN_FONT_PX = 8  # smaller is unreadable
# The chime: a rising fifth (A5 then E6), high enough to stand apart from speech, each tone
# faded in and out so it never clicks, then a pause before the audio itself.
CHIME_TONES_HZ = (880.0, 1320.0)
CHIME_TONE_S = 0.15
CHIME_PAUSE_S = 0.1  # tones and pause: 0.4 s in all
CHIME_FADE_S = 0.01
CHIME_LEVEL = 0.3  # of full scale: clearly audible, below the loudest speech


def mark(artifact: Artifact) -> Artifact:
    """The artifact with its visible (or audible) label; other formats unchanged."""
    if artifact.extension == "png":
        return _mark_image(artifact)
    if artifact.extension == "wav":
        return _chime_first(artifact)
    if artifact.extension == "txt":
        text = TEXT_PREFIX + artifact.data.decode("utf-8")
        facts = {**artifact.facts, "characters": len(text)}
        return replace(artifact, data=text.encode("utf-8"), facts=facts)
    return artifact


@lru_cache(maxsize=16)
def _font(size: int) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, str]:
    for name in CJK_FONTS:
        try:
            return ImageFont.truetype(name, size), MARK
        except OSError:
            continue
    return ImageFont.load_default(size), MARK.split(" / ")[-1]


def _mark_image(artifact: Artifact) -> Artifact:
    with Image.open(io.BytesIO(artifact.data)) as opened:
        image = opened.convert("RGB")
    draw_mark(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return replace(artifact, data=buffer.getvalue())


def draw_mark(image: Image.Image) -> None:
    """The corner mark, drawn into an RGB `image` in place."""
    width, height = image.size
    font, words = _font(max(MIN_FONT_PX, round(height * MARK_HEIGHT_SHARE)))
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), words, font=font)
    margin = max(2, (bottom - top) // 3)
    x = width - (right - left) - 2 * margin
    y = height - (bottom - top) - 2 * margin
    # A dark box under light text reads on any picture.
    draw.rectangle((x, y, width, height), fill=(0, 0, 0))
    draw.text((x + margin - left, y + margin - top), words, fill=(255, 255, 255), font=font)


def chime(sample_rate: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The audible mark as float samples in [-1, 1], mono, at `sample_rate`."""
    tone_frames = round(CHIME_TONE_S * sample_rate)
    fade_frames = max(1, round(CHIME_FADE_S * sample_rate))
    envelope = np.ones(tone_frames)
    ramp = np.linspace(0.0, 1.0, fade_frames)
    envelope[:fade_frames], envelope[-fade_frames:] = ramp, ramp[::-1]
    times = np.arange(tone_frames) / sample_rate
    tones = [CHIME_LEVEL * envelope * np.sin(2 * np.pi * hz * times) for hz in CHIME_TONES_HZ]
    pause = np.zeros(round(CHIME_PAUSE_S * sample_rate))
    return np.concatenate([*tones, pause])


# PCM sample widths in bytes: numpy's type and full scale (8-bit WAV is unsigned).
_PCM: dict[int, tuple[np.dtype[Any], int]] = {
    1: (np.dtype("u1"), 127),
    2: (np.dtype("<i2"), 32767),
    4: (np.dtype("<i4"), 2**31 - 1),
}


def _chime_first(artifact: Artifact) -> Artifact:
    with wave.open(io.BytesIO(artifact.data), "rb") as original:
        params = original.getparams()
        frames = original.readframes(params.nframes)
    if params.sampwidth not in _PCM:
        # The worker fails the job rather than store it without the mark it asked for.
        raise ValueError(f"no chime for {8 * params.sampwidth}-bit audio")
    dtype, full_scale = _PCM[params.sampwidth]
    samples = np.round(chime(params.framerate) * full_scale)
    if params.sampwidth == 1:
        samples += 128
    # The same chime on every channel, interleaved as the frames are.
    mark_bytes = np.repeat(samples.astype(dtype), params.nchannels).tobytes()
    out = io.BytesIO()
    with wave.open(out, "wb") as marked:
        marked.setparams(params)
        marked.writeframes(mark_bytes + frames)
    total_frames = params.nframes + len(samples)
    facts = {**artifact.facts, "duration_s": round(total_frames / params.framerate, 3)}
    return replace(artifact, data=out.getvalue(), facts=facts)
