"""A generator with no model: it returns the prompt, to measure the system's own overhead."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from models.artifacts import text_artifact
from models.base import Artifact, CancelCheck, GenerationRequest, Generator, ProgressCallback
from models.params import Kind, TextParams
from models.progress import raise_if_canceled


class EchoGenerator(Generator[TextParams]):
    kind: ClassVar[Kind] = Kind.TEXT
    holds_weights: ClassVar[bool] = False

    def load(self) -> None:
        """Nothing to load."""

    def generate(
        self,
        requests: Sequence[GenerationRequest[TextParams]],
        *,
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> list[list[Artifact]]:
        raise_if_canceled(should_cancel)
        results = [[text_artifact(r.prompt, len(r.prompt.split()))] for r in requests]
        if on_progress is not None:
            on_progress(len(requests), len(requests))
        return results
