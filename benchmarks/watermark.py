"""The invisible image watermark (aigc/watermark.py): how often its id survives what a
published image goes through, and what it costs a worker per image.

Images: 512x512 (SD-Turbo's size) of two sorts, smooth ones (sums of low-frequency waves,
blurred: the hard case for chroma marks, little texture to hide in) and noise (the tiny
models' output). Each gets a random 64-bit id; survival is the share read back exactly
after each edit. Baseline: encoding the same image as PNG, which a worker does anyway;
ratio: embedding's time over that."""

from __future__ import annotations

import io
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from aigc import watermark
from benchmarks.report import comparison

SIZE = 512
IMAGES, QUICK_IMAGES = 40, 8
# Every edit the issue names must keep the id in at least this share of images; the others
# are reported, to show where the mark ends (a crop moves the block grid: it is lost).
NAMED_EDITS = ("JPEG quality 90", "resized by 0.5")
MIN_SURVIVAL = 0.95
MIN_PSNR_DB = 35.0

Edit = Callable[[Image.Image], Image.Image]


def _jpeg(image: Image.Image, quality: int = 90) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def _half(image: Image.Image) -> Image.Image:
    return image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)


EDITS: dict[str, Edit] = {
    "none (PNG)": lambda image: image,
    "JPEG quality 90": _jpeg,
    "resized by 0.5": _half,
    "resized by 0.5, then JPEG 90": lambda image: _jpeg(_half(image)),
    "JPEG quality 75": lambda image: _jpeg(image, 75),
    "cropped to the left half": lambda image: image.crop((0, 0, image.width // 2, image.height)),
}


def smooth_image(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    pixels = np.zeros((SIZE, SIZE, 3))
    for channel in range(3):
        for _ in range(6):
            fx, fy = rng.uniform(0.5, 6, 2)
            phase = rng.uniform(0, 2 * np.pi)
            pixels[..., channel] += rng.uniform(20, 60) * np.sin(
                2 * np.pi * (fx * x + fy * y) + phase
            )
        pixels[..., channel] += rng.uniform(60, 190)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(1))


def noise_image(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))


def _psnr_db(original: Image.Image, marked: Image.Image) -> float:
    difference = np.asarray(original, np.float64) - np.asarray(marked, np.float64)
    return float(10 * np.log10(255**2 / np.mean(difference**2)))


def _png_s(image: Image.Image) -> float:
    started = time.perf_counter()
    image.save(io.BytesIO(), "PNG")
    return time.perf_counter() - started


def run(work_dir: Path, *, quick: bool) -> dict[str, Any]:
    del work_dir  # all in memory
    count = QUICK_IMAGES if quick else IMAGES
    ids = random.Random(0)
    survived = {sort: dict.fromkeys(EDITS, 0) for sort in ("smooth", "noise")}
    psnr: list[float] = []
    embed_s: list[float] = []
    read_s: list[float] = []
    png_s: list[float] = []
    false_reads = 0
    for seed in range(count):
        for sort, make in (("smooth", smooth_image), ("noise", noise_image)):
            original = make(seed)
            watermark_id = ids.getrandbits(watermark.ID_BITS)
            started = time.perf_counter()
            marked = watermark.embed(original, watermark_id)
            embed_s.append(time.perf_counter() - started)
            png_s.append(_png_s(original))
            psnr.append(_psnr_db(original, marked))
            for name, edit in EDITS.items():
                started = time.perf_counter()
                reading = watermark.read(edit(marked))
                if name == "none (PNG)":
                    read_s.append(time.perf_counter() - started)
                survived[sort][name] += reading.watermark_id == watermark_id
            false_reads += watermark.read(make(seed + 10_000)).watermark_id is not None
    rates = {
        sort: {name: hits / count for name, hits in by_edit.items()}
        for sort, by_edit in survived.items()
    }
    embed_ms = statistics.median(embed_s) * 1000
    png_ms = statistics.median(png_s) * 1000
    worst_named = min(rates[sort][name] for sort in rates for name in NAMED_EDITS)
    return comparison(
        description=(
            f"Invisible watermark on {count} smooth and {count} noise {SIZE}x{SIZE} images: "
            "share of ids read back after each edit, and its cost; ratio: embedding time "
            "over the PNG encoding a worker does anyway"
        ),
        figure={
            "survival": rates,
            "embed_ms_median": embed_ms,
            "read_ms_median": statistics.median(read_s) * 1000,
            "psnr_db_min": min(psnr),
            "psnr_db_median": statistics.median(psnr),
            "unmarked_images_read_as_marked": false_reads,
        },
        baseline={"png_encode_ms_median": png_ms},
        ratio=embed_ms / png_ms,
        targets={
            "survival_jpeg90_and_half_resize_min": (">=", MIN_SURVIVAL),
            "psnr_db_min": (">=", MIN_PSNR_DB),
            "unmarked_images_read_as_marked": ("<=", 0),
        },
        values={
            "survival_jpeg90_and_half_resize_min": worst_named,
            "psnr_db_min": min(psnr),
            "unmarked_images_read_as_marked": false_reads,
        },
    )
