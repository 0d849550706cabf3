"""The optional classifier: a tiny local transformers text-classification model, built
here with its verdict fixed by the head's bias (random weights decide nothing reliably),
run through the real pipeline and through the dispatcher."""

from __future__ import annotations

from pathlib import Path

import pytest

from aigc.moderation import ClassifierModerator
from aigc.vocab import JobStatus
from models.classifier import TextClassifier
from tests.conftest import TeamKey
from tests.moderation.conftest import Rig

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "poem", "about", "the", "sea"]


def build_tiny_classifier(path: Path, *, verdict: str) -> Path:
    """A two-label model (`safe`, `toxic`) that answers `verdict` for every text."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    path.mkdir(parents=True)
    (path / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    BertTokenizer(vocab_file=str(path / "vocab.txt")).save_pretrained(path)
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=64,
        id2label={0: "safe", 1: "toxic"},
        label2id={"safe": 0, "toxic": 1},
    )
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 8.0] if verdict == "toxic" else [8.0, 0.0]))
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("classifiers")
    return {v: build_tiny_classifier(root / v, verdict=v) for v in ("safe", "toxic")}


def _moderator(path: Path) -> ClassifierModerator:
    return ClassifierModerator(
        TextClassifier(str(path)).scores, model=path.name, labels=["toxic"], threshold=0.9
    )


def test_a_label_over_the_threshold_refuses(classifiers: dict[str, Path]) -> None:
    match = _moderator(classifiers["toxic"]).check(["a poem about the sea"])
    assert match is not None
    assert (match.rule_name, match.reason_code, match.rule_id) == (
        "classifier",
        "toxic",
        "classifier:toxic",
    )
    assert _moderator(classifiers["safe"]).check(["a poem about the sea", "x" * 5000]) is None


def test_the_dispatcher_runs_the_classifier_after_the_rules(
    rig: Rig, team: TeamKey, classifiers: dict[str, Path]
) -> None:
    rig.dispatcher.moderation.classifier = _moderator(classifiers["toxic"])
    rig.add_rule(team, name="weapons", terms=["bomb"], reason_code="violence")
    ids = rig.add_batch(team, [("a bomb", {}), ("a poem about the sea", {})])
    rig.dispatcher.refill()
    assert rig.sent() == []
    jobs = rig.jobs(ids)
    assert all(job.status == JobStatus.BLOCKED for job in jobs.values())
    first, second = (jobs[i].moderation or {} for i in ids)
    assert (first["rule"], first["reason_code"]) == ("weapons", "violence")  # rules first
    assert (second["rule"], second["reason_code"]) == ("classifier", "toxic")
