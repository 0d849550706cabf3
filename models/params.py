"""Per-kind generation parameters: the bounds a client's `params` are validated against.

Pure pydantic, no torch, so the API validates requests without loading the ML stack.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Kind(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"


KINDS: tuple[Kind, ...] = tuple(Kind)

MAX_SEED = 2**32 - 1  # torch.Generator accepts 64-bit seeds; 32 bits keep seeds portable
MAX_NEGATIVE_PROMPT_CHARS = 2_000


class _Params(BaseModel):
    # Unknown params are an error, not silently ignored: a typo must not pass unnoticed.
    # Strict types: `true` is not 1 and "5" is not 5 (an int is still a valid float).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    seed: int | None = Field(
        None, ge=0, le=MAX_SEED, description="Random seed; the same seed gives the same output."
    )


class TextParams(_Params):
    max_new_tokens: int = Field(128, ge=1, le=4096, description="Tokens to generate at most.")
    temperature: float = Field(
        0.7, ge=0.0, le=2.0, description="Sampling temperature; 0 means greedy decoding."
    )
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling probability mass.")


class ImageParams(_Params):
    width: int = Field(512, ge=64, le=2048, multiple_of=8, description="Pixels.")
    height: int = Field(512, ge=64, le=2048, multiple_of=8, description="Pixels.")
    steps: int = Field(4, ge=1, le=150, description="Denoising steps.")
    guidance_scale: float = Field(
        0.0, ge=0.0, le=30.0, description="Classifier-free guidance; 0 disables it."
    )
    negative_prompt: str | None = Field(None, max_length=MAX_NEGATIVE_PROMPT_CHARS)
    num_images: int = Field(1, ge=1, le=8, description="Images to generate for the prompt.")


class AudioParams(_Params):
    speaking_rate: float = Field(1.0, ge=0.25, le=4.0, description="Speech speed multiplier.")
    noise_scale: float = Field(
        0.667, ge=0.0, le=2.0, description="Variation of the speech; 0 is flat."
    )


PARAMS_BY_KIND: dict[Kind, type[_Params]] = {
    Kind.TEXT: TextParams,
    Kind.IMAGE: ImageParams,
    Kind.AUDIO: AudioParams,
}
