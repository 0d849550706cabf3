"""OpenAI Batch API request lines → native jobs: each endpoint's body translated, then
validated like any native job, with errors naming the field the client wrote."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aigc.catalog import Catalog
from aigc.errors import ErrorCode, FieldError, InvalidRequest
from aigc.settings import Settings
from aigc.vocab import Kind
from api.batching import ValidLines
from api.validation import ValidJob, parse_batch_job

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
IMAGES = "/v1/images/generations"
SPEECH = "/v1/audio/speech"
ENDPOINT_KINDS: dict[str, Kind] = {
    CHAT: Kind.TEXT,
    COMPLETIONS: Kind.TEXT,
    IMAGES: Kind.IMAGE,
    SPEECH: Kind.AUDIO,
}

METADATA_KEY = "openai"  # the job metadata key holding the request's response options
LINE_FIELDS = ("custom_id", "method", "url", "body")

# Fields each endpoint's request body may carry. `user`, `store` and `metadata` are
# accepted and ignored; anything else unknown is an error rather than silently dropped.
ALLOWED_FIELDS: dict[str, frozenset[str]] = {
    CHAT: frozenset(
        {
            "model", "messages", "max_tokens", "max_completion_tokens", "temperature",
            "top_p", "seed", "n", "stream", "user", "store", "metadata",
        }
    ),
    COMPLETIONS: frozenset(
        {"model", "prompt", "max_tokens", "temperature", "top_p", "seed", "n", "stream", "user"}
    ),
    IMAGES: frozenset({"model", "prompt", "size", "n", "response_format", "user"}),
    # `voice` is accepted and ignored: the speech models have one voice each.
    # `include_b64_json` is ours: the audio inline as base64 besides its URL.
    SPEECH: frozenset({"model", "input", "voice", "response_format", "speed", "include_b64_json"}),
}  # fmt: skip


def translate_lines(
    lines: Sequence[tuple[int, dict[str, Any]]],
    endpoint: str,
    catalog: Catalog,
    settings: Settings,
) -> ValidLines:
    """Every (line number, request) translated and validated as it is stored (see
    ValidLines): one 422 lists every bad line, each error naming the OpenAI field
    (`body.max_tokens`, not the native one)."""
    return ValidLines(
        lines,
        lambda raw: _valid_job(raw, endpoint, catalog, settings),
        settings,
        require_custom_id=True,
        whole_field="input_file_id",
    )


def _valid_job(
    raw: dict[str, Any], endpoint: str, catalog: Catalog, settings: Settings
) -> ValidJob:
    native, sources = _native_job(raw, endpoint, catalog)
    try:
        return parse_batch_job(native, catalog, settings)
    except InvalidRequest as exc:
        # Name the field the client wrote, not the native one it became.
        raise InvalidRequest.from_errors(
            [
                {
                    **e,
                    "field": sources.get(e["field"], e["field"]),
                    "code": e.get("code", exc.code),
                }
                for e in exc.errors or []
            ]
        ) from exc


class _Body:
    """A request line's `body`, read field by field; every problem is kept with its field."""

    def __init__(self, body: dict[str, Any], allowed: frozenset[str]) -> None:
        self.body = body
        self.errors: list[FieldError] = []
        for name in body:
            if name not in allowed:
                self.error(name, f"is not supported; supported: {', '.join(sorted(allowed))}")

    def get(self, name: str) -> Any:
        return self.body.get(name)

    def error(self, name: str, message: str, code: str = ErrorCode.INVALID_REQUEST) -> None:
        self.errors.append({"field": f"body.{name}", "message": message, "code": code})


@dataclass
class _Translation:
    prompt: Any
    params: dict[str, Any] = field(default_factory=dict)
    # Response options, kept in the job's metadata for rendering the result.
    options: dict[str, Any] = field(default_factory=dict)
    # Native field → the request field it came from, for error messages.
    sources: dict[str, str] = field(default_factory=dict)

    def param(self, body: _Body, name: str, native: str) -> None:
        """Copy a body field to a native param as is; the native checks judge its value."""
        value = body.get(name)
        if value is not None:
            self.params[native] = value
            self.sources[f"params.{native}"] = f"body.{name}"


def _native_job(
    raw: dict[str, Any], endpoint: str, catalog: Catalog
) -> tuple[dict[str, Any], dict[str, str]]:
    """The native job dict for one request line and where each native field came from;
    raises InvalidRequest with every problem the translation itself finds."""
    errors: list[FieldError] = [
        {"field": name, "message": "is not a field of a batch request line"}
        for name in raw
        if name not in LINE_FIELDS
    ]
    if raw.get("custom_id") is None:
        errors.append({"field": "custom_id", "message": "is required"})
    if raw.get("method") != "POST":
        errors.append({"field": "method", "message": 'must be "POST"'})
    if raw.get("url") != endpoint:
        errors.append({"field": "url", "message": f"must be the batch's endpoint, {endpoint}"})
    if not isinstance(raw.get("body"), dict):
        errors.append({"field": "body", "message": "must be an object"})
        raise InvalidRequest.from_errors(errors)
    body = _Body(raw["body"], ALLOWED_FIELDS[endpoint])
    kind = ENDPOINT_KINDS[endpoint]
    translation = TRANSLATORS[endpoint](body)
    model = _served_model(body, kind, catalog)
    errors += body.errors
    if errors:
        raise InvalidRequest.from_errors(errors)
    if body.get("model") is not None:
        translation.options["model"] = body.get("model")
    native: dict[str, Any] = {
        "custom_id": raw["custom_id"],
        "kind": kind,
        "prompt": translation.prompt,
        "params": translation.params,
        "metadata": {METADATA_KEY: translation.options},
    }
    if model is not None:
        native["model"] = model
    return native, {"model": "body.model", **translation.sources}


