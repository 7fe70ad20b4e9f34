"""Training crops per second with and without the background batch maker, side by side.

    python benchmarks/training_throughput.py [--arch maskrcnn|unet] [--steps 12] [--augment strong]

Builds one training run (Mask R-CNN ResNet-18 FPN 128 as bundled, or the bundled U-Net size)
on synthetic crowded nuclei, then alternates blocks of optimisation steps made two ways:
*sequential* (crop + augment, then the step, on one thread of control — the loop before
``core/training/prefetch.py``) and *prefetched* (the loop's ``BatchPrefetcher`` making the
next batches while the network trains). Prints the median crops/s of each and their ratio,
with the CPU model and its relevant flags, and torch's thread count.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from large_image_memory import synthetic_nuclei  # noqa: E402


def cpu_description() -> str:
    from napari_unet_maskrcnn.core.training.provenance import hardware

    flags = set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    import torch

    return f"{hardware(torch.device('cpu'), 'float32')['cpu']} [{' '.join(shown)}], torch threads {torch.get_num_threads()}"


def build_run(arch: str, augment: str, batch_size: int):
    import numpy as np

    from napari_unet_maskrcnn.core.inputs import DEFAULT_NORMALIZATION
    from napari_unet_maskrcnn.core.model_file import ModelSpec
    from napari_unet_maskrcnn.core.training import TrainConfig
    from napari_unet_maskrcnn.core.training.augment import AUGMENT_PRESETS
    from napari_unet_maskrcnn.core.training.data import TrainingPair
    from napari_unet_maskrcnn.core.training.loop import Run
    from napari_unet_maskrcnn.core.training.tasks import InstanceTask, SemanticTask
    from skimage.measure import label

    pairs = []
    for seed in range(4):
        image = synthetic_nuclei(512, seed=seed)
        pairs.append(TrainingPair(image, label(image > np.percentile(image, 80)), f"s{seed}"))
    config = TrainConfig(epochs=1000, crop=256, batch_size=batch_size, val_fraction=0.0,
                         augment=AUGMENT_PRESETS[augment])
    if arch == "maskrcnn":
        spec = ModelSpec(arch="maskrcnn", config={"backbone": "resnet18", "fpn_channels": 128,
                                                   "mask_head_channels": 128, "box_batch_size_per_image": 256},
                         class_names=["nucleus"], in_channels=1, normalization=dict(DEFAULT_NORMALIZATION))
        task = InstanceTask()
    else:
        spec = ModelSpec(arch="unet", config={"depth": 4, "base_width": 16},
                         class_names=["background", "nucleus", "boundary"], in_channels=1,
                         normalization=dict(DEFAULT_NORMALIZATION))
        task = SemanticTask("instances")
    return Run(task, spec, pairs, config, None, None, None, None)


def crops_per_second(run, steps: int, prefetch: bool) -> float:
    import numpy as np

    from napari_unet_maskrcnn.core.training.prefetch import BatchPrefetcher

    size = run.config.batch_size
    batches = [np.asarray(run.rng.integers(0, len(run.train_data), size)) for _ in range(steps)]
    start = time.perf_counter()
    if prefetch:
        with BatchPrefetcher(run._make_batch, batches) as made:
            for samples in made:
                run._step(samples)
    else:
        for indices in batches:
            run._step(run._make_batch(indices))
    return steps * size / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=("maskrcnn", "unet"), default="maskrcnn")
    parser.add_argument("--steps", type=int, default=12, help="steps per timed block")
    parser.add_argument("--blocks", type=int, default=3, help="timed blocks of each kind, alternating")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--augment", default="strong")
    args = parser.parse_args()
    from napari_unet_maskrcnn.core.device import configure_threads

    configure_threads()
    run = build_run(args.arch, args.augment, args.batch_size)
    crops_per_second(run, 2, prefetch=False)  # warm-up
    timings: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.blocks):
        for prefetch in (False, True):
            timings[prefetch].append(crops_per_second(run, args.steps, prefetch))
    sequential, prefetched = statistics.median(timings[False]), statistics.median(timings[True])
    print(f"CPU: {cpu_description()}")
    print(f"{args.arch}, crop 256, batch {args.batch_size}, augment {args.augment}, "
          f"{args.blocks} blocks of {args.steps} steps each, medians:")
    print(f"  sequential  {sequential:.2f} crops/s")
    print(f"  prefetched  {prefetched:.2f} crops/s   ({prefetched / sequential:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
