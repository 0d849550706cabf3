from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from models import tiny
from models.audio import AudioGenerator
from models.base import GenerationRequest, Generator
from models.echo import EchoGenerator
from models.errors import GenerationCanceled, ModelLoadError
from models.image import ImageGenerator
from models.loading import load_generator
from models.params import TextParams
from models.registry import ECHO, TINY_TEXT
from models.text import TextGenerator

REPO_ROOT = Path(__file__).resolve().parents[2]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_core_modules_do_not_import_torch() -> None:
    code = (
        "import sys, models, models.params, models.registry, models.base, models.errors, "
        "models.loading, models.echo, models.progress, models.artifacts\n"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


@pytest.mark.parametrize("generator_class", [TextGenerator, ImageGenerator, AudioGenerator])
@pytest.mark.parametrize("source", ["/nonexistent/tiny-text", "./missing", "var/nope/tiny-text"])
def test_missing_local_model_fails_fast(generator_class: type[Generator], source: str) -> None:
    started = time.monotonic()
    with pytest.raises(ModelLoadError, match="does not exist"):
        generator_class(source).load()
    assert time.monotonic() - started < 2


def test_image_tokenizer_keeps_its_vocabulary(tiny_model_dir: Path) -> None:
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(tiny_model_dir / "tiny-image" / "tokenizer")
    # 256 byte symbols, each also as a word end, and the two specials.
    assert len(tokenizer) == 514
    ids = tokenizer("a photo of a cat")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    assert ids[-1] == tokenizer.eos_token_id
    # The unknown token is the end token: none in between means every byte was known.
    assert tokenizer.unk_token_id not in ids[1:-1]
    # Spaces only end words: one symbol per letter, plus the two specials.
    assert len(ids) == len("aphotoofacat") + 2


def test_ensure_builds_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[Path] = []
    real_builder = tiny._BUILDERS[TINY_TEXT.name]

    def counting_builder(path: Path) -> None:
        builds.append(path)
        real_builder(path)

    monkeypatch.setitem(tiny._BUILDERS, TINY_TEXT.name, counting_builder)
    first = tiny.ensure_tiny_model(TINY_TEXT.name, tmp_path)
    weights = _digest(first / "model.safetensors")
    second = tiny.ensure_tiny_model(TINY_TEXT.name, tmp_path)
    assert first == second == tmp_path / TINY_TEXT.name
    assert len(builds) == 1
    # No staging directory is left behind.
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [TINY_TEXT.name]

    # A forced rebuild is deterministic: the same weights again.
    tiny.build_tiny_model(TINY_TEXT.name, tmp_path)
    assert len(builds) == 2
    assert _digest(first / "model.safetensors") == weights


def test_concurrent_ensures_build_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[Path] = []

    def slow_builder(path: Path) -> None:
        builds.append(path)
        time.sleep(0.2)
        (path / "config.json").write_text("{}")

    monkeypatch.setitem(tiny._BUILDERS, TINY_TEXT.name, slow_builder)
    threads = [
        threading.Thread(target=tiny.ensure_tiny_model, args=(TINY_TEXT.name, tmp_path))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert (tmp_path / TINY_TEXT.name / "config.json").is_file()


def test_failed_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_builder(path: Path) -> None:
        (path / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    monkeypatch.setitem(tiny._BUILDERS, TINY_TEXT.name, failing_builder)
    with pytest.raises(RuntimeError, match="disk full"):
        tiny.ensure_tiny_model(TINY_TEXT.name, tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]


def test_unknown_tiny_model(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown tiny model"):
        tiny.ensure_tiny_model("tiny-video", tmp_path)


def test_load_generator_builds_a_missing_tiny_model(tmp_path: Path) -> None:
    generator = load_generator(TINY_TEXT, tmp_path / "models")
    [[artifact]] = generator.generate(
        [GenerationRequest("Hi", TextParams(max_new_tokens=3, temperature=0))]
    )
    assert artifact.facts["tokens"] == 3


def test_echo(tmp_path: Path) -> None:
    generator = load_generator(ECHO, tmp_path)
    assert isinstance(generator, EchoGenerator)
    prompt = "héllo  wide world"
    [[artifact]] = generator.generate([GenerationRequest(prompt, TextParams())])
    assert artifact.data == prompt.encode("utf-8")
    assert artifact.mime_type == "text/plain; charset=utf-8"
    assert artifact.extension == "txt"
    assert artifact.facts == {"characters": len(prompt), "tokens": 3}
    with pytest.raises(GenerationCanceled):
        generator.generate([GenerationRequest(prompt, TextParams())], should_cancel=lambda: True)
