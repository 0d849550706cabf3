"""Visible ("explicit") labels, drawn before the implicit label is written: a small corner
mark on images and a first line on text. Audio gets no audible mark (its metadata label
only): a spoken prefix needs a speech model of its own."""

from __future__ import annotations

import io
from dataclasses import replace
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from models.base import Artifact

TEXT_PREFIX = "[AI-generated]\n"
MARK = "AI生成 / AI-generated"
# Without a font that has the Chinese glyphs, the mark is the English part alone rather
# than boxes. These are the usual names of the Noto CJK and WenQuanYi fonts.
CJK_FONTS = ("NotoSansCJK-Regular.ttc", "NotoSansSC-Regular.otf", "wqy-microhei.ttc")
MARK_HEIGHT_SHARE = 0.05  # of the image's height: visible without covering the picture
MIN_FONT_PX = 8  # smaller is unreadable


def mark(artifact: Artifact) -> Artifact:
    """The artifact with its visible label; audio (and anything else) unchanged."""
    if artifact.extension == "png":
        return _mark_image(artifact)
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
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return replace(artifact, data=buffer.getvalue())
