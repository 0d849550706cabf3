"""An invisible watermark in generated images, carrying a 64-bit watermark id so that an
image whose metadata was stripped can still be traced to the artifact it came from.

The method is a DWT-DCT one like the invisible-watermark package's `dwtDct` (the one
Stable Diffusion's reference scripts use): the image's U chroma plane (YUV, as OpenCV
converts it) goes through a one-level Haar wavelet transform, and its approximation band is
cut into 4x4 blocks. Where `dwtDct` quantizes each block's largest coefficient, this
quantizes each block's DC term (its mean) onto a lattice of step `SCALE`, at a quarter step
for a 0 and three quarters for a 1, moving it to the nearest such point: a block's mean
survives JPEG and rescaling far better, and which coefficient is largest changes when it is
quantized (a quarter of the blocks, measured). The payload's bits repeat over all blocks and
are read back by a vote per bit. It is written here on numpy and PyWavelets because that
package imports torch and OpenCV when imported, and the API, which verifies images, must
import neither.

The payload is the id followed by a CRC-16 of it, so that an image with no watermark (or
one destroyed by editing) reads as none rather than as a random id. Each bit needs at
least one block: an image of fewer than PAYLOAD_BITS blocks (under 80x64 px, say) is too
small to carry it, and `embed` leaves it unmarked.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

import numpy as np
import pywt
from PIL import Image as PILImage
from PIL.Image import Image

# A resized copy is read back at the sizes it may have had: halved, two thirds, three
# quarters, doubled.
RESCALES = (2.0, 1.5, 4 / 3, 0.5)
# A rescaled candidate is at most the largest image a model makes (2048 px square): reading
# holds a few float64 copies of it, so a vast candidate would cost gigabytes.
MAX_RESCALED_PIXELS = 2048 * 2048

ID_BITS = 64
CHECK_BITS = 16
PAYLOAD_BITS = ID_BITS + CHECK_BITS
SCALE = 16.0  # lattice step: 16 kept every bit through JPEG 90 and a 0.5 resize at ~39 dB PSNR
BLOCK = 4
# Pixels per approximation-band block: one Haar level halves each side.
PIXELS_PER_BLOCK_SIDE = BLOCK * 2

# RGB <-> YUV as OpenCV's COLOR_RGB2YUV (BT.601, U and V offset by 128), so the marked
# plane is the one imwatermark marks.
_TO_YUV = np.array(
    [[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]]
)
_FROM_YUV = np.linalg.inv(_TO_YUV)
_CHROMA_OFFSET = np.array([0.0, 128.0, 128.0])
U_PLANE = 1


@dataclass(frozen=True)
class Reading:
    """What was read from an image: the id where the check matched, and how clearly the
    bits were read (1.0: every block agreed; near 0: noise)."""

    watermark_id: int | None
    clarity: float


def capacity_blocks(width: int, height: int) -> int:
    return (width // PIXELS_PER_BLOCK_SIDE) * (height // PIXELS_PER_BLOCK_SIDE)


def can_carry(width: int, height: int) -> bool:
    return capacity_blocks(width, height) >= PAYLOAD_BITS


def _payload_bits(watermark_id: int) -> np.ndarray:
    id_bytes = watermark_id.to_bytes(ID_BITS // 8, "big")
    check = binascii.crc_hqx(id_bytes, 0).to_bytes(CHECK_BITS // 8, "big")
    return np.unpackbits(np.frombuffer(id_bytes + check, dtype=np.uint8)).astype(np.float64)


def _planes(image: Image) -> tuple[np.ndarray, int, int]:
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    height, width = rgb.shape[:2]
    # Whole blocks only: the rest of the image is left as it is.
    rows = height // PIXELS_PER_BLOCK_SIDE * PIXELS_PER_BLOCK_SIDE
    cols = width // PIXELS_PER_BLOCK_SIDE * PIXELS_PER_BLOCK_SIDE
    yuv = rgb @ _TO_YUV.T + _CHROMA_OFFSET
    return yuv, rows, cols


def _blocks(band: np.ndarray) -> np.ndarray:
    """The band's 4x4 blocks, row by row, each flattened: shape (blocks, 16)."""
    rows, cols = band.shape
    return (
        band.reshape(rows // BLOCK, BLOCK, cols // BLOCK, BLOCK)
        .transpose(0, 2, 1, 3)
        .reshape(-1, BLOCK * BLOCK)
    )


def _unblocks(blocks: np.ndarray, rows: int, cols: int) -> np.ndarray:
    return (
        blocks.reshape(rows // BLOCK, cols // BLOCK, BLOCK, BLOCK)
        .transpose(0, 2, 1, 3)
        .reshape(rows, cols)
    )


def _lattice_offsets(means: np.ndarray) -> np.ndarray:
    """Where each block's mean sits between two lattice points, 0 <= offset < 1."""
    return np.mod(means, SCALE) / SCALE


def embed(image: Image, watermark_id: int) -> Image:
    """A copy of `image` carrying `watermark_id` (0 <= id < 2**64); the image itself when
    it is too small to carry it (see can_carry)."""
    if not 0 <= watermark_id < 2**ID_BITS:
        raise ValueError(f"a watermark id is {ID_BITS} bits")
    if not can_carry(*image.size):
        return image
    yuv, rows, cols = _planes(image)
    approximation, details = pywt.dwt2(yuv[:rows, :cols, U_PLANE], "haar")
    blocks = _blocks(approximation)
    bits = np.resize(_payload_bits(watermark_id), len(blocks))
    means = blocks.mean(axis=1)
    # The nearest lattice point at a quarter step (bit 0) or three quarters (bit 1).
    target = np.floor(means / SCALE) * SCALE + (0.25 + 0.5 * bits) * SCALE
    target += np.where(target - means > SCALE / 2, -SCALE, 0.0)
    target += np.where(means - target > SCALE / 2, SCALE, 0.0)
    blocks += (target - means)[:, None]
    approximation = _unblocks(blocks, *approximation.shape)
    yuv[:rows, :cols, U_PLANE] = pywt.idwt2((approximation, details), "haar")
    rgb = (yuv - _CHROMA_OFFSET) @ _FROM_YUV.T
    marked = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return PILImage.fromarray(marked, "RGB")


def read(image: Image) -> Reading:
    """The watermark id `image` carries, if any: read at its own size, then (the block grid
    being lost when an image is resized) rescaled by each of RESCALES, as a copy shrunk or
    enlarged by that factor would have been."""
    reading = read_at_size(image)
    for factor in RESCALES:
        if reading.watermark_id is not None:
            break
        width, height = image.size
        size = (round(width * factor), round(height * factor))
        if not can_carry(*size) or size[0] * size[1] > MAX_RESCALED_PIXELS:
            continue
        rescaled = image.resize(size, PILImage.Resampling.LANCZOS)
        candidate = read_at_size(rescaled)
        if candidate.clarity > reading.clarity or candidate.watermark_id is not None:
            reading = candidate
    return reading


def read_at_size(image: Image) -> Reading:
    """The watermark id `image` carries at its own size, if any."""
    if not can_carry(*image.size):
        return Reading(None, 0.0)
    yuv, rows, cols = _planes(image)
    approximation, _ = pywt.dwt2(yuv[:rows, :cols, U_PLANE], "haar")
    blocks = _blocks(approximation)
    votes = (_lattice_offsets(blocks.mean(axis=1)) > 0.5).astype(np.float64)
    positions = np.arange(len(blocks)) % PAYLOAD_BITS
    share = np.bincount(positions, weights=votes, minlength=PAYLOAD_BITS) / np.bincount(
        positions, minlength=PAYLOAD_BITS
    )
    bits = share > 0.5
    clarity = float(np.mean(np.abs(share - 0.5)) * 2)
    data = np.packbits(bits.astype(np.uint8)).tobytes()
    id_bytes, check = data[: ID_BITS // 8], data[ID_BITS // 8 :]
    if binascii.crc_hqx(id_bytes, 0).to_bytes(CHECK_BITS // 8, "big") != check:
        return Reading(None, clarity)
    return Reading(int.from_bytes(id_bytes, "big"), clarity)


def watermark_id_of(content_id: bytes) -> int:
    """The 64-bit watermark id of a content id (an artifact's UUID bytes): its last 64 bits,
    the random part of a UUIDv7, so ids made in the same millisecond still differ."""
    return int.from_bytes(content_id[-ID_BITS // 8 :], "big")
