"""Tiled instance segmentation: seams, overlaps by score, min_size, progress and cancellation."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk, ellipse
from skimage.measure import label, regionprops

from napari_unet_maskrcnn.core.instances import PlaneInstances, predict_instances_plane
from napari_unet_maskrcnn.core.progress import ProgressEvent, drain
from napari_unet_maskrcnn.core.testing import blob_detections
from napari_unet_maskrcnn.core.tiling import core_bounds

MASK_SIZE = 28


class ArraySource:
    """Stand-in for inputs.PlaneSource over a float32 (C, H, W) array."""

    def __init__(self, image: np.ndarray):
        self.image = image
        self.channels = image.shape[0]
        self.shape = image.shape[1:]

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        return self.image[:, y0:y1, x0:x1]


def threshold_detector(image: np.ndarray, keep=None) -> dict[str, np.ndarray]:
    """Fake detector: bright connected components, scored by mean intensity, class by size (ignores ``keep``)."""
    detections = blob_detections(image, threshold=0.5, score=None, mask_size=MASK_SIZE)
    areas = [region.area for region in regionprops(label(image[0] > 0.5))]
    detections["labels"] = np.where(np.asarray(areas) < 150, 1, 2).astype(np.int32)
    return detections


def fixed_detector(boxes, scores, classes=None):
    """Fake detector returning full-box masks for fixed boxes, whatever the image."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)

    def detector(image, keep=None):
        return {
            "boxes": boxes,
            "scores": np.asarray(scores, dtype=np.float32),
            "labels": np.asarray(classes or [1] * len(boxes), dtype=np.int32),
            "masks": np.ones((len(boxes), MASK_SIZE, MASK_SIZE), dtype=np.float32),
        }

    return detector


def seam_image(shape, tile, margin):
    """Discs and ellipses centred on core seams (and some at the plane edge), not touching.

    Returns the (1, H, W) image and the ground-truth label image.
    """
    truth = np.zeros(shape, dtype=np.int32)
    ys = core_bounds(shape[0], tile, margin)
    xs = core_bounds(shape[1], tile, margin)
    centres = [(y, x) for y in ys for x in xs] + [(y + 14, x) for y in ys[:-1] for x in xs[1:-1]]
    rng = np.random.default_rng(1)
    for y, x in centres:
        radius = rng.integers(4, 10)
        if rng.random() < 0.5:
            rr, cc = disk((y, x), radius, shape=shape)
        else:
            rr, cc = ellipse(y, x, radius, radius * 0.6, shape=shape, rotation=rng.random() * np.pi)
        grown = truth[max(rr.min() - 2, 0) : rr.max() + 3, max(cc.min() - 2, 0) : cc.max() + 3]
        if rr.size and not grown.any():
            truth[rr, cc] = truth.max() + 1
    intensity = 0.6 + 0.3 * rng.random(truth.max() + 1)
    image = np.where(truth > 0, intensity[truth], 0.0).astype(np.float32)
    return image[None], truth


def pixel_sets(labels):
    return {frozenset(np.flatnonzero(labels == i)) for i in range(1, labels.max() + 1)}


def run(image, detector, **kwargs):
    return drain(predict_instances_plane(ArraySource(image), detector, **kwargs))


def test_seams_tiled_equals_untiled_and_truth():
    shape, tile, margin = (200, 230), 64, 16
    image, truth = seam_image(shape, tile, margin)
    seams_y, seams_x = core_bounds(shape[0], tile, margin)[1:-1], core_bounds(shape[1], tile, margin)[1:-1]
    straddling = sum(
        any(r.bbox[0] < s < r.bbox[2] for s in seams_y) or any(r.bbox[1] < s < r.bbox[3] for s in seams_x)
        for r in regionprops(truth)
    )
    assert straddling >= 15

    tiled = run(image, threshold_detector, tile=tile, margin=margin, min_size=5)
    whole = run(image, threshold_detector, tile=512, margin=margin, min_size=5)

    assert pixel_sets(tiled.labels) == pixel_sets(whole.labels)
    assert tiled.labels.max() == truth.max() == len(tiled.scores) == len(tiled.classes)
    for obj in range(1, truth.max() + 1):
        found, counts = np.unique(tiled.labels[truth == obj], return_counts=True)
        assert found.size == 1 and found[0] > 0, "object chopped or lost"
        predicted = tiled.labels == found[0]
        iou = (predicted & (truth == obj)).sum() / (predicted | (truth == obj)).sum()
        assert iou > 0.9
        same = whole.labels[predicted][0]
        assert tiled.scores[found[0] - 1] == whole.scores[same - 1]
        assert tiled.classes[found[0] - 1] == whole.classes[same - 1]


