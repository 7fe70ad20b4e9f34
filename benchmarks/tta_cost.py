"""What test-time flips cost: Mask R-CNN with and without ``tta`` on the bundled samples, interleaved.

    python benchmarks/tta_cost.py [--repeats 3] [--models maskrcnn-nuclei maskrcnn-phasecells]

Prints the CPU and torch threads, then for each model its sample image (maskrcnn-nuclei: the
fluorescence nuclei sample; maskrcnn-phasecells: the phase-contrast sample), segmented at native
scale (``diameter=0``, so the object-size pass does not blur the comparison) in alternating
plain / flipped runs: median seconds of each, their ratio, and the object counts. The accuracy
side is the held-out evaluation (``scripts/evaluate_bundled.py --tta``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import cpu_description  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "sample_data"
SAMPLE_OF = {"maskrcnn-nuclei": "nuclei_fluorescence.tif", "maskrcnn-phasecells": "phase_cells.tif"}


def main() -> int:
    from napari_unet_maskrcnn import api

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(SAMPLE_OF), choices=list(SAMPLE_OF))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(cpu_description())
    for name in args.models:
        image = tifffile.imread(SAMPLES / SAMPLE_OF[name])
        times = {False: [], True: []}
        counts = {}
        api.segment_instances(image, name, diameter=0)  # load the model and warm up
        for _ in range(args.repeats):
            for tta in (False, True):
                start = time.perf_counter()
                result = api.segment_instances(image, name, diameter=0, tta=tta)
                times[tta].append(time.perf_counter() - start)
                counts[tta] = int(result.labels.max())
        plain, flipped = statistics.median(times[False]), statistics.median(times[True])
        print(f"{name} on {SAMPLE_OF[name]} {image.shape}: plain {plain:.1f} s ({counts[False]} objects), "
              f"flips {flipped:.1f} s ({counts[True]} objects): {flipped / plain:.2f}x the time "
              f"(medians of {args.repeats} interleaved runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
