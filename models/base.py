"""The one interface every generator implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar

from models.params import Kind, _Params

ParamsT = TypeVar("ParamsT", bound=_Params)

# Called with (steps done, steps total) as generation advances.
ProgressCallback = Callable[[int, int], None]
# Polled between steps (denoising steps, generated tokens); True stops the work.
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class GenerationRequest(Generic[ParamsT]):
    prompt: str
    params: ParamsT


@dataclass(frozen=True)
class Artifact:
    """One output file: its bytes and what a client wants to know about it.

    `facts` are kind-specific: text has `characters` and `tokens`; image has `width` and
    `height`; audio has `duration_s` and `sample_rate`.
    """

    data: bytes
    mime_type: str
    extension: str
    facts: dict[str, int | float] = field(default_factory=dict)


class Generator(ABC, Generic[ParamsT]):
    """Loads a model once, then generates for batches of requests.

    `source` is what `from_pretrained` takes: a Hugging Face id or a local directory.
    `device` is "cuda", "cpu", ... or None to pick CUDA when present.
    """

    kind: ClassVar[Kind]
    # Whether it keeps weights in (GPU) memory: only those count against a worker's cache.
    holds_weights: ClassVar[bool] = True

    def __init__(self, source: str, device: str | None = None) -> None:
        self.source = source
        self.device = device

    @abstractmethod
    def load(self) -> None:
        """Load weights onto the device; called once per process before generate()."""

    def warmup(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Run a throwaway generation so the first real request pays no lazy set-up."""

    @abstractmethod
    def generate(
        self,
        requests: Sequence[GenerationRequest[ParamsT]],
        *,
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> list[list[Artifact]]:
        """Generate for each request; returns one list of artifacts per request, in order.

        Raises GenerationCanceled when should_cancel() turned true, GenerationError (or a
        subclass, such as InvalidInput) for errors the model reports.
        """
