"""The background batch maker: order, errors, stopping early."""

import threading
import time

import pytest

from napari_unet_maskrcnn.core.training.prefetch import BatchPrefetcher


def test_batches_come_in_order_and_are_made_off_the_calling_thread():
    callers = set()

    def make(indices):
        callers.add(threading.current_thread().name)
        return [i * 10 for i in indices]

    with BatchPrefetcher(make, [[1, 2], [3], [4, 5]]) as batches:
        assert list(batches) == [[10, 20], [30], [40, 50]]
    assert callers == {"batch-prefetch"}


def test_an_error_is_raised_at_its_batch():
    def make(indices):
        if indices == 2:
            raise ValueError("bad crop")
        return indices

    seen = []
    with pytest.raises(ValueError, match="bad crop"), BatchPrefetcher(make, [0, 1, 2, 3]) as batches:
        for batch in batches:
            seen.append(batch)
    assert seen == [0, 1]


def test_leaving_early_stops_the_producer():
    made = []

    def make(indices):
        made.append(indices)
        time.sleep(0.01)
        return indices

    with BatchPrefetcher(make, list(range(100)), depth=2) as batches:
        for batch in batches:
            if batch == 3:
                break
    count = len(made)
    time.sleep(0.1)
    assert len(made) == count <= 3 + 2 + 2  # nothing made after leaving; at most depth + one ahead


def test_depth_zero_makes_each_batch_on_the_calling_thread_when_asked():
    callers = []

    def make(indices):
        callers.append(threading.current_thread().name)
        return indices

    with BatchPrefetcher(make, [0, 1, 2], depth=0) as batches:
        iterator = iter(batches)
        assert next(iterator) == 0 and len(callers) == 1
        assert list(iterator) == [1, 2]
    assert set(callers) == {threading.current_thread().name}
