"""Text generation with a causal language model from transformers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationMixin,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.utils import logging as transformers_logging

from models.artifacts import text_artifact
from models.base import Artifact, CancelCheck, GenerationRequest, Generator, ProgressCallback
from models.device import pick_device, pick_dtype, seeded_global_rng
from models.errors import GenerationCanceled, InvalidInput, ModelLoadError
from models.loading import check_local_source
from models.params import Kind, TextParams
from models.progress import BatchProgress, quiet_progress_bars, raise_if_canceled


class _StepHook(StoppingCriteria):
    """Called by generate() after every new token: reports progress and stops on cancel."""

    def __init__(self, prompt_length: int, on_token: Callable[[int], bool]) -> None:
        self._prompt_length = prompt_length
        self._on_token = on_token

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor | None, **kwargs: Any
    ) -> torch.BoolTensor:
        stop = self._on_token(input_ids.shape[1] - self._prompt_length)
        rows = torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)
        return cast(torch.BoolTensor, rows)


@dataclass
class _Batch:
    """Requests that run as one left-padded generate() call."""

    params: TextParams
    indices: list[int]


class TextGenerator(Generator[TextParams]):
    kind: ClassVar[Kind] = Kind.TEXT

    def __init__(self, source: str, device: str | None = None) -> None:
        super().__init__(source, device)
        self._model: PreTrainedModel | None = None
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._device = pick_device(device)

    def load(self) -> None:
        check_local_source(self.source)
        try:
            with quiet_progress_bars(transformers_logging):
                tokenizer = AutoTokenizer.from_pretrained(self.source)
                model = AutoModelForCausalLM.from_pretrained(
                    self.source, dtype=pick_dtype(self._device, Kind.TEXT), device_map=self._device
                )
        except Exception as exc:  # from_pretrained raises OSError, ValueError, hub errors...
            raise ModelLoadError(f"cannot load text model {self.source!r}: {exc}") from exc
        # Batched prompts are padded on the left so every row's new tokens start together.
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._tokenizer = tokenizer
        self._model = model

    def warmup(self) -> None:
        self.generate([GenerationRequest("Hello", TextParams(max_new_tokens=2, temperature=0))])

    @property
    def context_length(self) -> int | None:
        config = self._loaded()[0].config
        return getattr(config, "max_position_embeddings", None) or getattr(
            config, "n_positions", None
        )

    def generate(
        self,
        requests: Sequence[GenerationRequest[TextParams]],
        *,
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> list[list[Artifact]]:
        raise_if_canceled(should_cancel)
        # Every prompt is checked before any compute, so a bad one fails the call at once.
        prompt_ids = [self._encode(r.prompt, r.params.max_new_tokens) for r in requests]
        batches = _batches(requests)
        progress = BatchProgress(on_progress, sum(b.params.max_new_tokens for b in batches))
        results: list[list[Artifact]] = [[] for _ in requests]
        for batch in batches:
            raise_if_canceled(should_cancel)
            texts = self._run_batch(
                [prompt_ids[i] for i in batch.indices], batch.params, progress, should_cancel
            )
            for index, artifact in zip(batch.indices, texts, strict=True):
                results[index] = [artifact]
            progress.finish_batch(batch.params.max_new_tokens)
        return results

    def _loaded(self) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        if self._model is None or self._tokenizer is None:
            raise RuntimeError("TextGenerator.load() was not called")
        return self._model, self._tokenizer

    def _encode(self, prompt: str, max_new_tokens: int) -> list[int]:
        _, tokenizer = self._loaded()
        if tokenizer.chat_template:
            text = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
            # The template already wrote the special tokens the model expects.
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        else:
            ids = tokenizer(prompt)["input_ids"]
        if not ids:
            raise InvalidInput("the prompt is empty")
        context = self.context_length
        if context is not None and len(ids) + max_new_tokens > context:
            raise InvalidInput(
                f"the prompt is {len(ids)} tokens; with max_new_tokens={max_new_tokens} that "
                f"exceeds the model's context of {context} tokens"
            )
        return list(ids)

    def _run_batch(
        self,
        prompt_ids: list[list[int]],
        params: TextParams,
        progress: BatchProgress,
        should_cancel: CancelCheck | None,
    ) -> list[Artifact]:
        model, tokenizer = self._loaded()
        inputs = tokenizer.pad({"input_ids": prompt_ids}, return_tensors="pt").to(self._device)
        prompt_length = inputs["input_ids"].shape[1]
        canceled = False

        def on_token(done: int) -> bool:
            nonlocal canceled
            canceled = should_cancel is not None and should_cancel()
            progress.step(done)
            return canceled

        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p}
            if params.temperature > 0
            else {"do_sample": False}
        )
        with seeded_global_rng(params.seed, self._device):
            output = cast(GenerationMixin, model).generate(
                **inputs,
                max_new_tokens=params.max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                stopping_criteria=StoppingCriteriaList([_StepHook(prompt_length, on_token)]),
                **sampling,
            )
        if canceled:
            raise GenerationCanceled("generation was canceled")
        stop_ids = self._stop_token_ids()
        artifacts = []
        for row in output[:, prompt_length:].tolist():
            # Rows that ended early are filled up to the batch's length: count up to their end.
            end = next((i + 1 for i, token in enumerate(row) if token in stop_ids), len(row))
            text = cast(str, tokenizer.decode(row[:end], skip_special_tokens=True))
            artifacts.append(text_artifact(text, end))
        return artifacts

    def _stop_token_ids(self) -> set[int]:
        model, tokenizer = self._loaded()
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        if eos is None:
            return set()
        return set(eos) if isinstance(eos, list) else {eos}


def _batches(requests: Sequence[GenerationRequest[TextParams]]) -> list[_Batch]:
    """Group requests that can share one generate() call without changing their output.

    Greedy decoding is deterministic, so greedy requests batch whatever their seed. A seeded
    sampled request runs alone: sampled tokens depend on the RNG draws of the whole batch,
    and a seed must give the same text whichever requests the worker happened to batch it with.
    """
    batches: dict[Any, _Batch] = {}
    for index, request in enumerate(requests):
        params = request.params
        if params.temperature == 0:
            key: Any = ("greedy", params.max_new_tokens)
            params = params.model_copy(update={"seed": None})
        elif params.seed is None:
            key = ("sample", params.max_new_tokens, params.temperature, params.top_p)
        else:
            key = ("seeded", index)
        batches.setdefault(key, _Batch(params, [])).indices.append(index)
    return list(batches.values())
