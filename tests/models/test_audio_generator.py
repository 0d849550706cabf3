from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest

from models.audio import AudioGenerator
from models.base import Artifact, GenerationRequest
from models.errors import GenerationCanceled, InvalidInput, ModelLoadError
from models.params import AudioParams

SENTENCE = "The quick brown fox jumps over the lazy dog."


def _frames(artifact: Artifact) -> int:
    with wave.open(io.BytesIO(artifact.data)) as wav:
        return wav.getnframes()


def test_wav_artifact(audio_generator: AudioGenerator) -> None:
    [[artifact]] = audio_generator.generate([GenerationRequest(SENTENCE, AudioParams(seed=1))])
    assert artifact.mime_type == "audio/wav"
    assert artifact.extension == "wav"
    with wave.open(io.BytesIO(artifact.data)) as wav:
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        assert wav.getframerate() == artifact.facts["sample_rate"] == 16_000
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    assert samples.size > 0
    assert np.count_nonzero(samples) > 0
    # An untrained duration predictor picks the length: only its consistency is checked.
    assert artifact.facts["duration_s"] > 0
    assert artifact.facts["duration_s"] == round(samples.size / 16_000, 3)


def test_seeded_audio_is_reproducible(audio_generator: AudioGenerator) -> None:
    def run(seed: int) -> bytes:
        request = GenerationRequest(SENTENCE, AudioParams(seed=seed))
        return audio_generator.generate([request])[0][0].data

    assert run(2) == run(2)
    assert run(2) != run(3)


def test_speaking_rate_shortens_speech(audio_generator: AudioGenerator) -> None:
    normal, fast = audio_generator.generate(
        [
            GenerationRequest(SENTENCE, AudioParams(seed=4)),
            GenerationRequest(SENTENCE, AudioParams(seed=4, speaking_rate=3.0)),
        ]
    )
    assert _frames(fast[0]) < _frames(normal[0])


@pytest.mark.parametrize("prompt", ["", "!?!", "日本語"])
def test_prompt_with_nothing_to_say_is_invalid(
    audio_generator: AudioGenerator, prompt: str
) -> None:
    with pytest.raises(InvalidInput):
        audio_generator.generate([GenerationRequest(prompt, AudioParams())])


def test_cancel_between_requests(audio_generator: AudioGenerator) -> None:
    seen: list[int] = []
    requests = [GenerationRequest(SENTENCE, AudioParams())] * 3
    with pytest.raises(GenerationCanceled):
        audio_generator.generate(
            requests,
            on_progress=lambda done, total: seen.append(done),
            should_cancel=lambda: len(seen) >= 1,
        )
    assert seen == [1]


def test_a_model_that_is_not_vits_is_refused(tiny_model_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="'gpt2' model"):
        AudioGenerator(str(tiny_model_dir / "tiny-text")).load()
