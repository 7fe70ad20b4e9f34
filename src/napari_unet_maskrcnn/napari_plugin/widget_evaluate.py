"""Dock widget "Evaluate segmentation": a prediction scored against ground truth, with review layers.

Objects (instance labels): AP, precision, recall, F1, panoptic quality and TP / FP / FN at
IoU 0.50..0.90 and their mean (StarDist's matching, ``api.iter_evaluate``), plus three
Labels layers at the review IoU, each in one fixed colour: "<prediction> matched" (green),
"<prediction> false positives" (magenta) and "<ground truth> missed" (yellow). Class maps:
per-class IoU and Dice. Runs in a worker (:mod:`.background_run`), plane by plane or volume by
volume, with progress and Cancel.
"""

from __future__ import annotations

import pandas as pd
from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox
from napari.layers import Labels
from napari.utils.colormaps import DirectLabelColormap

from .. import api
from .background_run import BackgroundRun, Job
from .dock import DockContainer
from .layer_inputs import InputImage, input_image, layer_axes
from .layer_outputs import MARKER, show_output
from .widget_tables import ResultTable, class_names_of

REVIEW_COLOURS = {"matched": "lime", "false positives": "magenta", "missed": "yellow"}
"""Colour of every object in each review layer."""


class EvaluateWidget(DockContainer):
    """Scores of a predicted Labels layer against a ground-truth Labels layer of the same shape.

    Stacks: with "3D objects" (default for z-stacks) a ZYX layer is matched as one volume
    (ids linked across z); without, plane by plane with counts summed. Time points are
    always matched separately, their counts summed. Class maps (checked automatically
    when both layers hold classes, by the U-Net widget's mark or by their content, see
    :func:`~..api.guess_kind`) give per-class IoU and Dice instead.
    """

    def __init__(self, napari_viewer):
        super().__init__()
        self._viewer = napari_viewer
        self.prediction = ComboBox(label="prediction", choices=self._labels_layers,
                                   tooltip="The segmentation to score.")
        self.ground_truth = ComboBox(label="ground truth", choices=self._labels_layers,
                                     tooltip="The reference, e.g. your corrected copy of the prediction.")
        self.class_maps = CheckBox(
            text="class maps (per-class IoU, Dice)", value=False,
            tooltip="Both layers hold classes (e.g. U-Net output), not one id per object.")
        self.ignore_zero = CheckBox(
            text="ignore 0 (unlabelled) in the ground truth", value=False, visible=False,
            tooltip="Pixels of value 0 in the ground truth are left out (sparse annotation).")
        self.objects_3d = CheckBox(
            text="3D objects (ids linked across z)", value=True, visible=False,
            tooltip="Match whole 3D objects; unchecked: match each z-plane separately, counts summed.")
        self.review_iou = FloatSpinBox(
            label="review IoU", value=0.5, min=0.05, max=1.0, step=0.05,
            tooltip="Objects overlapping at least this much are matched in the review layers.")
        self.runner = BackgroundRun(self._prepare, run_text="Evaluate", on_failure=self._clear_results)
        self.evaluate_button, self.cancel_button, self.status = (
            self.runner.run_button, self.runner.cancel_button, self.runner.status)
        self.scores = ResultTable()
        self.extend([self.prediction, self.ground_truth, self.class_maps, self.ignore_zero,
                     self.objects_3d, self.review_iou, self.runner, self.scores])
        self.prediction.changed.connect(self._on_layers_changed)
        self.ground_truth.changed.connect(self._on_layers_changed)
        self.class_maps.changed.connect(self._on_mode_changed)
        self._prefer_another_ground_truth()
        self._on_layers_changed()

    def evaluate(self) -> None:
        """Score the prediction in a worker (Evaluate button); then show the table and review layers."""
        self.runner.run()

    def _prepare(self) -> Job:
        prediction, truth = self._sources()
        title = f"Evaluate segmentation: {prediction.name}"
        if self.class_maps.value:
            names = class_names_of(self.prediction.value) or class_names_of(self.ground_truth.value)
            ignore = 0 if self.ignore_zero.value else None
            work = api.iter_evaluate(truth.data, prediction.data, kind="classes", class_names=names,
                                     ignore_label=ignore)
            return Job(work, lambda result: self._show_classes(result.table), title, what="Evaluation")
        review_iou = self.review_iou.value
        work = api.iter_evaluate(truth.data, prediction.data, kind="instances", axes=prediction.output_axes,
                                 objects_3d=self.objects_3d.value, review_iou=review_iou)
        return Job(work, lambda result: self._show_instances(prediction, truth, review_iou, result),
                   title, what="Evaluation")

    def _sources(self) -> tuple[InputImage, InputImage]:
        if self.prediction.value is None or self.ground_truth.value is None:
            raise ValueError("Add two Labels layers first: a prediction and its ground truth "
                             "(e.g. a corrected copy: Layer > Duplicate Layer, then paint).")
        if self.prediction.value is self.ground_truth.value:
            raise ValueError(f"'{self.prediction.value.name}' is chosen as both the prediction and the ground "
                             "truth: choose another layer for one of them.")
        prediction = input_image(self.prediction.value, self._viewer)
        truth = input_image(self.ground_truth.value, self._viewer)
        if prediction.data.shape != truth.data.shape:
            raise ValueError(
                f"'{prediction.name}' has shape {prediction.data.shape} but '{truth.name}' has "
                f"{truth.data.shape}: choose a ground truth of the same image.")
        return prediction, truth

    def _clear_results(self) -> None:
        """A failed run: the previous scores no longer describe the chosen layers."""
        self.scores.clear()

    def _show_instances(self, prediction: InputImage, truth: InputImage, review_iou: float,
                        result: api.Evaluation) -> str:
        """Scores into the table, review layers into the viewer (main thread); returns the status line."""
        evaluation = result.scores
        for data, source, kind in zip(result.review, (prediction, prediction, truth),
                                      ("matched", "false positives", "missed")):
            colormap = DirectLabelColormap(color_dict={None: REVIEW_COLOURS[kind], 0: "transparent"})
            show_output(self._viewer, "labels", data, source, kind, colormap=colormap)
        self.scores.show_frame(pd.DataFrame(result.table))
        first = evaluation["thresholds"][0]
        units = f"{evaluation['units']} {evaluation['unit']}{'s' if evaluation['units'] > 1 else ''}"
        return (f"{units}: AP {first['accuracy']:.3f} at IoU {first['thresh']:.2f}. "
                f"Review layers at IoU {review_iou:.2f}.")

    def _show_classes(self, table: dict) -> str:
        self.scores.show_frame(pd.DataFrame(table))
        return f"Mean IoU {table['IoU'][-1]:.3f} over {len(table['IoU']) - 1} classes."

    def _labels_layers(self, _widget=None) -> list[tuple[str, Labels]]:
        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Labels)]

    def _prefer_another_ground_truth(self) -> None:
        """Start with two different layers: the newest other one is most likely the corrected copy."""
        others = [layer for _, layer in self._labels_layers() if layer is not self.prediction.value]
        if others:
            self.ground_truth.value = others[-1]

    def _on_layers_changed(self, _value=None) -> None:
        """Class maps when both layers hold classes; "3D objects" only for layers with a Z axis."""
        kinds = [_label_kind(layer) for layer in (self.prediction.value, self.ground_truth.value)]
        self.class_maps.value = "classes" in kinds and "instances" not in kinds
        prediction = self.prediction.value
        self.objects_3d.visible = prediction is not None and "Z" in _axes(prediction, self._viewer)
        self._on_mode_changed()

    def _on_mode_changed(self, _value=None) -> None:
        self.ignore_zero.visible = self.class_maps.value
        self.review_iou.visible = not self.class_maps.value


def _label_kind(layer) -> str | None:
    """``"classes"``, ``"instances"`` or None: the plugin's mark on its outputs, else the content."""
    if layer is None:
        return None
    mark = layer.metadata.get(MARKER)
    if isinstance(mark, dict) and mark.get("output") in ("classes", "instances", "U-Net instances"):
        return "classes" if mark["output"] == "classes" else "instances"
    data = layer.data[0] if layer.multiscale else layer.data
    return api.guess_kind(data)


def _axes(layer: Labels, viewer) -> str:
    try:
        return layer_axes(layer, viewer)
    except ValueError:  # more than 4 dimensions and no declared axes: reported on Evaluate
        return ""
