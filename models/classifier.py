"""A transformers text-classification model, as moderation's optional classifier: the
scores of each label for each text. Loaded once per process, on the CPU unless told: it
runs in the dispatcher, beside the rules, before any GPU time is spent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Tokens a text is cut to: the classifier judges the start of a 32k-character prompt, and
# small classification models take at most 512.
MAX_CLASSIFIER_TOKENS = 512


class TextClassifier:
    def __init__(self, model: str, *, device: str = "cpu") -> None:
        from transformers import pipeline

        self.model = model
        self._pipeline: Any = pipeline("text-classification", model=model, device=device)

    def scores(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Each text's score per label (the model's id2label names)."""
        if not texts:
            return []
        results = self._pipeline(
            list(texts), top_k=None, truncation=True, max_length=MAX_CLASSIFIER_TOKENS
        )
        return [{item["label"]: float(item["score"]) for item in result} for result in results]
