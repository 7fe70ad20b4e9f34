"""Test-time augmentation over the four flips of a tile: U-Net probabilities averaged, detections fused.

Each tile is also seen mirrored left-right, up-down and both, and the outputs are mirrored back.
A U-Net wrapped in :class:`FlipAveraged` is a drop-in replacement for the plain one anywhere
tiles are classified (tiling, blending and blocks unchanged): it returns the log of the averaged
probabilities, whose softmax is that average. A detector wrapped in :class:`FlipFusedDetector`
is a drop-in replacement for :func:`~.models.maskrcnn.detect` in
:func:`~.instances.predict_instances_plane`: detections of the same object in the four views
become one, scored by the views that found it.
"""

from __future__ import annotations

import numpy as np
import torch

TTA_VIEW_SCORE_FACTOR = 0.5
"""Each flipped view keeps detections down to this fraction of the score threshold: an object
one view scores a little lower still counts there (the fused score is then thresholded)."""

FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))
"""Dimensions flipped in each view of a (B, C, H, W) batch: none, X, Y, both."""


class FlipAveraged(torch.nn.Module):
    """``network`` seen through the four flips of its input; costs four forward passes per tile.

    forward: float32 (B, C, H, W) -> log of the mean softmax, float32 (B, K, H, W).
    """

    def __init__(self, network: torch.nn.Module):
        super().__init__()
        self.network = network

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        views = torch.cat([tiles.flip(dims) if dims else tiles for dims in FLIPS])
        probabilities = torch.softmax(self.network(views).float(), dim=1).chunk(len(FLIPS))
        mean = sum(p.flip(dims) if dims else p for p, dims in zip(probabilities, FLIPS)) / len(FLIPS)
        return torch.log(mean.clamp_min(torch.finfo(mean.dtype).tiny))


class FlipFusedDetector:
    """Test-time augmentation for instance detectors: the detections of the four flips, fused.

    The detector sees the tile as it is and mirrored left-right, up-down and both; each view's
    boxes and box-frame masks are mirrored back. Detections of the same class whose boxes
    overlap with IoU >= ``match_iou`` form one object (at most one detection per view, best
    scores first). An object's score is the sum of its views' scores divided by the number of
    views, so an object seen in only some views is down-weighted (it then usually falls under
    ``score_threshold``: the fewer false positives this buys are the point); its soft mask is
    the mean of its views' masks resampled onto the image pixels. Costs four detector passes
    per tile plus the masks of the objects outside the tile's core (ownership is decided on
    the fused boxes, by the ``keep`` given at the call).

    Call: ``(image float32 (C, h, w), keep=None) -> dict`` like
    :func:`~.models.maskrcnn.detect`: ``boxes`` float32 (N, 4) x0, y0, x1, y1 (pixel edges),
    ``scores`` (N,), ``labels`` (N,), ``masks`` a list of N float32 ``(h_i, w_i)`` soft masks,
    each covering its box at one cell per pixel.
    """

    def __init__(self, detector, *, score_threshold: float, match_iou: float = 0.5):
        """``detector(image)`` -> detections of one view; run it with a score threshold below
        ``score_threshold`` (e.g. half of it) so that an object a view scores lower still adds
        its score. ``score_threshold``: lowest fused score kept."""
        self.detector = detector
        self.score_threshold = float(score_threshold)
        self.match_iou = float(match_iou)

    def __call__(self, image, keep=None) -> dict:
        height, width = image.shape[-2:]
        views = [_unflipped(self.detector(np.ascontiguousarray(np.flip(image, axis=dims) if dims else image)),
                            dims, height, width)
                 for dims in FLIPS]
        fused = _fuse(views, self.match_iou, self.score_threshold, (height, width))
        if keep is not None and len(fused["scores"]):
            wanted = np.asarray(keep(fused["boxes"]), dtype=bool)
            fused = {"boxes": fused["boxes"][wanted], "scores": fused["scores"][wanted],
                     "labels": fused["labels"][wanted],
                     "masks": [mask for mask, w in zip(fused["masks"], wanted) if w]}
        return fused


