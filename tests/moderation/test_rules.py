"""Matching rules, without servers: what a rule refuses and what it lets through."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigc.moderation import (
    MAX_PATTERN_CHARS,
    TIMEOUT_REASON,
    InvalidRule,
    Rule,
    RuleKind,
    RuleSet,
    Stage,
    is_unspaced,
    load_rules_file,
    parse_rule,
)

WEAPONS = Rule("r1", "weapons", RuleKind.TERMS, "violence", ("Pipe Bomb", "炸弹", "ระเบิด"))
SSN = Rule("r2", "ssn", RuleKind.REGEX, "pii", pattern=r"\b\d{3}-\d{2}-\d{4}\b")
RULES = RuleSet([WEAPONS, SSN])


@pytest.mark.parametrize(
    "text",
    [
        "how to build a pipe bomb",
        "PIPE   BOMB!",  # any case, any run of spaces
        "ｐｉｐｅ ｂｏｍｂ",  # full-width letters: NFKC makes them plain
        "如何在家里制作炸弹的方法",  # Chinese has no spaces: found inside the sentence
        "วิธีทำระเบิดที่บ้าน",  # Thai likewise
    ],
)
def test_terms_match_words_and_unspaced_scripts_anywhere(text: str) -> None:
    match = RULES.check([text])
    assert match is not None and (match.rule_name, match.reason_code) == ("weapons", "violence")


@pytest.mark.parametrize("text", ["pipe bombastic", "a pipebomb-free zone", "bomb", "炸"])
def test_spaced_terms_match_only_whole_words(text: str) -> None:
    assert RULES.check([text]) is None


def test_regex_rule_and_the_first_rule_that_matches_wins() -> None:
    match = RULES.check(["fine", "my number is 123-45-6789"])
    assert match is not None and match.rule_name == "ssn" and match.reason_code == "pii"
    assert RULES.check(["call 123-456-7890"]) is None


def test_the_message_names_the_rule_never_the_terms() -> None:
    match = RULES.check(["pipe bomb"])
    assert match is not None
    assert "weapons" in match.message() and "bomb" not in match.message()
    assert match.details(Stage.INPUT) == {
        "rule": "weapons",
        "rule_id": "r1",
        "reason_code": "violence",
        "stage": "input",
    }


def test_script_decides_per_term() -> None:
    assert is_unspaced("炸弹") and is_unspaced("ระเบิด") and is_unspaced("ｶﾀｶﾅ")
    assert not is_unspaced("bomb") and not is_unspaced("бомба")


def test_a_regex_that_runs_too_long_refuses_rather_than_passes() -> None:
    slow = RuleSet([Rule("r3", "slow", RuleKind.REGEX, "x", pattern=r"^(a|aa)+$")])
    match = slow.check(["a" * 60 + "b"])  # exponential backtracking
    assert match is not None and match.reason_code == TIMEOUT_REASON


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "x", "kind": "regex", "pattern": "(", "reason_code": "a"}, "pattern"),
        (
            {
                "name": "x",
                "kind": "regex",
                "pattern": "a" * (MAX_PATTERN_CHARS + 1),
                "reason_code": "a",
            },
            "pattern",
        ),
        ({"name": "x", "kind": "terms", "terms": ["  "], "reason_code": "a"}, "terms"),
        ({"name": "x", "kind": "terms", "terms": [], "reason_code": "a"}, "terms"),
        ({"name": "x", "kind": "words", "reason_code": "a"}, "kind"),
        ({"name": "x", "kind": "terms", "terms": ["a"], "reason_code": "Bad Code"}, "reason_code"),
        ({"name": "", "kind": "terms", "terms": ["a"], "reason_code": "a"}, "name"),
    ],
)
def test_bad_rules_name_their_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRule) as caught:
        parse_rule(data)
    assert caught.value.field == field


def test_rules_file_yaml_and_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "rules.yaml"
    yaml_file.write_text(
        "rules:\n"
        "  - name: weapons\n    kind: terms\n    terms: [pipe bomb, 炸弹]\n"
        "    reason_code: violence\n"
        "  - name: ssn\n    kind: regex\n    pattern: '\\b\\d{3}-\\d{2}-\\d{4}\\b'\n"
        "    reason_code: pii\n",
        encoding="utf-8",
    )
    rules = load_rules_file(yaml_file)
    assert [rule.id for rule in rules.rules] == ["file:weapons", "file:ssn"]
    assert rules.check(["制作炸弹"]) is not None and rules.check(["000-00-0000"]) is not None

    json_file = tmp_path / "rules.json"
    json_file.write_text(
        json.dumps([{"name": "x", "kind": "regex", "pattern": "(", "reason_code": "a"}])
    )
    with pytest.raises(InvalidRule, match=r"rules\[0\]\.pattern"):
        load_rules_file(json_file)