def _served_model(body: _Body, kind: Kind, catalog: Catalog) -> str | None:
    """The model to run: a served model of the right kind by its name or an alias the
    operator configured (AIGC_MODEL_ALIASES); none runs on the kind's default model. Any
    other name (an OpenAI model that is not aliased) is refused: a request never runs on a
    model it did not ask for."""
    requested = body.get("model")
    if requested is None:
        return None
    if not isinstance(requested, str):
        body.error("model", "must be a string")
        return None
    spec = catalog.lookup(requested)
    if spec is None:
        body.error(
            "model",
            f"model {requested!r} is not served here; {kind} models: "
            f"{', '.join(catalog.choices(kind))}",
            ErrorCode.MODEL_NOT_FOUND,
        )
        return None
    if spec.kind != kind:
        body.error(
            "model",
            f"{requested} generates {spec.kind}; this endpoint needs {kind}",
            ErrorCode.MODEL_NOT_FOUND,
        )
        return None
    return spec.name


def _single_response(body: _Body) -> None:
    if body.get("n") not in (None, 1):
        body.error("n", "only 1 choice per request is supported")
    if body.get("stream") not in (None, False):
        body.error("stream", "is not available in a batch")


def _text_params(translation: _Translation, body: _Body, token_fields: Sequence[str]) -> None:
    given = [name for name in token_fields if body.get(name) is not None]
    if len(given) > 1:
        body.error(given[1], f"give either {given[0]} or {given[1]}, not both")
    elif given:
        translation.param(body, given[0], "max_new_tokens")
    for name in ("temperature", "top_p", "seed"):
        translation.param(body, name, name)
    _single_response(body)


def _chat(body: _Body) -> _Translation:
    translation = _Translation(_chat_prompt(body), sources={"prompt": "body.messages"})
    _text_params(translation, body, ("max_completion_tokens", "max_tokens"))
    return translation


def _chat_prompt(body: _Body) -> str | None:
    """The system/developer messages, then the last user message, as one plain prompt (the
    text models take a single user turn); earlier user and assistant turns are left out."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        body.error("messages", "must be a non-empty list of messages")
        return None
    instructions: list[str] = []
    last_user: int | None = None
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            body.error(f"messages[{index}]", "must be an object")
            continue
        role = message.get("role")
        if role in ("system", "developer"):
            instructions.append(_message_text(body, messages, index))
        elif role == "user":
            last_user = index
        elif role not in ("assistant", "tool"):
            body.error(f"messages[{index}].role", "must be system, developer, user or assistant")
    if last_user is None:
        body.error("messages", "needs a user message")
        return None
    parts = [*instructions, _message_text(body, messages, last_user)]
    return "\n\n".join(part for part in parts if part)


def _message_text(body: _Body, messages: list[Any], index: int) -> str:
    """A message's content: a string, or a list of text parts (joined by newlines)."""
    content = messages[index].get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        body.error(f"messages[{index}].content", "must be a string or a list of text parts")
        return ""
    texts = []
    for number, part in enumerate(content):
        if isinstance(part, dict) and part.get("type") == "text":
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
                continue
            body.error(f"messages[{index}].content[{number}].text", "must be a string")
        else:
            body.error(f"messages[{index}].content[{number}].type", "only text parts are supported")
    return "\n".join(texts)


def _completion(body: _Body) -> _Translation:
    prompt = body.get("prompt")
    # One prompt per request: a list of one is that prompt; longer lists would need choices.
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if prompt is not None and not isinstance(prompt, str):
        body.error("prompt", "must be a string (one prompt per request)")
    translation = _Translation(prompt, sources={"prompt": "body.prompt"})
    _text_params(translation, body, ("max_tokens",))
    return translation


SIZE = re.compile(r"(\d{1,5})x(\d{1,5})")


def _image(body: _Body) -> _Translation:
    translation = _Translation(body.get("prompt"), sources={"prompt": "body.prompt"})
    size = body.get("size")
    if size is not None and size != "auto":
        match = SIZE.fullmatch(size) if isinstance(size, str) else None
        if match is None:
            body.error("size", 'must be "WIDTHxHEIGHT", e.g. "512x512", or "auto"')
        else:
            translation.params["width"], translation.params["height"] = map(int, match.groups())
            translation.sources |= {"params.width": "body.size", "params.height": "body.size"}
    translation.param(body, "n", "num_images")
    response_format = body.get("response_format") or "url"
    if response_format not in ("url", "b64_json"):
        body.error("response_format", 'must be "url" or "b64_json"')
    translation.options["response_format"] = response_format
    return translation


def _speech(body: _Body) -> _Translation:
    translation = _Translation(body.get("input"), sources={"prompt": "body.input"})
    # WAV is the one format the speech models write; unset means WAV too.
    if body.get("response_format") not in (None, "wav"):
        body.error("response_format", 'only "wav" is available')
    if body.get("voice") is not None and not isinstance(body.get("voice"), str):
        body.error("voice", "must be a string")
    include_b64 = body.get("include_b64_json")
    if include_b64 not in (None, True, False):
        body.error("include_b64_json", "must be true or false")
    translation.options["include_b64_json"] = bool(include_b64)
    translation.param(body, "speed", "speaking_rate")
    return translation


TRANSLATORS: dict[str, Callable[[_Body], _Translation]] = {
    CHAT: _chat,
    COMPLETIONS: _completion,
    IMAGES: _image,
    SPEECH: _speech,
}
