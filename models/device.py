"""Device, dtype and random-number choices shared by the torch generators."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from models.params import MAX_SEED, Kind


def pick_device(requested: str | None = None) -> torch.device:
    """The requested device, else CUDA when present, else CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(device: torch.device, kind: Kind) -> torch.dtype:
    if device.type != "cuda":
        # Half precision on CPU is slow and poorly supported by many kernels.
        return torch.float32
    if kind == "text":
        # bf16 keeps fp32's exponent range, so LLM activations don't overflow as in fp16.
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if kind == "image":
        return torch.float16
    # VITS is small: half precision would save little memory for a numerical risk.
    return torch.float32


def random_seed() -> int:
    return secrets.randbelow(MAX_SEED + 1)


def seeded_generator(seed: int, device: torch.device) -> torch.Generator:
    """A private generator, so a request's noise depends on its seed alone."""
    return torch.Generator(device=device).manual_seed(seed)


@contextmanager
def seeded_global_rng(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch's global RNG for code that draws from it (transformers sampling, VITS noise).

    The previous RNG state is restored afterwards so a seeded request doesn't make the
    unseeded requests that follow it deterministic. With no seed, the global RNG runs on.
    """
    if seed is None:
        yield
        return
    cuda_devices = list(range(torch.cuda.device_count())) if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        yield
