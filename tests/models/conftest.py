"""Fixtures for the models/ tests: tiny models built once per session, loaded generators."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from models.base import Generator
from models.loading import load_generator
from models.registry import TINY_AUDIO, TINY_IMAGE, TINY_TEXT

# huggingface_hub reads this when first imported, which the imports above don't do (they
# are torch-free) but the test modules collected after this conftest do.
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.tiny import build_tiny_models

    model_dir = tmp_path_factory.mktemp("models")
    build_tiny_models(model_dir)
    return model_dir


@pytest.fixture(scope="session")
def text_generator(tiny_model_dir: Path) -> Generator:
    return load_generator(TINY_TEXT, tiny_model_dir)


@pytest.fixture(scope="session")
def image_generator(tiny_model_dir: Path) -> Generator:
    return load_generator(TINY_IMAGE, tiny_model_dir)


@pytest.fixture(scope="session")
def audio_generator(tiny_model_dir: Path) -> Generator:
    return load_generator(TINY_AUDIO, tiny_model_dir)