def _unflipped(detections: dict, dims: tuple[int, ...], height: int, width: int) -> dict:
    """One view's detections mirrored back onto the unflipped image (boxes and box-frame masks)."""
    boxes = np.asarray(detections["boxes"], dtype=np.float64).reshape(-1, 4).copy()
    masks = np.asarray(detections["masks"], dtype=np.float32)
    if -1 in dims:
        boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
    if -2 in dims:
        boxes[:, [1, 3]] = height - boxes[:, [3, 1]]
    if dims and len(masks):
        masks = np.flip(masks, axis=dims)
    return {"boxes": boxes, "scores": np.asarray(detections["scores"], dtype=np.float64),
            "labels": np.asarray(detections["labels"], dtype=np.int32), "masks": masks}


def _fuse(views: list[dict], match_iou: float, score_threshold: float, shape: tuple[int, int]) -> dict:
    """Group the views' detections into objects (greedy, best score first) and average each group."""
    from torchvision.ops import box_iou

    boxes = np.concatenate([v["boxes"] for v in views])
    scores = np.concatenate([v["scores"] for v in views])
    labels = np.concatenate([v["labels"] for v in views])
    masks = [m for v in views for m in v["masks"]]
    view_of = np.concatenate([np.full(len(v["scores"]), i) for i, v in enumerate(views)])
    iou = np.nan_to_num(box_iou(torch.from_numpy(boxes), torch.from_numpy(boxes)).numpy())
    iou[labels[:, None] != labels[None, :]] = 0.0  # only detections of one class form an object
    groups: list[list[int]] = []
    group_views: list[set[int]] = []
    leaders: list[int] = []  # each group's best-scoring detection, whose box others are matched to
    for i in np.argsort(-scores, kind="stable"):
        choice = None
        leader_iou = iou[i, leaders]
        for g in np.argsort(-leader_iou, kind="stable"):
            if leader_iou[g] < match_iou:
                break
            if view_of[i] not in group_views[g]:
                choice = g
                break
        if choice is None:
            groups.append([i])
            group_views.append({view_of[i]})
            leaders.append(i)
        else:
            groups[choice].append(i)
            group_views[choice].add(view_of[i])
    out_boxes, out_scores, out_labels, out_masks = [], [], [], []
    for group in groups:
        score = scores[group].sum() / len(views)
        if score < score_threshold:
            continue
        box, mask = _mean_mask([masks[j] for j in group], boxes[group], shape)
        if mask is None:
            continue
        out_boxes.append(box)
        out_scores.append(score)
        out_labels.append(labels[group[0]])
        out_masks.append(mask)
    count = len(out_scores)
    return {"boxes": np.asarray(out_boxes, np.float32).reshape(count, 4),
            "scores": np.asarray(out_scores, np.float32), "labels": np.asarray(out_labels, np.int32),
            "masks": out_masks}


def _mean_mask(masks: list, boxes, shape: tuple[int, int]):
    """Mean of box-frame soft masks resampled onto the image pixels they can reach.

    Returns ``(box (4,) x0, y0, x1, y1 of the covered pixels, float32 (h, w) mean)``, one cell
    per pixel, or ``(None, None)`` when the boxes reach no pixel.
    """
    from .instances import _interp_weights

    parts = []
    for soft, (x0, y0, x1, y1) in zip(masks, boxes):
        ys, rows = _interp_weights(y0, y1, soft.shape[0], shape[0])
        xs, cols = _interp_weights(x0, x1, soft.shape[1], shape[1])
        if rows.shape[0] and cols.shape[0]:
            parts.append((ys, xs, rows @ np.asarray(soft, np.float64) @ cols.T))
    if not parts:
        return None, None
    top = min(p[0] for p in parts)
    left = min(p[1] for p in parts)
    bottom = max(p[0] + p[2].shape[0] for p in parts)
    right = max(p[1] + p[2].shape[1] for p in parts)
    total = np.zeros((bottom - top, right - left))
    for ys, xs, pasted in parts:
        total[ys - top : ys - top + pasted.shape[0], xs - left : xs - left + pasted.shape[1]] += pasted
    return np.array([left, top, right, bottom], np.float32), (total / len(parts)).astype(np.float32)
