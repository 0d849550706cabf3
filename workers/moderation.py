"""The moderation stage where it runs: the dispatcher checks prompts before a chunk goes to
the broker; a worker checks generated text before it is stored. Both read the rules through
a `RulesCache`: compiled once per team and recompiled only when moderation_state's
rules_version has moved, which costs a check one single-row read."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aigc.moderation import (
    ClassifierModerator,
    InvalidRule,
    Match,
    Moderator,
    Rule,
    RuleSet,
    load_rules_file,
)
from aigc.settings import Settings
from aigc.vocab import JobStatus
from db.jobs import ClaimedJob
from models.base import Artifact
from workers import metrics
from workers.retry import retry_transient

if TYPE_CHECKING:
    from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)

# What a rules source answers: None when the rules are still at `known_version`, else the
# new version with every enabled rule by team (None: global).
RulesByTeam = dict[uuid.UUID | None, list[Rule]]
RulesSource = Callable[[int | None], tuple[int, RulesByTeam] | None]


def file_rules(settings: Settings) -> RuleSet:
    """The rules file's rules (AIGC_MODERATION_RULES); none when unset."""
    path: Path | None = settings.moderation_rules
    return load_rules_file(path) if path is not None else RuleSet(())


def classifier(settings: Settings) -> Moderator | None:
    """The classifier AIGC_MODERATION_CLASSIFIER names, loaded now; None when unset."""
    if settings.moderation_classifier is None:
        return None
    from models.classifier import TextClassifier

    model = TextClassifier(settings.moderation_classifier)
    return ClassifierModerator(
        model.scores,
        model=settings.moderation_classifier,
        labels=settings.moderation_classifier_labels,
        threshold=settings.moderation_classifier_threshold,
    )


class RulesCache:
    """Each team's rules (the file's, then the database's global ones, then its own),
    compiled once per rules version."""

    def __init__(self, file_rules: RuleSet, classifier: Moderator | None = None) -> None:
        self.file_rules = file_rules
        # Run after a team's rules pass, for every team.
        self.classifier = classifier
        self.version: int | None = None
        self._global = file_rules
        self._teams: dict[uuid.UUID, RuleSet] = {}

    def refresh(self, source: RulesSource) -> None:
        changed = source(self.version)
        if changed is None:
            return
        version, by_team = changed
        self._global = self.file_rules + _compiled(by_team.pop(None, []))
        self._teams = {
            team: self._global + _compiled(rules)
            for team, rules in by_team.items()
            if team is not None
        }
        self.version = version
        log.info("moderation rules at version %d: %d teams with their own", version, len(by_team))

    def for_team(self, team_id: uuid.UUID | None) -> RuleSet:
        return self._teams.get(team_id, self._global) if team_id else self._global

    def check(self, team_id: uuid.UUID | None, texts: Sequence[str]) -> Match | None:
        """The team's rules, then the classifier."""
        match = self.for_team(team_id).check(texts)
        if match is None and self.classifier is not None:
            match = self.classifier.check(texts)
        return match

    def active(self, team_id: uuid.UUID | None) -> bool:
        """Whether there is anything to check this team's texts against."""
        return bool(self.for_team(team_id)) or self.classifier is not None


def _compiled(rules: Sequence[Rule]) -> RuleSet:
    """The rules that compile; one that does not (written by SQL, past the API's checks)
    is skipped with a warning rather than stopping moderation for everyone."""
    usable = []
    for rule in rules:
        try:
            RuleSet([rule])
        except InvalidRule as exc:
            log.warning("moderation rule %s (%s) skipped: %s", rule.name, rule.id, exc)
            continue
        usable.append(rule)
    return RuleSet(usable)


def output_texts(artifacts: Sequence[Artifact]) -> list[str]:
    """The generated text among a job's outputs (text artifacts)."""
    return [
        artifact.data.decode("utf-8", errors="replace")
        for artifact in artifacts
        if artifact.mime_type.startswith("text/")
    ]


def screen_outputs(
    jobs: Sequence[ClaimedJob],
    outputs: Sequence[list[Artifact]],
    *,
    cache: RulesCache,
    source: RulesSource,
    block: Callable[[ClaimedJob, Match], str | None],
) -> tuple[list[ClaimedJob], list[list[Artifact]]]:
    """The jobs (and their outputs) that pass; each refused one is blocked by `block`
    (which answers its team's name, or None when the job was no longer this run) and
    nothing of it is stored."""
    if not any(output_texts(artifacts) for artifacts in outputs):
        return list(jobs), list(outputs)
    cache.refresh(source)
    if not any(cache.active(job.team_id) for job in jobs):
        return list(jobs), list(outputs)
    passed: list[tuple[ClaimedJob, list[Artifact]]] = []
    for job, artifacts in zip(jobs, outputs, strict=True):
        match = cache.check(job.team_id, output_texts(artifacts))
        if match is None:
            passed.append((job, artifacts))
            continue
        log.warning("job %s output refused by moderation rule %s", job.id, match.rule_name)
        team = block(job, match)
        if team is not None:
            metrics.JOBS_BLOCKED.labels(team, match.reason_code).inc()
    return [job for job, _ in passed], [artifacts for _, artifacts in passed]


def screen_chunk_outputs(
    runtime: WorkerRuntime,
    jobs: Sequence[ClaimedJob],
    outputs: Sequence[list[Artifact]],
    outcome: dict[str, int],
) -> tuple[list[ClaimedJob], list[list[Artifact]]]:
    """The output stage of a worker's chunk: what may be stored; the rest ends blocked."""

    def block(job: ClaimedJob, match: Match) -> str | None:
        team = retry_transient(
            lambda: runtime.jobs.block(
                job.id, worker=runtime.worker_name, attempt=job.attempts, match=match
            ),
            what="recording a refusal",
        )
        if team is not None:
            outcome["blocked"] = outcome.get("blocked", 0) + 1
            metrics.job_finished(job, JobStatus.BLOCKED)
        return team

    return screen_outputs(
        jobs,
        outputs,
        cache=runtime.moderation,
        source=lambda known: retry_transient(
            lambda: runtime.jobs.moderation_rules(known), what="reading moderation rules"
        ),
        block=block,
    )
