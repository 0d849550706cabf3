"""The label record and its signature.

Fields, and the GB 45438-2025 implicit-label (metadata) elements they carry:

| field          | GB 45438-2025 element                                  |
| -------------- | ------------------------------------------------------ |
| ai_generated   | Label, the AI-generated flag (always true here)        |
| producer       | ContentProducer, the service provider's name           |
| content_id     | ProduceID, the content's id (the artifact id)          |
| signature      | ReservedCode1, kept for the provider's own check       |
| model, model_revision, job_id, team_id, created_at, version | ours: tracing |

The standard's propagation elements (ContentPropagator, PropagateID) belong to platforms
that redistribute content, not to the producer, so they are not written.

`signature` is HMAC-SHA256 (hex) under the deployment's label key over PURPOSE, a newline
and the canonical JSON of every other field (sorted keys, no spaces, UTF-8). It shows the
fields are as this deployment wrote them; it does not bind the label to the bytes around it
(a C2PA manifest, a later layer, does that).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

LABEL_VERSION = "aigc-label-v1"
# The signed message names what it is for, so a label signature is never valid as another
# kind of token, even should the same secret sign one.
PURPOSE = b"aigc-label-v1"
# Far beyond any real label (about 600 bytes); a bigger one is refused unread.
MAX_LABEL_BYTES = 16 * 1024


class MalformedLabel(ValueError):
    """Something stands where a label should, but it is not one (damaged or forged)."""


@dataclass(frozen=True)
class Label:
    producer: str
    content_id: str
    model: str
    model_revision: str
    job_id: str
    team_id: str
    created_at: str  # ISO 8601, UTC, milliseconds: the time in the content id (a UUIDv7)
    ai_generated: bool = True
    version: str = LABEL_VERSION
    signature: str = ""

    def canonical(self) -> bytes:
        """The signed bytes: every field but the signature, as canonical JSON."""
        unsigned = self.as_dict()
        del unsigned["signature"]
        return json.dumps(
            unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()

    def to_json(self) -> bytes:
        """The label as stored: canonical JSON with the signature."""
        return json.dumps(
            self.as_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: its deep copy is most of a label's cost, and the API
        # derives one per artifact it lists.
        return {name: getattr(self, name) for name in FIELD_NAMES}

    @classmethod
    def from_json(cls, data: bytes) -> Label:
        """Parse a stored label; MalformedLabel unless it is a JSON object with exactly the
        label's fields, each of its type."""
        if len(data) > MAX_LABEL_BYTES:
            raise MalformedLabel(f"the label is over {MAX_LABEL_BYTES} bytes")
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise MalformedLabel(f"the label is not JSON: {exc}") from exc
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: Any) -> Label:
        names = set(FIELD_NAMES)
        if not isinstance(raw, dict) or set(raw) != names:
            raise MalformedLabel(f"a label is a JSON object with the fields {sorted(names)}")
        if raw["ai_generated"] is not True:
            raise MalformedLabel("ai_generated must be true")
        if not all(isinstance(raw[name], str) for name in names - {"ai_generated"}):
            raise MalformedLabel("every label field but ai_generated is a string")
        return cls(**raw)


FIELD_NAMES = tuple(field.name for field in fields(Label))


def created_at_of(content_id: uuid.UUID) -> str:
    """The creation time a UUIDv7 carries (its first 48 bits, unix milliseconds), so a label
    derived again later from the artifact's row has the same time."""
    millis = content_id.int >> 80
    moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class LabelSigner:
    """Makes and checks labels under one deployment's key and producer name."""

    key: bytes
    producer: str

    def signature(self, label: Label) -> str:
        message = PURPOSE + b"\n" + label.canonical()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def label(
        self,
        *,
        content_id: uuid.UUID,
        job_id: uuid.UUID,
        team_id: uuid.UUID,
        model: str,
        model_revision: str,
    ) -> Label:
        """The signed label of one artifact. Every field comes from the artifact's row, its
        job and the catalog, so the API can derive the same label again."""
        unsigned = Label(
            producer=self.producer,
            content_id=str(content_id),
            model=model,
            model_revision=model_revision,
            job_id=str(job_id),
            team_id=str(team_id),
            created_at=created_at_of(content_id),
        )
        return replace(unsigned, signature=self.signature(unsigned))

    def is_valid(self, label: Label) -> bool:
        return hmac.compare_digest(self.signature(label), label.signature)
