"""Augmented batches made in a background thread while the network trains on the previous one.

Cropping, resizing, rotating and colour jitter (numpy / scipy, which release the GIL in their
inner loops) would otherwise leave the cores idle between optimisation steps. One producer
thread makes the batches of an epoch strictly in order, so it is the only user of the run's
random generator during the epoch and a run is exactly as reproducible as without it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

_DONE = object()


class BatchPrefetcher:
    """Iterate over ``make_batch(indices)`` for each entry of ``batches``, ``depth`` batches ahead.

    ``depth=0`` makes each batch on the calling thread when it is asked for (no thread).

    Use as a context manager: leaving it (end of the epoch, time budget, cancel, error)
    stops the producer after the batch it is making and waits for it, so nothing draws from
    the random generator afterwards. An exception in ``make_batch`` is raised by the
    iteration at the batch where it happened.
    """

    def __init__(self, make_batch: Callable[[Any], Any], batches: Sequence[Any], depth: int = 2):
        self._make_batch = make_batch
        self._batches = list(batches)
        self._depth = depth
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="batch-prefetch", daemon=True)

    def __enter__(self) -> BatchPrefetcher:
        if self._depth:
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __iter__(self) -> Iterator[Any]:
        if not self._depth:
            for indices in self._batches:
                if self._stop.is_set():
                    return
                yield self._make_batch(indices)
            return
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def close(self) -> None:
        """Stop making batches and wait for the producer thread to end."""
        self._stop.set()
        while self._thread.is_alive():
            try:  # make room so a producer blocked on a full queue can see the stop flag
                self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(timeout=0.05)

    def _produce(self) -> None:
        for indices in self._batches:
            if self._stop.is_set():
                return
            try:
                item = self._make_batch(indices)
            except BaseException as error:  # noqa: BLE001 - handed to the consumer
                item = _Failure(error)
            if not self._put(item) or isinstance(item, _Failure):
                return
        self._put(_DONE)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error
