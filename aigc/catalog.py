"""The models this deployment serves: the built-in specs filtered by profile, the per-kind
defaults and the aliases an operator configured. Both the API and the workers read it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from aigc.errors import ModelNotFound
from aigc.settings import Settings
from aigc.vocab import KINDS, Kind
from models.registry import BUILTIN_MODELS, HUB_MODELS, TINY_MODELS, ModelSpec, custom_spec


class UnknownModel(ModelNotFound, LookupError):
    """A model name (or alias) that this deployment does not serve for the kind."""

    def __init__(self, name: str, kind: Kind, available: list[str]) -> None:
        message = f"unknown {kind} model {name!r}; available: {', '.join(available)}"
        super().__init__(f"model: {message}", [{"field": "model", "message": message}])
        self.name = name
        self.kind = kind
        self.available = available


class InvalidAliases(ValueError):
    """AIGC_MODEL_ALIASES names a model this deployment does not serve: a startup error."""


@dataclass(frozen=True)
class Catalog:
    specs: dict[str, ModelSpec]
    defaults: dict[Kind, str]
    # Another name a client may use → the served model it means.
    aliases: dict[str, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self.specs.values())

    def names(self, kind: Kind) -> list[str]:
        return [spec.name for spec in self.specs.values() if spec.kind == kind]

    def choices(self, kind: Kind) -> list[str]:
        """The names a client may give for this kind: served models, then their aliases."""
        aliases = [a for a, target in self.aliases.items() if self.specs[target].kind == kind]
        return [*self.names(kind), *sorted(aliases)]

    def aliases_of(self, name: str) -> list[str]:
        return sorted(alias for alias, target in self.aliases.items() if target == name)

    def lookup(self, name: str) -> ModelSpec | None:
        """The served model a name or alias means, of any kind."""
        return self.specs.get(self.aliases.get(name, name))

    def resolve(self, kind: Kind, name: str | None) -> ModelSpec:
        """The spec a job of this kind runs on: the named (or aliased) model, or the kind's
        default when no name is given."""
        spec = self.lookup(name) if name else self.specs[self.defaults[kind]]
        if spec is None or spec.kind != kind:
            raise UnknownModel(name or "", kind, self.choices(kind))
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
    return Catalog(specs=specs, defaults=defaults, aliases=_checked_aliases(settings, specs))


def _checked_aliases(settings: Settings, specs: dict[str, ModelSpec]) -> dict[str, str]:
    problems = [
        f"{alias!r} → {target!r}: {target!r} is not served"
        for alias, target in settings.model_aliases.items()
        if target not in specs
    ] + [
        f"{alias!r} is itself a served model's name"
        for alias in settings.model_aliases
        if alias in specs
    ]
    if problems:
        raise InvalidAliases(
            f"AIGC_MODEL_ALIASES: {'; '.join(problems)} (served: {', '.join(specs)})"
        )
    return dict(settings.model_aliases)
