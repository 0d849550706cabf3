"""Moderation: refuse abuse before it costs GPU time.

A `Moderator` looks at text (a prompt, a negative prompt, a generated text) and says
which rule it breaks, if any. `RuleSet` is the main one: term lists and regular
expressions, global (a rules file, and rows with no team) and per team. `ClassifierModerator`
is the optional other: a transformers text-classification model (AIGC_MODERATION_CLASSIFIER).
Both run in the same places: the dispatcher before a job is sent to a worker (stage
"input") and the worker before a text output is stored (stage "output").

Matching is on NFKC-normalised, case-folded text, so full-width letters, ligatures and
case variants match the plain term. A term in a script written without spaces between
words (Chinese, Japanese, Thai, Lao, Khmer, Myanmar, Tibetan) matches anywhere in the
text; any other term matches only as whole words.

Regular expressions run on the `regex` package with a per-search timeout: Python's `re`
has none, and the alternative (refusing patterns with nested quantifiers) still leaves
polynomial blow-ups such as `.*.*.*x`. A pattern that times out counts as a match (the
job is refused, reason `moderation_timeout`): a rule that cannot be evaluated must not
let the text through, and the operator sees which rule is too slow.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import regex
import yaml

log = logging.getLogger(__name__)

# Bounds on what a rule may hold: enough for real term lists, small enough that every
# team's rules compile in milliseconds and a list shows whole.
MAX_PATTERN_CHARS = 512
MAX_TERMS = 1000
MAX_TERM_CHARS = 128
MAX_NAME_CHARS = 64
MAX_REASON_CHARS = 64
REASON_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
# Seconds one regular expression may search one text: far above a sane pattern's time
# on a 32k-character prompt (well under a millisecond), far below a dispatch round.
REGEX_TIMEOUT_S = 0.05
TIMEOUT_REASON = "moderation_timeout"

# Scripts whose writing puts no spaces between words: a term in them is a substring match.
UNSPACED_SCRIPTS = frozenset(
    {"CJK", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR", "TIBETAN", "YI"}
)


class Stage(StrEnum):
    INPUT = "input"
    OUTPUT = "output"


class RuleKind(StrEnum):
    TERMS = "terms"
    REGEX = "regex"


class InvalidRule(ValueError):
    """A rule that cannot be used; `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Rule:
    """A rule as stored: `id` is the row's id, or `file:<name>` for the rules file's."""

    id: str
    name: str
    kind: RuleKind
    reason_code: str
    terms: tuple[str, ...] = ()
    pattern: str | None = None


@dataclass(frozen=True)
class Match:
    """The rule a text broke. Never the matched term: a message naming the rule tells the
    submitter enough, and repeating the list would publish it."""

    rule_id: str
    rule_name: str
    reason_code: str

    def message(self) -> str:
        return f"refused by moderation rule {self.rule_name!r} ({self.reason_code})"

    def details(self, stage: Stage) -> dict[str, str]:
        """The job's `moderation` object."""
        return {
            "rule": self.rule_name,
            "rule_id": self.rule_id,
            "reason_code": self.reason_code,
            "stage": str(stage),
        }


class Moderator(Protocol):
    def check(self, texts: Iterable[str]) -> Match | None:
        """The first rule any of the texts breaks; None when they pass."""
        ...


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def is_unspaced(term: str) -> bool:
    """Whether the term is written in a script without word spacing (any of its letters;
    half-width forms count as their script once NFKC has made them full-width)."""
    return any(
        unicodedata.name(char, "").split(" ", 1)[0] in UNSPACED_SCRIPTS
        for char in unicodedata.normalize("NFKC", term)
        if not char.isspace()
    )


def check_regex(pattern: str) -> regex.Pattern[str]:
    if not pattern:
        raise InvalidRule("pattern", "must not be empty")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InvalidRule("pattern", f"at most {MAX_PATTERN_CHARS} characters")
    try:
        return regex.compile(pattern, regex.IGNORECASE | regex.V0)
    except regex.error as exc:
        raise InvalidRule("pattern", f"not a valid regular expression: {exc}") from exc


def check_terms(terms: Sequence[str]) -> tuple[str, ...]:
    """The terms, normalised, without blanks and duplicates."""
    if not terms:
        raise InvalidRule("terms", "at least one term")
    if len(terms) > MAX_TERMS:
        raise InvalidRule("terms", f"at most {MAX_TERMS} terms")
    kept: dict[str, None] = {}
    for term in terms:
        if len(term) > MAX_TERM_CHARS:
            raise InvalidRule("terms", f"each term at most {MAX_TERM_CHARS} characters")
        clean = " ".join(normalise(term).split())
        if not clean:
            raise InvalidRule("terms", "a term must not be blank")
        kept[clean] = None
    return tuple(kept)


def _terms_pattern(terms: Sequence[str]) -> regex.Pattern[str]:
    # Longest first, so a longer term is preferred where two share a start.
    ordered = sorted(terms, key=len, reverse=True)
    # Whitespace inside a term matches any run of whitespace in the text.
    words = [r"\s+".join(regex.escape(part) for part in t.split()) for t in ordered]
    spaced = [w for w, t in zip(words, ordered, strict=True) if not is_unspaced(t)]
    unspaced = [w for w, t in zip(words, ordered, strict=True) if is_unspaced(t)]
    parts = []
    if spaced:
        parts.append(rf"(?<!\w)(?:{'|'.join(spaced)})(?!\w)")
    if unspaced:
        parts.append(f"(?:{'|'.join(unspaced)})")
    return regex.compile("|".join(parts))


@dataclass(frozen=True)
class _Compiled:
    rule: Rule
    pattern: regex.Pattern[str]


class RuleSet:
    """Rules compiled once; `check` runs them in order (global first) and stops at the
    first that matches."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        self._compiled = [_Compiled(rule, _compile(rule)) for rule in self.rules]

    def __bool__(self) -> bool:
        return bool(self._compiled)

    def check(self, texts: Iterable[str]) -> Match | None:
        normalised = [normalise(text) for text in texts if text]
        for compiled in self._compiled:
            rule = compiled.rule
            for text in normalised:
                try:
                    found = compiled.pattern.search(text, timeout=REGEX_TIMEOUT_S)
                except TimeoutError:
                    log.warning("moderation rule %s (%s) timed out", rule.name, rule.id)
                    return Match(rule.id, rule.name, TIMEOUT_REASON)
                if found:
                    return Match(rule.id, rule.name, rule.reason_code)
        return None

    def __add__(self, other: RuleSet) -> RuleSet:
        return RuleSet((*self.rules, *other.rules))


class Scores(Protocol):
    def __call__(self, texts: Sequence[str]) -> list[dict[str, float]]: ...


class ClassifierModerator:
    """A text classifier as a Moderator: a text is refused when one of `labels` scores at
    least `threshold`; the reason code is the label (lowercase)."""

    def __init__(
        self, scores: Scores, *, model: str, labels: Iterable[str], threshold: float
    ) -> None:
        self._scores = scores
        self.model = model
        self.labels = {label.casefold() for label in labels}
        self.threshold = threshold

    def check(self, texts: Iterable[str]) -> Match | None:
        for per_label in self._scores([text for text in texts if text]):
            for label, score in per_label.items():
                if label.casefold() in self.labels and score >= self.threshold:
                    return Match(f"classifier:{self.model}", "classifier", label.casefold())
        return None


def _compile(rule: Rule) -> regex.Pattern[str]:
    if rule.kind == RuleKind.REGEX:
        return check_regex(rule.pattern or "")
    return _terms_pattern(check_terms(rule.terms))


def parse_rule(data: Any, *, rule_id: str | None = None) -> Rule:
    """A rule from the rules file's (or a row's) fields, checked."""
    if not isinstance(data, dict):
        raise InvalidRule("rule", "must be an object")
    name = data.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_CHARS:
        raise InvalidRule("name", f"a string of 1 to {MAX_NAME_CHARS} characters")
    reason = data.get("reason_code")
    if (
        not isinstance(reason, str)
        or len(reason) > MAX_REASON_CHARS
        or not regex.match(REASON_PATTERN, reason)
    ):
        raise InvalidRule("reason_code", "lowercase letters, digits, _ . - (at most 64)")
    kind = data.get("kind")
    if kind == RuleKind.TERMS:
        terms = data.get("terms")
        if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
            raise InvalidRule("terms", "a list of strings")
        rule = Rule(rule_id or f"file:{name}", name, RuleKind.TERMS, reason, check_terms(terms))
    elif kind == RuleKind.REGEX:
        pattern = data.get("pattern")
        if not isinstance(pattern, str):
            raise InvalidRule("pattern", "a string")
        check_regex(pattern)
        rule = Rule(rule_id or f"file:{name}", name, RuleKind.REGEX, reason, pattern=pattern)
    else:
        raise InvalidRule("kind", "terms or regex")
    return rule


def load_rules_file(path: Path) -> RuleSet:
    """The global rules of AIGC_MODERATION_RULES: YAML (.yaml, .yml) or JSON, an object
    `{"rules": [...]}` or the list itself. A bad file stops the process with the rule's
    position and field: running without the rules the operator meant is worse."""
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    if isinstance(data, dict):
        data = data.get("rules")
    if not isinstance(data, list):
        raise InvalidRule("rules", f"{path}: a list of rules (or an object with `rules`)")
    rules = []
    for index, item in enumerate(data):
        try:
            rules.append(parse_rule(item))
        except InvalidRule as exc:
            raise InvalidRule(f"rules[{index}].{exc.field}", exc.message) from exc
    return RuleSet(rules)
