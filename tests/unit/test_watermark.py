"""The invisible image watermark (aigc/watermark.py): an id written into an image is read
back from it, after a JPEG re-encoding and a halving; an unmarked image reads as none."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image

from aigc import watermark
from benchmarks.watermark import noise_image, smooth_image

MARK = 0x0123_4567_89AB_CDEF


def _jpeg(image: Image.Image, quality: int = 90) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


@pytest.mark.parametrize("make", [smooth_image, noise_image])
def test_an_id_survives_jpeg_and_a_halving(make: Callable[[int], Image.Image]) -> None:
    original = make(1)
    marked = watermark.embed(original, MARK)
    assert marked.size == original.size
    assert watermark.read(marked).watermark_id == MARK
    assert watermark.read(_jpeg(marked)).watermark_id == MARK
    half = marked.resize((256, 256), Image.Resampling.LANCZOS)
    assert watermark.read(half).watermark_id == MARK


def test_an_unmarked_image_reads_as_none() -> None:
    reading = watermark.read(smooth_image(2))
    assert reading.watermark_id is None and reading.clarity < 0.5


def test_an_image_too_small_for_the_id_is_left_as_it_is() -> None:
    tiny = noise_image(3).resize((64, 64))
    assert not watermark.can_carry(64, 64)
    assert watermark.embed(tiny, MARK) is tiny
    assert watermark.read(tiny).watermark_id is None


def test_an_id_is_64_bits_and_comes_from_the_content_ids_random_part() -> None:
    with pytest.raises(ValueError, match="64 bits"):
        watermark.embed(smooth_image(4), 2**64)
    assert watermark.watermark_id_of(bytes(range(16))) == int.from_bytes(bytes(range(8, 16)))
