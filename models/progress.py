"""Progress and cancellation plumbing shared by the generators (no torch)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

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


class _ProgressBarSwitch(Protocol):
    """The progress-bar switches of `transformers.utils.logging` and `diffusers.utils.logging`."""

    def is_progress_bar_enabled(self) -> bool: ...
    def enable_progress_bar(self) -> None: ...
    def disable_progress_bar(self) -> None: ...


@contextmanager
def quiet_progress_bars(*libraries: _ProgressBarSwitch) -> Iterator[None]:
    """No library progress bars ("Loading weights", "Writing model shards") meanwhile.

    Loading and building are single steps of a worker's start-up, and tqdm bars would
    clutter its logs; the bars are switched back on afterwards if they were on.
    """
    enabled = [library.is_progress_bar_enabled() for library in libraries]
    for library in libraries:
        library.disable_progress_bar()
    try:
        yield
    finally:
        for library, was_enabled in zip(libraries, enabled, strict=True):
            if was_enabled:
                library.enable_progress_bar()
