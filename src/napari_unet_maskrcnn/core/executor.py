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


# Imported once by the process that forks the local workers: their pages (~300 MB of
# torch's heap and allocations, which every spawned worker would hold privately) are
# then shared copy-on-write. The client process itself never imports them.
WORKER_PRELOAD = (
    "numpy", "zarr", "torch", "torchvision",
    "napari_unet_maskrcnn.core.blockwise", "napari_unet_maskrcnn.core.models.unet",
    "napari_unet_maskrcnn.core.models.maskrcnn", "napari_unet_maskrcnn.core.semantic",
)


def local_client(workers: int, threads_per_worker: int = 1, processes: bool = True):
    """A ``dask.distributed.Client`` on a new LocalCluster of ``workers`` workers on this machine.

    Worker processes are forked from a server that has already imported torch and this
    package (``forkserver``, where the platform has it), so N workers take about one copy of
    torch's memory instead of N: 8192² tiny U-Net on 2 workers peaked at 1.00 GB summed PSS
    against 1.52 GB with spawned workers (same run, AMD EPYC AVX2). Close the client (``client.close();
    client.cluster.close()``, or use it in a ``with``) when done.
    """
    import multiprocessing

    import dask
    from dask.distributed import Client, LocalCluster

    # dask's MALLOC_TRIM_THRESHOLD_ pins glibc's mmap threshold at 128 kB, so every tile's
    # activations are fresh mmap'ed (page-faulted) memory: workers ran 1.27x slower than the
    # same blocks in process (4096² tiny U-Net, one worker, AMD EPYC AVX2); without it alike.
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    settings = {"distributed.nanny.pre-spawn-environ": environ}
    forkserver = processes and "forkserver" in multiprocessing.get_all_start_methods()
    if forkserver:
        settings["distributed.worker.multiprocessing-method"] = "forkserver"
    with dask.config.set(settings):
        if forkserver:
            from distributed.utils import get_mp_context

            get_mp_context()  # sets dask's preload list once; ours replaces it (before the server starts)
            multiprocessing.get_context("forkserver").set_forkserver_preload(["distributed", *WORKER_PRELOAD])
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=threads_per_worker, processes=processes,
            dashboard_address=None,
        )
    return Client(cluster)
