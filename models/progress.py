"""Progress and cancellation plumbing shared by the generators (no torch)."""

from __future__ import annotations

from models.base import CancelCheck, ProgressCallback
from models.errors import GenerationCanceled


def raise_if_canceled(should_cancel: CancelCheck | None) -> None:
    if should_cancel is not None and should_cancel():
        raise GenerationCanceled("generation was canceled")


class BatchProgress:
    """Reports one (done, total) series over a generate() call that runs several batches.

    A worker shows one progress bar per call, so steps of later batches continue where the
    earlier ones stopped instead of restarting at zero.
    """

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self._callback = callback
        self._total = total
        self._offset = 0
        self._last_reported = -1

    def step(self, done_in_batch: int) -> None:
        self._report(self._offset + done_in_batch)

    def finish_batch(self, batch_steps: int) -> None:
        # Batches may stop early (every row hit end-of-sequence): count them as fully done.
        self._offset += batch_steps
        self._report(self._offset)

    def _report(self, done: int) -> None:
        done = min(done, self._total)
        if self._callback is None or done == self._last_reported:
            return
        self._last_reported = done
        self._callback(done, self._total)