def test_result_types_and_score_order():
    image, _ = seam_image((120, 120), 64, 16)
    result = run(image, threshold_detector, tile=64, margin=16)
    assert isinstance(result, PlaneInstances)
    assert result.labels.dtype == np.int32 and result.labels.shape == (120, 120)
    assert result.scores.dtype == np.float32 and result.classes.dtype == np.int32
    assert set(np.unique(result.labels)) == set(range(result.labels.max() + 1))
    assert np.all(np.diff(result.scores) <= 0)
    assert set(result.classes) <= {1, 2}


@pytest.mark.parametrize("first_wins", [True, False])
def test_overlap_goes_to_higher_score(first_wins):
    scores = [0.9, 0.8] if first_wins else [0.8, 0.9]
    detector = fixed_detector([(10, 10, 30, 30), (20, 20, 40, 40)], scores, [1, 2])
    result = run(np.zeros((1, 50, 50), np.float32), detector, min_size=1)
    winner, loser = (1, 2) if first_wins else (2, 1)  # class ids double as detection identities
    win_id = int(np.flatnonzero(result.classes == winner)[0]) + 1
    lose_id = int(np.flatnonzero(result.classes == loser)[0]) + 1
    assert win_id == 1
    assert (result.labels == win_id).sum() == 400
    assert (result.labels == lose_id).sum() == 300
    assert np.all(result.labels[20:30, 20:30] == win_id)


def test_largest_piece_kept_and_min_size():
    detector = fixed_detector(
        [(18, 0, 22, 50), (10, 10, 40, 30), (44, 44, 47, 47)],  # bar, box the bar splits, 3x3 speck
        [0.9, 0.8, 0.7],
    )
    result = run(np.zeros((1, 50, 50), np.float32), detector, min_size=10)
    assert result.labels.max() == 2  # the speck (9 px) is dropped
    assert (result.labels == 2).sum() == 18 * 20  # right piece only
    assert np.all(result.labels[10:30, 10:18] == 0)

    # the bar (200 px) is now too small: it claims nothing, so the box keeps all its pixels
    bar_dropped = run(np.zeros((1, 50, 50), np.float32), detector, min_size=201)
    assert bar_dropped.labels.max() == 1 and (bar_dropped.labels == 1).sum() == 30 * 20
    assert bar_dropped.scores.tolist() == [pytest.approx(0.8)]


def test_boxes_past_the_plane_edge_are_clipped():
    detector = fixed_detector([(-5, -5, 10, 10), (40, 45, 60, 70)], [0.9, 0.8])
    result = run(np.zeros((1, 50, 50), np.float32), detector, min_size=1)
    assert (result.labels == 1).sum() == 100 and (result.labels == 2).sum() == 10 * 5


def test_empty_plane():
    result = run(np.zeros((1, 40, 70), np.float32), threshold_detector, tile=32, margin=8)
    assert result.labels.shape == (40, 70) and result.labels.max() == 0
    assert result.scores.shape == (0,) and result.classes.shape == (0,)


def test_progress_counts_and_close_midway():
    calls = []

    def detector(image, keep):
        calls.append(image.shape)
        return threshold_detector(image)

    source = ArraySource(np.zeros((1, 100, 100), np.float32))
    events = []
    drain(predict_instances_plane(source, detector, tile=48, margin=8), on_progress=events.append)
    assert events == [ProgressEvent(i, 16, "tile") for i in range(1, 17)]
    assert all(shape[1] <= 48 and shape[2] <= 48 for shape in calls)

    calls.clear()
    gen = predict_instances_plane(source, detector, tile=48, margin=8)
    for _ in range(3):
        next(gen)
    gen.close()
    assert len(calls) == 3
    with pytest.raises(StopIteration):
        next(gen)


def test_bad_tile_margin():
    with pytest.raises(ValueError, match="margin"):
        run(np.zeros((1, 100, 100), np.float32), threshold_detector, tile=64, margin=32)
