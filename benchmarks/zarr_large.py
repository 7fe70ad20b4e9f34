"""Segment a large uint16 zarr image into zarr: peak resident memory and MPix/s, in process and on 1, 2 workers.

    python benchmarks/zarr_large.py --size 32768 --model tiny       # the 2 GiB image of issue 10
    python benchmarks/zarr_large.py --size 8192 --model unet-nuclei --workers 1 2

The input (synthetic nuclei, zarr chunks of --chunk pixels) is written chunk row by chunk
row into a temporary folder, then each setting runs in a fresh process: ``0`` workers is
the plain in-process block loop (``api.segment_semantic(..., out=...)``), N >= 1 a
dask.distributed LocalCluster of N single-threaded worker processes (torch threads =
cores / N). Peak memory is the largest *sum* over that process and all its children (the
workers), sampled every 0.25 s with psutil: of proportional set sizes (PSS, the physical
memory the run takes, read at each new RSS peak; shared library pages split between the processes mapping them) and
of resident set sizes (RSS, which counts libtorch's shared pages once per worker). The U-Net has random
weights (``tiny``: depth 2 / width 8, ``small``: depth 3 / width 16, ``full``: depth 4 /
width 32), a bundled model's name or a model file: speed and memory depend on the
architecture, not on the weights. The settings run one after the other in one invocation,
so their MPix/s and the ratio to the first are measured side by side; the CPU is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SIZES = {"tiny": (2, 8), "small": (3, 16), "full": (4, 32)}


def write_input(path: Path, size: int, chunk: int, seed: int = 0) -> None:
    """uint16 (size, size) zarr: noisy background with bright discs, one chunk row in memory at a time."""
    import zarr

    array = zarr.open_array(path, mode="w", shape=(size, size), chunks=(chunk, chunk), dtype="uint16")
    yy, xx = np.mgrid[-12:13, -12:13]
    for y0 in range(0, size, chunk):
        rng = np.random.default_rng((seed, y0))
        rows = min(chunk, size - y0)
        strip = rng.normal(400, 40, (rows, size)).clip(0, 65535).astype(np.uint16)
        for _ in range(rows * size // 1600):
            y, x = rng.integers(12, rows - 12), rng.integers(12, size - 12)
            patch = strip[y - 12 : y + 13, x - 12 : x + 13]
            patch[(yy**2 + xx**2) <= rng.uniform(6, 12) ** 2] = rng.integers(3000, 20000)
        array[y0 : y0 + rows] = strip


def make_model(name: str, folder: Path) -> str:
    if name not in SIZES:
        return name
    from napari_unet_maskrcnn.core.model_file import ModelSpec, build_network, save_model

    depth, width = SIZES[name]
    spec = ModelSpec("unet", {"depth": depth, "base_width": width}, ["background", "nucleus", "boundary"], 1)
    return str(save_model(folder / f"unet-{name}.safetensors", build_network(spec), spec))


class PeakMemory:
    """Samples the memory of this process and its descendants in a thread; peaks in bytes.

    ``peak`` is the largest sum of resident memory (RSS), which counts the pages of shared
    libraries (libtorch, ~240 MB) once per process that maps them; ``peak_pss`` the largest
    sum of proportional set sizes, where shared pages are split between the processes: the
    physical memory the run takes, read whenever the summed RSS reaches a new peak (reading
    it costs ~0.2 s of CPU per process, too much to poll). ``peak_client`` is this process's own largest RSS.
    """

    def __init__(self, interval: float = 0.25):
        import psutil

        self._me = psutil.Process()
        self._interval = interval
        self.peak = self.peak_pss = self.peak_client = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            processes, rss = [], 0
            for process in [self._me, *self._me.children(recursive=True)]:
                try:
                    info = process.memory_info()  # cheap (statm); PSS (smaps) takes ~0.2 s a process
                except psutil.Error:
                    continue
                processes.append(process)
                rss += info.rss
                if process.pid == self._me.pid:
                    self.peak_client = max(self.peak_client, info.rss)
            if rss > self.peak * 1.02:  # a new peak: also read the (slow) proportional sizes
                self.peak_pss = max(self.peak_pss, _summed_pss(processes))
            self.peak = max(self.peak, rss)
            self._stop.wait(self._interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _summed_pss(processes) -> int:
    import psutil

    total = 0
    for process in processes:
        try:
            total += process.memory_full_info().pss
        except psutil.Error:
            pass
    return total


def run_one(image: str, model: str, workers: int, tile: int | None, block: int | None, out: str) -> dict:
    """Segment ``image`` into ``out`` with ``workers`` (0 = in process); returns the measures."""
    import zarr

    from napari_unet_maskrcnn import api

    size = zarr.open_array(image, mode="r").shape
    with PeakMemory() as memory:
        start = time.perf_counter()
        client = None
        if workers:
            from napari_unet_maskrcnn.core.executor import local_client

            client = local_client(workers)
        started = time.perf_counter()
        blocks = {"block": block} if block else {}
        api.segment_semantic(image, model, tile=tile, device="cpu", out=out, client=client, **blocks,
                             diameter=0)  # native scale: the pipeline, not an object-size estimate
        seconds = time.perf_counter() - started
        if client is not None:
            client.close()
            client.cluster.close()
        total = time.perf_counter() - start
    mpix = size[0] * size[1] / 1e6
    return {"workers": workers, "seconds": seconds, "with_cluster_start": total, "mpix_per_s": mpix / seconds,
            "peak_rss_gb": memory.peak / 1e9, "peak_pss_gb": memory.peak_pss / 1e9,
            "client_rss_gb": memory.peak_client / 1e9}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32768, help="image side in pixels (default 32768: 2 GiB)")
    parser.add_argument("--chunk", type=int, default=1024, help="zarr chunk side of the input and output")
    parser.add_argument("--model", default="small", help="tiny, small, full (random U-Nets), a bundled model or a model file")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2],
                        help="settings to run: 0 = in process, N = LocalCluster of N workers")
    parser.add_argument("--tile", type=lambda v: None if v == "auto" else int(v), default=512,
                        help="tile side in pixels, or auto: the API's memory-sized default (512)")
    parser.add_argument("--block", type=int, default=None, help="block side (default: the API's)")
    parser.add_argument("--run", nargs=3, metavar=("IMAGE", "MODEL", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.run:
        image, model, workers = args.run
        with tempfile.TemporaryDirectory() as folder:
            result = run_one(image, model, int(workers), args.tile, args.block, str(Path(folder) / "out.zarr"))
        print(json.dumps(result))
        return 0

    cores = os.cpu_count() or 1
    sys.path.insert(0, str(Path(__file__).parent))
    from speed import cpu_description  # lscpu model name and SIMD flags (AVX-512 or not)

    print(cpu_description(), flush=True)
    first = None
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        start = time.perf_counter()
        write_input(folder / "image.zarr", args.size, args.chunk)
        print(f"input {args.size}x{args.size} uint16 ({args.size**2 * 2 / 2**30:.2f} GiB), chunks {args.chunk}: "
              f"written in {time.perf_counter() - start:.0f} s", flush=True)
        model = make_model(args.model, folder)
        for workers in args.workers:
            env = {**os.environ, "NAPARI_UNET_MASKRCNN_THREADS": str(max(1, cores // max(workers, 1)))}
            command = [sys.executable, __file__, "--run", str(folder / "image.zarr"), model, str(workers),
                       "--tile", "auto" if args.tile is None else str(args.tile)]
            command += ["--block", str(args.block)] if args.block else []
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if done.returncode:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1
            result = json.loads(done.stdout.strip().splitlines()[-1])
            label = "in process" if workers == 0 else f"{workers} worker{'s' if workers > 1 else ''}"
            print(f"U-Net {args.model:5s} {label:10s}: {result['seconds']:7.1f} s ({result['with_cluster_start']:.1f} s "
                  f"with cluster start)  {result['mpix_per_s']:6.2f} MPix/s  peak memory: PSS {result['peak_pss_gb']:.2f} GB, "
                  f"RSS {result['peak_rss_gb']:.2f} GB summed, client RSS {result['client_rss_gb']:.2f} GB"
                  + (f"  speed x{result['mpix_per_s'] / first:.2f} of the first" if first else ""), flush=True)
            first = first or result["mpix_per_s"]
    return 0


if __name__ == "__main__":
    sys.exit(main())
