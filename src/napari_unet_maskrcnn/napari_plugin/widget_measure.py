"""Dock widget "Measure objects": per-object measurements into the layer's features, region summary.

The per-object table (:func:`.core.measure.measure_instances`, plus the region of each
object with a region layer) becomes the Labels layer's ``features``, so napari shows the
values of the object under the cursor; the per-region summary is shown in the widget.
Both can be exported as CSV. Sizes are calibrated by the Labels layer's scale (µm). Runs in a
worker (:mod:`.background_run`), time point by time point, with progress and Cancel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from magicgui.widgets import ComboBox, PushButton
from napari.layers import Image, Labels

from .. import api
from ..api.measurement import COLOUR_NAMES
from .background_run import BackgroundRun, Job
from .dock import DockContainer
from .layer_inputs import InputImage, input_image
from .widget_tables import ResultTable, class_names_of, export_csv


class MeasureWidget(DockContainer):
    """Measures the objects of a Labels layer, with intensities of an Image layer and regions.

    Inputs: "objects" (instance labels, YX or ZYX), optional "intensities" (an Image layer
    of the same size, any number of channels) and optional "regions" (a class map of the
    same shape, e.g. the U-Net widget's classes, whose ``features`` name the classes).
    """

    def __init__(self, napari_viewer):
        super().__init__()
        self._viewer = napari_viewer
        self.objects = ComboBox(label="objects", choices=self._labels_layers,
                                tooltip="Labels layer with one id per object (2D or a z-stack).")
        self.intensities = ComboBox(label="intensities", choices=self._image_layers, nullable=True,
                                    tooltip="Image whose intensities are measured in each object (optional).")
        self.regions = ComboBox(
            label="regions", choices=self._labels_layers, nullable=True,
            tooltip="Class map (e.g. U-Net classes): each object gets the class of most of its "
                    "pixels; cells are counted per class (optional).")
        self.runner = BackgroundRun(self._prepare, run_text="Measure", on_failure=self._clear_results)
        self.measure_button, self.cancel_button, self.status = (
            self.runner.run_button, self.runner.cancel_button, self.runner.status)
        self.summary = ResultTable(export_text="Export regions CSV…")
        self.export_objects_button = PushButton(text="Export objects CSV…", enabled=False)
        self.extend([self.objects, self.intensities, self.regions, self.runner, self.summary, self.export_objects_button])
        images = self._image_layers()
        if images:  # start with an image; "regions" starts empty
            self.intensities.value = images[-1][1]
        self.export_objects_button.changed.connect(self.export_objects)
        self._objects_frame = pd.DataFrame()

    def measure(self) -> None:
        """Measure in a worker (Measure button); then fill the layer's features and the region summary."""
        self.runner.run()

    def _prepare(self) -> Job:
        layer = self.objects.value
        if layer is None:
            raise ValueError("Add a Labels layer with the objects to measure first.")
        objects = input_image(layer, self._viewer)
        work = self._measurement(objects)
        return Job(work, lambda result: self._show(layer, objects, result.objects, result.summary),
                   title=f"Measure objects: {objects.name}", what="Measuring")

    def _show(self, layer: Labels, objects: InputImage, table: dict, summary: dict) -> str:
        """The tables into the layer's features and the widget (main thread); returns the status line."""
        if "t" in table:  # one row per object and time point: ids repeat, so no layer features
            self._objects_frame = pd.DataFrame(table)
            times = f" over {len(set(table['t']))} time points"
        else:
            features = _merged_features(pd.DataFrame(table), layer.features)
            layer.features = features
            self._objects_frame = features.drop(columns="index")
            times = ""
        self.export_objects_button.enabled = True
        regions = ""
        if "region_id" in summary:
            regions = f" in {len(set(k for k in summary['region_id'] if k is not None))} regions"
        self.summary.show_frame(pd.DataFrame(summary))
        return f"{len(self._objects_frame)} objects measured in '{objects.name}'{times}{regions}."

    def _clear_results(self) -> None:
        """A failed run: the previous tables no longer describe the chosen layers (layer features stay)."""
        self.summary.clear()
        self._objects_frame = pd.DataFrame()
        self.export_objects_button.enabled = False

    def export_objects(self) -> None:
        """Save the per-object table of the last measurement as CSV."""
        export_csv(self._objects_frame, self.native, caption="Export objects CSV")

    def _measurement(self, objects: InputImage):
        """The core's progress generator measuring ``objects`` (time-lapses per time point)."""
        if objects.output_axes not in ("YX", "ZYX", "TYX", "TZYX"):
            raise ValueError(
                f"'{objects.name}' has axes {objects.output_axes}: objects are measured in 2D images "
                "(YX), z-stacks (ZYX) and their time-lapses (TYX, TZYX).")
        spacing = objects.spacing if any(s != 1 for s in objects.spacing) else None
        image, channel_axis, channel_names = self._intensity_image()
        regions, class_names = None, None
        if self.regions.value is not None:
            regions = self.regions.value.data
            class_names = class_names_of(self.regions.value)
            if regions.shape != objects.data.shape:
                raise ValueError(f"'{self.regions.value.name}' has shape {regions.shape} but "
                                 f"'{objects.name}' {objects.data.shape}: choose regions of the same image.")
        return api.iter_measure(
            objects.data, time_lapse=objects.output_axes.startswith("T"), image=image, spacing=spacing,
            regions=regions, class_names=class_names, channel_axis=channel_axis, channel_names=channel_names)

    def _intensity_image(self) -> tuple[np.ndarray | None, int | None, list[str] | None]:
        """(image, channel axis, channel names) of the intensities layer; Nones without one."""
        if self.intensities.value is None:
            return None, None, None
        source = input_image(self.intensities.value, self._viewer)
        if "C" not in source.axes:
            return source.data, None, None
        channel_axis = source.axes.index("C")
        count = source.data.shape[channel_axis]
        names = list(COLOUR_NAMES[:count]) if self.intensities.value.rgb else [f"ch{c}" for c in range(count)]
        return source.data, channel_axis, list(names)

    def _labels_layers(self, _widget=None) -> list[tuple[str, Labels]]:
        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Labels)]

    def _image_layers(self, _widget=None) -> list[tuple[str, Image]]:
        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Image)]


def _merged_features(table: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    """The new measurements, plus the old features' other columns (e.g. class, score) by label.

    Returns a frame with an ``index`` column (= label) first, as napari maps features to label values.
    """
    old_labels = old["index"] if "index" in old else old.get("label")
    kept = [c for c in old.columns if c not in table.columns and c != "index"]
    if kept and old_labels is not None:
        extra = old[kept].assign(label=np.asarray(old_labels)).drop_duplicates("label")
        table = table.merge(extra, on="label", how="left")
    table.insert(0, "index", table["label"])
    return table
