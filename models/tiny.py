"""Tiny, untrained models built locally, for hosts with no GPU and no access to the hub.

Each is saved with save_pretrained, so the generators load it through the same
from_pretrained path as a real model. Their outputs are noise, but of the real formats.
"""

from __future__ import annotations

import fcntl
import importlib
import inspect
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers.utils import logging as transformers_logging

from models.progress import quiet_progress_bars
from models.registry import TINY_AUDIO, TINY_IMAGE, TINY_TEXT

# Any fixed seed would do: it makes a rebuild give the same weights.
_SEED = 0
_END_OF_TEXT = "<|endoftext|>"


def _corpus() -> list[str]:
    """Docstrings of stdlib modules: English text every Python install has."""
    docs: list[str] = []
    for name in ("collections", "functools", "itertools", "json", "pathlib", "re", "textwrap"):
        module = importlib.import_module(name)
        docs.append(inspect.getdoc(module) or "")
        docs += [
            doc
            for attr, value in sorted(vars(module).items())
            if not attr.startswith("_") and callable(value) and (doc := inspect.getdoc(value))
        ]
    return docs


def _build_text(path: Path) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    # Byte-level BPE like GPT-2's: any text encodes, nothing maps to an unknown token.
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024,
        special_tokens=[_END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(), trainer)
    context = 512
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=_END_OF_TEXT,
        eos_token=_END_OF_TEXT,
        unk_token=_END_OF_TEXT,
        pad_token=_END_OF_TEXT,
        model_max_length=context,
    )
    eos = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=context,
        n_embd=64,
        n_layer=2,
        n_head=2,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    tokenizer.save_pretrained(path)
    GPT2LMHeadModel(config).save_pretrained(path)


def _build_image(path: Path) -> None:
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    # CLIP's BPE appends "</w>" to a word's last symbol, so every byte symbol needs both forms;
    # with no merges, any prompt tokenizes byte by byte. transformers v5 wants the vocab as a
    # dict here: given file paths, it silently builds a two-token vocabulary.
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    symbols = [*alphabet, *(f"{s}</w>" for s in alphabet), "<|startoftext|>", _END_OF_TEXT]
    tokenizer = CLIPTokenizer(
        vocab={s: i for i, s in enumerate(symbols)}, merges=[], model_max_length=77
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            projection_dim=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    # Four VAE blocks give Stable Diffusion's 8x latent downscale, so sizes behave as in SD.
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(16, 16, 32, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
    )
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        norm_num_groups=8,
        cross_attention_dim=32,
        attention_head_dim=4,
    )
    # SD-Turbo's scheduler setup: "trailing" spacing makes even one step start from pure noise.
    scheduler = EulerDiscreteScheduler(timestep_spacing="trailing", steps_offset=1)
    # Any: to type checkers, diffusers' top-level names are placeholder classes.
    pipeline: Any = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(path)


def _build_audio(path: Path) -> None:
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    # Character vocabulary as MMS-TTS has it: id 0 is the blank put between characters.
    characters = ["<pad>", "<unk>", " ", "'", "-", *"abcdefghijklmnopqrstuvwxyz0123456789"]
    vocab_file = path / "vocab.json"
    vocab_file.write_text(json.dumps({c: i for i, c in enumerate(characters)}), encoding="utf-8")
    # phonemize=False: the default needs the espeak phonemizer; MMS-TTS reads characters too.
    tokenizer = VitsTokenizer(str(vocab_file), phonemize=False, normalize=True, add_blank=True)
    config = VitsConfig(
        vocab_size=len(characters),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        ffn_dim=64,
        flow_size=16,
        spectrogram_bins=33,
        prior_encoder_num_flows=2,
        prior_encoder_num_wavenet_layers=2,
        posterior_encoder_num_wavenet_layers=2,
        duration_predictor_num_flows=2,
        duration_predictor_filter_channels=32,
        depth_separable_num_layers=2,
        # 8 * 8 * 4 = 256 samples per frame, as MMS-TTS: speech-like durations at 16 kHz.
        upsample_initial_channel=32,
        upsample_rates=[8, 8, 4],
        upsample_kernel_sizes=[16, 16, 8],
        resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1, 3]],
        sampling_rate=16_000,
        pad_token_id=0,
    )
    tokenizer.save_pretrained(path)
    VitsModel(config).save_pretrained(path)


_BUILDERS: dict[str, Callable[[Path], None]] = {
    TINY_TEXT.name: _build_text,
    TINY_IMAGE.name: _build_image,
    TINY_AUDIO.name: _build_audio,
}
TINY_MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)


@contextmanager
def _build_lock(model_dir: Path, name: str) -> Iterator[None]:
    """Held while a model is built, so concurrent processes don't build it twice."""
    with open(model_dir / f".{name}.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _install(name: str, model_dir: Path, *, replace: bool) -> Path:
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown tiny model {name!r}; known: {', '.join(_BUILDERS)}") from None
    model_dir.mkdir(parents=True, exist_ok=True)
    target = model_dir / name
    with _build_lock(model_dir, name):
        if target.is_dir() and not replace:
            return target
        # Leftovers of a build that was killed: only the lock holder writes these.
        for stale in model_dir.glob(f".{name}.*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=model_dir))
        try:
            with torch.random.fork_rng(devices=[]), quiet_progress_bars(transformers_logging):
                torch.manual_seed(_SEED)
                builder(staging)
            # The model appears complete or not at all: readers don't take the lock.
            if target.exists():
                retired = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=model_dir))
                os.replace(target, retired / name)
                os.replace(staging, target)
                shutil.rmtree(retired)
            else:
                os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


def build_tiny_model(name: str, model_dir: Path) -> Path:
    """(Re)build the tiny model `name` into `model_dir / name`; returns that directory."""
    return _install(name, Path(model_dir), replace=True)


def ensure_tiny_model(name: str, model_dir: Path) -> Path:
    """The directory of the tiny model `name`, built first if it is missing."""
    return _install(name, Path(model_dir), replace=False)


def build_tiny_models(
    model_dir: Path, force: bool = False, names: Iterable[str] = TINY_MODEL_NAMES
) -> list[Path]:
    """Build the named tiny models (all by default); existing ones are kept unless `force`."""
    return [_install(name, Path(model_dir), replace=force) for name in names]
