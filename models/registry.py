"""The generators this package knows, by the name clients pass as `model`.

A spec is plain data (no torch): the API lists and validates against it, the worker
loads the generator it names.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from models.base import Generator
from models.params import PARAMS_BY_KIND, Kind, _Params

TINY_PREFIX = "tiny-"


@dataclass(frozen=True)
class ModelSpec:
    """A model clients can ask for.

    `source` is a Hugging Face model id, a local directory, or, for tiny models, empty
    (they live under the model directory and are built locally). `generator` names the
    class that runs it as "module:Class", imported only when the model is loaded.
    """

    name: str
    kind: Kind
    generator: str
    source: str = ""
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    needs_hub: bool = False

    @property
    def is_tiny(self) -> bool:
        return self.name.startswith(TINY_PREFIX)

    @property
    def params_class(self) -> type[_Params]:
        return PARAMS_BY_KIND[self.kind]

    def validate_params(self, params: Mapping[str, Any] | None) -> _Params:
        """Apply this model's defaults, then the client's params.

        Raises pydantic's ValidationError.
        """
        return self.params_class.model_validate({**self.defaults, **(params or {})})

    def params_schema(self) -> dict[str, Any]:
        """JSON schema of the params with this model's defaults filled in."""
        schema = self.params_class.model_json_schema()
        for name, value in self.defaults.items():
            schema["properties"][name]["default"] = value
        return schema

    def resolve_source(self, model_dir: Path) -> str:
        """Where `from_pretrained` loads from: the tiny model's folder, a local path or a hub id."""
        if self.is_tiny:
            return str(model_dir / self.name)
        return self.source


def _frozen(**values: Any) -> Mapping[str, Any]:
    return MappingProxyType(values)


ECHO = ModelSpec(
    name="echo",
    kind=Kind.TEXT,
    generator="models.echo:EchoGenerator",
    description="Returns the prompt unchanged with no compute: measures the system's own overhead.",
)
TINY_TEXT = ModelSpec(
    name="tiny-text",
    kind=Kind.TEXT,
    generator="models.text:TextGenerator",
    description="Tiny GPT-2 built locally for offline use; its output is noise-like, not prose.",
    defaults=_frozen(max_new_tokens=64),
)
TINY_IMAGE = ModelSpec(
    name="tiny-image",
    kind=Kind.IMAGE,
    generator="models.image:ImageGenerator",
    description="Tiny Stable-Diffusion-style pipeline built locally; its images are noise.",
    defaults=_frozen(width=64, height=64, steps=4),
)
TINY_AUDIO = ModelSpec(
    name="tiny-audio",
    kind=Kind.AUDIO,
    generator="models.audio:AudioGenerator",
    description="Tiny VITS built locally; its audio is noise, not speech.",
)
TINY_MODELS: tuple[ModelSpec, ...] = (TINY_TEXT, TINY_IMAGE, TINY_AUDIO)

# Real models for GPU hosts, loaded from the Hugging Face hub by id.
HUB_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="Qwen/Qwen2.5-0.5B-Instruct",
        kind=Kind.TEXT,
        generator="models.text:TextGenerator",
        source="Qwen/Qwen2.5-0.5B-Instruct",
        description="Qwen2.5 0.5B instruct chat model.",
        needs_hub=True,
    ),
    ModelSpec(
        name="stabilityai/sd-turbo",
        kind=Kind.IMAGE,
        generator="models.image:ImageGenerator",
        source="stabilityai/sd-turbo",
        description="SD-Turbo: 512x512 images in 1-4 steps without guidance.",
        defaults=_frozen(width=512, height=512, steps=1, guidance_scale=0.0),
        needs_hub=True,
    ),
    ModelSpec(
        name="facebook/mms-tts-eng",
        kind=Kind.AUDIO,
        generator="models.audio:AudioGenerator",
        source="facebook/mms-tts-eng",
        description="MMS-TTS English speech (VITS).",
        needs_hub=True,
    ),
)

BUILTIN_MODELS: tuple[ModelSpec, ...] = (ECHO, *TINY_MODELS, *HUB_MODELS)

GENERATOR_BY_KIND: dict[Kind, str] = {
    Kind.TEXT: "models.text:TextGenerator",
    Kind.IMAGE: "models.image:ImageGenerator",
    Kind.AUDIO: "models.audio:AudioGenerator",
}


def custom_spec(name: str, kind: Kind) -> ModelSpec:
    """A spec for a model id or local path an operator configured, run by the kind's generator."""
    return ModelSpec(
        name=name,
        kind=kind,
        generator=GENERATOR_BY_KIND[kind],
        source=name,
        description="Configured by the operator.",
        needs_hub=not Path(name).is_dir(),
    )


def import_generator_class(spec: ModelSpec) -> type[Generator]:  # type: ignore[type-arg]
    module_name, _, class_name = spec.generator.partition(":")
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]
