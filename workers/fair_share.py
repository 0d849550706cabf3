"""Which team's chunk the dispatcher sends next: weighted fair queuing over the teams with
work waiting for one kind (stride scheduling, the continuous form of deficit round robin).

Each team has a *pass*: the jobs sent for it divided by its weight. The next chunk goes to
the team with the lowest pass, so over any stretch where several teams have work waiting
the jobs sent are in proportion to their weights, and a team alone gets everything.

A team whose queue was empty (new, or idle for a while) joins at the *virtual time*, the
lowest pass among the teams already waiting, less a credit: the jobs already in flight
(in the broker's window or running) were chosen before it arrived, and the credit gives
that place back, so a short burst from a quiet team is not held behind a backlog's window.
A team keeps its pass when it goes idle and rejoins at the larger of the two, so leaving
and rejoining never earns more than the credit, which the window and the number of
workers bound: the lag between any two teams stays bounded.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class FairShare:
    """The passes of one kind's teams. Not thread-safe: the dispatcher leader owns it."""

    passes: dict[uuid.UUID, float] = field(default_factory=dict)
    virtual_time: float = 0.0
    # Teams that had work waiting at the previous pick: the others join anew.
    active: frozenset[uuid.UUID] = frozenset()
    # Jobs sent for each team since it last joined: of two equal passes, the team that has
    # had less since it came goes first (a short burst ends sooner; backlogs alternate).
    attained: dict[uuid.UUID, int] = field(default_factory=dict)

    def pick(self, weights: Mapping[uuid.UUID, int], *, credit_jobs: float) -> uuid.UUID | None:
        """The team to send a chunk for, among those with work waiting that may run more
        (team → weight); None when there are none."""
        if not weights:
            self.active = frozenset()
            return None
        staying = [team for team in weights if team in self.active]
        if staying:
            self.virtual_time = min(self.passes[team] for team in staying)
        for team, weight in weights.items():
            if team not in self.active:
                joined_at = self.virtual_time - credit_jobs / weight
                self.passes[team] = max(self.passes.get(team, joined_at), joined_at)
                self.attained[team] = 0
        self.active = frozenset(weights)
        return min(weights, key=lambda team: (self.passes[team], self.attained[team], team))

    def charge(self, team: uuid.UUID, jobs: int, weight: int) -> None:
        """Count `jobs` sent for the team."""
        self.passes[team] = self.passes.get(team, self.virtual_time) + jobs / weight
        self.attained[team] = self.attained.get(team, 0) + jobs

    def drop(self, team: uuid.UUID) -> None:
        """The team turned out to have nothing waiting: it joins anew next time."""
        self.active = self.active - {team}
