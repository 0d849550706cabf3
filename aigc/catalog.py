"""The models this deployment serves: the built-in specs filtered by profile, plus the
per-kind defaults an operator configured. Both the API and the workers read it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from aigc.settings import Settings
from aigc.vocab import KINDS, Kind
from models.registry import BUILTIN_MODELS, HUB_MODELS, TINY_MODELS, ModelSpec, custom_spec


class UnknownModel(LookupError):
    def __init__(self, name: str, kind: Kind, available: list[str]) -> None:
        super().__init__(f"unknown {kind} model {name!r}; available: {', '.join(available)}")
        self.name = name
        self.kind = kind
        self.available = available


@dataclass(frozen=True)
class Catalog:
    specs: dict[str, ModelSpec]
    defaults: dict[Kind, str]

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self.specs.values())

    def names(self, kind: Kind) -> list[str]:
        return [spec.name for spec in self.specs.values() if spec.kind == kind]

    def resolve(self, kind: Kind, name: str | None) -> ModelSpec:
        """The spec a job of this kind runs on: the named model, or the kind's default."""
        spec = self.specs.get(name or self.defaults[kind])
        if spec is None or spec.kind != kind:
            raise UnknownModel(name or "", kind, self.names(kind))
        return spec


def build_catalog(settings: Settings) -> Catalog:
    hub = settings.profile == "hub"
    profile_defaults = HUB_MODELS if hub else TINY_MODELS
    configured = {
        "text": settings.text_model,
        "image": settings.image_model,
        "audio": settings.audio_model,
    }
    # Offline hosts cannot download, so hub models are offered only where the profile allows.
    specs = {spec.name: spec for spec in BUILTIN_MODELS if hub or not spec.needs_hub}
    defaults: dict[Kind, str] = {}
    for kind in KINDS:
        name = configured[kind] or next(s.name for s in profile_defaults if s.kind == kind)
        if name not in specs:
            builtin = next((s for s in BUILTIN_MODELS if s.name == name), None)
            specs[name] = builtin if builtin and builtin.kind == kind else custom_spec(name, kind)
        defaults[kind] = name
    return Catalog(specs=specs, defaults=defaults)
