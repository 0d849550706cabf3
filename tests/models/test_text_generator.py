from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
from transformers import GenerationMixin

from models.base import Artifact, GenerationRequest
from models.errors import GenerationCanceled, InvalidInput
from models.params import TextParams
from models.registry import TINY_TEXT
from models.text import TextGenerator

PROMPTS = [
    "Hello world",
    "a",
    "Return a new list containing all items from the iterable in ascending order.",
]
GREEDY = TextParams(max_new_tokens=12, temperature=0)


def _texts(results: list[list[Artifact]]) -> list[str]:
    return [artifacts[0].data.decode("utf-8") for artifacts in results]


def _fresh_generator(tiny_model_dir: Path) -> TextGenerator:
    """A generator of its own, for tests that alter the model or tokenizer."""
    generator = TextGenerator(TINY_TEXT.resolve_source(tiny_model_dir))
    generator.load()
    return generator


def test_text_artifact(text_generator: TextGenerator) -> None:
    [[artifact]] = text_generator.generate(
        [GenerationRequest("Once upon a time", TextParams(max_new_tokens=8, seed=1))]
    )
    text = artifact.data.decode("utf-8")
    assert text
    assert artifact.mime_type == "text/plain; charset=utf-8"
    assert artifact.extension == "txt"
    assert artifact.facts["characters"] == len(text)
    assert 1 <= artifact.facts["tokens"] <= 8


def test_seeded_sampling_is_reproducible(text_generator: TextGenerator) -> None:
    def run(seed: int) -> str:
        params = TextParams(max_new_tokens=16, temperature=1.0, top_p=0.9, seed=seed)
        return _texts(text_generator.generate([GenerationRequest("The", params)]))[0]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_seeded_request_ignores_its_batch(text_generator: TextGenerator) -> None:
    params = TextParams(max_new_tokens=16, temperature=1.0, seed=11)
    alone = text_generator.generate([GenerationRequest("The", params)])
    unseeded = params.model_copy(update={"seed": None})
    batched = text_generator.generate(
        [GenerationRequest("Other", unseeded), GenerationRequest("The", params)]
    )
    assert _texts(batched)[1] == _texts(alone)[0]


def test_greedy_batch_equals_one_at_a_time(text_generator: TextGenerator) -> None:
    batched = text_generator.generate([GenerationRequest(p, GREEDY) for p in PROMPTS])
    single = [text_generator.generate([GenerationRequest(p, GREEDY)])[0] for p in PROMPTS]
    assert batched == single


def test_greedy_batch_with_early_end_of_sequence(tiny_model_dir: Path) -> None:
    generator = _fresh_generator(tiny_model_dir)
    # An untrained model never says end-of-sequence by itself: make a token it does
    # produce for one prompt the end, so that row stops early while the others go on.
    model, tokenizer = generator._loaded()
    inputs = tokenizer(PROMPTS[2], return_tensors="pt")
    output = cast(GenerationMixin, model).generate(
        **inputs, max_new_tokens=GREEDY.max_new_tokens, do_sample=False
    )
    model.generation_config.eos_token_id = output[0, inputs["input_ids"].shape[1] + 4].item()

    batched = generator.generate([GenerationRequest(p, GREEDY) for p in PROMPTS])
    single = [generator.generate([GenerationRequest(p, GREEDY)])[0] for p in PROMPTS]
    assert batched == single
    assert batched[2][0].facts["tokens"] < GREEDY.max_new_tokens


def test_chat_template_is_applied(tiny_model_dir: Path) -> None:
    generator = _fresh_generator(tiny_model_dir)
    raw = generator.generate([GenerationRequest("HELLO THERE", GREEDY)])
    assert generator._tokenizer is not None
    generator._tokenizer.chat_template = "{{ messages[0]['content'] | upper }}"
    templated = generator.generate([GenerationRequest("hello there", GREEDY)])
    assert templated == raw


def test_progress_reaches_the_total(text_generator: TextGenerator) -> None:
    seen: list[tuple[int, int]] = []
    requests = [
        GenerationRequest("a", TextParams(max_new_tokens=5, temperature=0)),
        GenerationRequest("b", TextParams(max_new_tokens=7, temperature=0)),
    ]
    text_generator.generate(requests, on_progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (12, 12)
    assert [done for done, _ in seen] == sorted({done for done, _ in seen})


def test_cancel_stops_between_tokens(text_generator: TextGenerator) -> None:
    seen: list[int] = []
    with pytest.raises(GenerationCanceled):
        text_generator.generate(
            [GenerationRequest("a", TextParams(max_new_tokens=50, temperature=0))],
            on_progress=lambda done, total: seen.append(done),
            should_cancel=lambda: len(seen) >= 3,
        )
    assert max(seen) < 50


def test_cancel_before_start(text_generator: TextGenerator) -> None:
    with pytest.raises(GenerationCanceled):
        text_generator.generate([GenerationRequest("a", GREEDY)], should_cancel=lambda: True)


def test_prompt_longer_than_context_is_invalid(text_generator: TextGenerator) -> None:
    with pytest.raises(InvalidInput, match="context of 512 tokens"):
        text_generator.generate([GenerationRequest("word " * 600, GREEDY)])
    with pytest.raises(InvalidInput, match="max_new_tokens=4096"):
        text_generator.generate([GenerationRequest("a", TextParams(max_new_tokens=4096))])


def test_empty_prompt_is_invalid(text_generator: TextGenerator) -> None:
    with pytest.raises(InvalidInput):
        text_generator.generate([GenerationRequest("", GREEDY)])
