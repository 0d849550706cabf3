"""Compute budget: what one job may ask of a worker, checked at submit time so that a job
the worker would refuse, or one that would hold a worker longer than the operator wants,
is a 422 and never a queued job.

- image: width × height × steps × num_images ≤ `max_image_pixel_steps`;
- text: prompt tokens + max_new_tokens ≤ `max_text_tokens` and ≤ the model's context.
  Tokens are counted with the model's own tokenizer (`tokenizer.json`, read by the
  `tokenizers` library, no torch) and the context comes from its `config.json`, where the
  model's files are on this host (tiny models, local paths, the Hugging Face cache). Where
  they are not, prompt tokens are estimated as UTF-8 bytes / 4 (rounded up) and only the
  configured budget is checked; the worker still refuses a prompt over the context;
- audio: prompt characters ÷ speaking_rate ≤ `max_audio_chars`, with rates above 1 counted
  as 1: slower speech is longer speech, but the model still reads every character, so
  faster speech does not buy a longer prompt.

Imports nothing from api/ and no ML framework.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from aigc.errors import OverBudget
from aigc.settings import Settings
from models.params import AudioParams, ImageParams, TextParams, _Params
from models.registry import ModelSpec

log = logging.getLogger(__name__)

# Without the model's tokenizer: BPE tokenizers average about four bytes of English text
# per token.
ESTIMATED_BYTES_PER_TOKEN = 4
# config.json keys that give a text model's context, in the order the worker reads them.
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "n_ctx")


@dataclass(frozen=True)
class TextModelFiles:
    """What the API knows of a text model without loading it."""

    tokenizer: Any  # tokenizers.Tokenizer; typed loosely so importing it stays optional
    context: int | None

    def count(self, prompt: str) -> int:
        return len(self.tokenizer.encode(prompt).ids)


def check_budget(spec: ModelSpec, prompt: str, params: _Params, settings: Settings) -> None:
    """Raises OverBudget naming the field to change, the budget, and what was asked."""
    if isinstance(params, ImageParams):
        _check_image(params, settings)
    elif isinstance(params, TextParams):
        _check_text(spec, prompt, params, settings)
    elif isinstance(params, AudioParams):
        _check_audio(prompt, params, settings)


def _check_image(params: ImageParams, settings: Settings) -> None:
    asked = params.width * params.height * params.steps * params.num_images
    if asked > settings.max_image_pixel_steps:
        raise OverBudget.for_field(
            "params",
            f"width × height × steps × num_images = {params.width} × {params.height} × "
            f"{params.steps} × {params.num_images} = {asked}; the budget is "
            f"{settings.max_image_pixel_steps}",
        )


def _check_text(spec: ModelSpec, prompt: str, params: TextParams, settings: Settings) -> None:
    files = text_model_files(spec, settings)
    if files is not None:
        prompt_tokens, how = files.count(prompt), "tokens"
    else:
        prompt_tokens = math.ceil(len(prompt.encode("utf-8")) / ESTIMATED_BYTES_PER_TOKEN)
        how = "tokens (estimated)"
    wanted = params.max_new_tokens
    limits = [(settings.max_text_tokens, "the text budget")]
    if files is not None and files.context is not None:
        limits.append((files.context, f"{spec.name}'s context"))
    for limit, what in sorted(limits):
        if prompt_tokens + wanted <= limit:
            continue
        field = "prompt" if prompt_tokens >= limit else "params.max_new_tokens"
        raise OverBudget.for_field(
            field,
            f"the prompt is {prompt_tokens} {how} and max_new_tokens is {wanted}: "
            f"{prompt_tokens + wanted} tokens; {what} is {limit} tokens",
        )


def _check_audio(prompt: str, params: AudioParams, settings: Settings) -> None:
    asked = len(prompt) / min(params.speaking_rate, 1.0)
    if asked > settings.max_audio_chars:
        raise OverBudget.for_field(
            "prompt",
            f"{len(prompt)} characters at speaking_rate {params.speaking_rate} count as "
            f"{asked:.0f}; the budget is {settings.max_audio_chars} characters at rate 1.0",
        )


def text_model_files(spec: ModelSpec, settings: Settings) -> TextModelFiles | None:
    """The model's tokenizer and context where its files are on this host, else None."""
    directory = _local_directory(spec, settings)
    if directory is None:
        return None
    return _load_text_model_files(str(directory))


def _local_directory(spec: ModelSpec, settings: Settings) -> Path | None:
    if spec.is_tiny:
        directory = settings.model_dir / spec.name
        return directory if (directory / "tokenizer.json").is_file() else None
    if not spec.source:
        return None  # a model with no files (echo)
    source = Path(spec.source)
    if source.is_dir():
        return source if (source / "tokenizer.json").is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    cached = try_to_load_from_cache(spec.source, "tokenizer.json")
    return Path(cached).parent if isinstance(cached, str) else None


@lru_cache(maxsize=32)
def _load_text_model_files(directory: str) -> TextModelFiles | None:
    """Read once per model directory (a directory that is found is not rewritten)."""
    try:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(Path(directory) / "tokenizer.json"))
    except Exception:  # a missing library or a file it cannot read: fall back to estimates
        log.warning("cannot read the tokenizer in %s; estimating prompt tokens", directory)
        return None
    return TextModelFiles(tokenizer=tokenizer, context=_context(Path(directory)))


def _context(directory: Path) -> int | None:
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for key in CONTEXT_KEYS:
        value = config.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None
