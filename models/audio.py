"""Text-to-speech with a VITS model (MMS-TTS and the like) from transformers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from transformers import (
    AutoConfig,
    AutoTokenizer,
    BatchEncoding,
    PreTrainedTokenizerBase,
    VitsModel,
)
from transformers.utils import logging as transformers_logging

from models.artifacts import wav_artifact
from models.base import Artifact, CancelCheck, GenerationRequest, Generator, ProgressCallback
from models.device import pick_device, pick_dtype, seeded_global_rng
from models.errors import InvalidInput, ModelLoadError
from models.loading import check_local_source
from models.params import AudioParams, Kind
from models.progress import quiet_progress_bars, raise_if_canceled

# VITS attends over the whole input at once, so memory grows with its square; this bounds
# one job to a few minutes of speech.
MAX_INPUT_TOKENS = 4096


class AudioGenerator(Generator[AudioParams]):
    kind: ClassVar[Kind] = Kind.AUDIO

    def __init__(self, source: str, device: str | None = None) -> None:
        super().__init__(source, device)
        self._model: VitsModel | None = None
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._device = pick_device(device)

    def load(self) -> None:
        check_local_source(self.source)
        try:
            config = AutoConfig.from_pretrained(self.source)
            tokenizer = AutoTokenizer.from_pretrained(self.source)
        except Exception as exc:  # from_pretrained raises OSError, ValueError, hub errors...
            raise ModelLoadError(f"cannot load audio model {self.source!r}: {exc}") from exc
        # VitsModel would load another architecture's weights with only a warning, as noise.
        if config.model_type != "vits":
            raise ModelLoadError(
                f"{self.source!r} is a {config.model_type!r} model; "
                "the audio generator runs VITS models (such as MMS-TTS)"
            )
        try:
            with quiet_progress_bars(transformers_logging):
                model = VitsModel.from_pretrained(
                    self.source,
                    config=config,
                    dtype=pick_dtype(self._device, Kind.AUDIO),
                    device_map=self._device,
                )
        except Exception as exc:
            raise ModelLoadError(f"cannot load audio model {self.source!r}: {exc}") from exc
        self._tokenizer = tokenizer
        self._model = model

    def warmup(self) -> None:
        self.generate([GenerationRequest("a", AudioParams(seed=0))])

    def generate(
        self,
        requests: Sequence[GenerationRequest[AudioParams]],
        *,
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> list[list[Artifact]]:
        # Every prompt is checked before any compute, so a bad one fails the call at once.
        inputs = [self._encode(request.prompt) for request in requests]
        results: list[list[Artifact]] = []
        for done, (request, encoded) in enumerate(zip(requests, inputs, strict=True)):
            raise_if_canceled(should_cancel)
            results.append([self._synthesize(encoded, request.params)])
            if on_progress is not None:
                on_progress(done + 1, len(requests))
        return results

    def _loaded(self) -> tuple[VitsModel, PreTrainedTokenizerBase]:
        if self._model is None or self._tokenizer is None:
            raise RuntimeError("AudioGenerator.load() was not called")
        return self._model, self._tokenizer

    def _encode(self, prompt: str) -> BatchEncoding:
        _, tokenizer = self._loaded()
        encoded = tokenizer(prompt, return_tensors="pt")
        # VITS tokenizers drop characters outside their alphabet (and intersperse blanks),
        # so a prompt of only unknown characters leaves nothing to speak.
        filler = {tokenizer.pad_token_id, tokenizer.unk_token_id}
        if all(token in filler for token in encoded["input_ids"][0].tolist()):
            raise InvalidInput("the prompt has no characters this voice model can pronounce")
        if encoded["input_ids"].shape[1] > MAX_INPUT_TOKENS:
            raise InvalidInput(
                f"the prompt is {encoded['input_ids'].shape[1]} tokens; this voice model takes "
                f"at most {MAX_INPUT_TOKENS} per job (split longer text into several jobs)"
            )
        return encoded

    def _synthesize(self, encoded: BatchEncoding, params: AudioParams) -> Artifact:
        model, _ = self._loaded()
        # VITS reads these from the model at each forward pass rather than taking arguments.
        model.speaking_rate = params.speaking_rate
        model.noise_scale = params.noise_scale
        # VITS draws its noise from torch's global RNG: seeding it is the only way in.
        with torch.inference_mode(), seeded_global_rng(params.seed, self._device):
            output = model(**encoded.to(self._device))
        waveform = output.waveform[0, : int(output.sequence_lengths[0])].float().cpu().numpy()
        pcm16 = (np.clip(waveform, -1.0, 1.0) * 32767).round().astype("<i2").tobytes()
        return wav_artifact(pcm16, model.config.sampling_rate)
