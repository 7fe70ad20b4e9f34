"""Run independent block tasks in this process or on a dask.distributed cluster.

:func:`run_tasks` is the single place where work leaves the calling process: with no
client the tasks run one after another here; with a ``dask.distributed.Client`` they are
submitted all at once and their results come back as they finish. Either way the caller
gets ``(index, result)`` pairs from a generator, so progress is counted over all workers
in one place, and closing the generator (cancel, Ctrl-C) cancels the cluster's pending
work. Workers only compute and return arrays; writing files stays with the caller, so
a cancelled run never leaves a half-written output behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any


def run_tasks(
    function: Callable[..., Any],
    items: Sequence[tuple],
    client=None,
    *,
    key: str = "segment",
) -> Iterator[tuple[int, Any]]:
    """Yield ``(i, function(*items[i]))`` for every item, in completion order.

    Args:
        function: a module-level (picklable) function.
        items: argument tuples, one per task.
        client: a ``dask.distributed.Client``, or None to run here one by one.
        key: prefix of the dask task names (shown in the dask dashboard).

    A worker's exception is re-raised here. Closing the generator early cancels the
    tasks not yet finished.
    """
    if client is None:
        for index, args in enumerate(items):
            yield index, function(*args)
        return
    import uuid

    from dask.distributed import as_completed

    run = uuid.uuid4().hex[:8]
    futures = [client.submit(function, *args, key=f"{key}-{run}-{index}", pure=False)
               for index, args in enumerate(items)]
    index_of = {future.key: index for index, future in enumerate(futures)}
    try:
        for future in as_completed(futures):
            result = future.result()
            yield index_of[future.key], result
            future.release()
    finally:
        client.cancel([future for future in futures if not future.done()])


def local_client(workers: int, threads_per_worker: int = 1, processes: bool = True):
    """A ``dask.distributed.Client`` on a new LocalCluster of ``workers`` workers on this machine.

    Close it (``client.close(); client.cluster.close()``, or use it in a ``with``) when done.
    """
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=threads_per_worker, processes=processes,
        dashboard_address=None,
    )
    return Client(cluster)
