"""workers.fair_share alone: which team the dispatcher serves next, chunk after chunk."""

from __future__ import annotations

import uuid
from collections import Counter

from workers.fair_share import FairShare

A, B, C = (uuid.UUID(int=n) for n in (1, 2, 3))
CHUNK = 16


def _serve(
    share: FairShare, weights: dict[uuid.UUID, int], chunks: int, credit: float = 0.0
) -> list[uuid.UUID]:
    served = []
    for _ in range(chunks):
        team = share.pick(weights, credit_jobs=credit)
        assert team is not None
        share.charge(team, CHUNK, weights[team])
        served.append(team)
    return served


def test_backlogged_teams_get_chunks_in_proportion_to_their_weights() -> None:
    served = Counter(_serve(FairShare(), {A: 3, B: 1, C: 2}, 600))
    assert served == {A: 300, B: 100, C: 200}


def test_a_team_alone_gets_every_chunk_and_nobody_is_picked_without_work() -> None:
    share = FairShare()
    assert set(_serve(share, {B: 1}, 10)) == {B}
    assert share.pick({}, credit_jobs=0) is None


def test_a_newcomer_is_credited_the_work_in_flight_then_shares_evenly() -> None:
    share = FairShare()
    _serve(share, {A: 1}, 50)
    # B arrives while 3 of A's chunks are in flight: it goes 3 chunks ahead, then even.
    served = _serve(share, {A: 1, B: 1}, 10, credit=3 * CHUNK)
    assert served[:4] == [B, B, B, B]  # the 4th: at equal passes, less since it came
    assert Counter(served[4:]) == {A: 3, B: 3}


def test_leaving_and_coming_back_earns_no_more_than_the_credit() -> None:
    share = FairShare()
    _serve(share, {A: 1, B: 1}, 20)
    for _ in range(5):  # B's queue empties after each chunk, then it submits again
        share.pick({A: 1}, credit_jobs=CHUNK)
        share.charge(A, CHUNK, 1)
        team = share.pick({A: 1, B: 1}, credit_jobs=CHUNK)
        share.charge(team, CHUNK, 1)  # type: ignore[arg-type]
    # Over the whole run B never got ahead of A by more than the credit.
    assert share.passes[A] - share.passes[B] <= CHUNK
