"""Dock widget "Measure objects": per-object measurements into the layer's features, region summary.

The per-object table (:func:`.core.measure.measure_instances`, plus the region of each
object with a region layer) becomes the Labels layer's ``features``, so napari shows the
values of the object under the cursor; the per-region summary is shown in the widget.
Both can be exported as CSV. Sizes are calibrated by the Labels layer's scale (µm).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from magicgui.widgets import ComboBox, Label, PushButton
from napari.layers import Image, Labels
from napari.utils.notifications import show_error

from .dock import DockContainer
from .layer_inputs import InputImage, input_image
from .widget_tables import ResultTable, class_names_of, export_csv
from ..core.measure import COLOUR_NAMES, measure_objects


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
        self.measure_button = PushButton(text="Measure")
        self.status = Label(value="")
        self.summary = ResultTable(export_text="Export regions CSV…")
        self.export_objects_button = PushButton(text="Export objects CSV…", enabled=False)
        self.extend([self.objects, self.intensities, self.regions, self.measure_button, self.status,
                     self.summary, self.export_objects_button])
        images = self._image_layers()
        if images:  # start with an image; "regions" starts empty
            self.intensities.value = images[-1][1]
        self.measure_button.changed.connect(self.measure)
        self.export_objects_button.changed.connect(self.export_objects)
        self._objects_frame = pd.DataFrame()

    def measure(self) -> None:
        """Measure (Measure button): fill the layer's features and the region summary."""
        try:
            layer = self.objects.value
            if layer is None:
                raise ValueError("Add a Labels layer with the objects to measure first.")
            objects = input_image(layer, self._viewer)
            table, summary = self._measure(objects)
        except ValueError as err:
            show_error(str(err))
            self.status.value = "Failed; see the notification."
            return
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
        self.status.value = f"{len(self._objects_frame)} objects measured in '{objects.name}'{times}{regions}."

    def export_objects(self) -> None:
        """Save the per-object table of the last measurement as CSV."""
        export_csv(self._objects_frame, self.native, caption="Export objects CSV")

    def _measure(self, objects: InputImage) -> tuple[dict, dict]:
        """Per-object columns and per-region summary columns of ``objects``.

        Time-lapses (TYX, TZYX) are measured per time point; both tables then start with a
        ``t`` column.
        """
        if objects.output_axes not in ("YX", "ZYX", "TYX", "TZYX"):
            raise ValueError(
                f"'{objects.name}' has axes {objects.output_axes}: objects are measured in 2D images "
                "(YX), z-stacks (ZYX) and their time-lapses (TYX, TZYX).")
        labels = np.asarray(objects.data)
        spacing = objects.spacing if any(s != 1 for s in objects.spacing) else None
        image, channel_axis, channel_names = self._intensity_image()
        regions, class_names = None, None
        if self.regions.value is not None:
            regions = np.asarray(self.regions.value.data)
            class_names = class_names_of(self.regions.value)
            if regions.shape != labels.shape:
                raise ValueError(f"'{self.regions.value.name}' has shape {regions.shape} but "
                                 f"'{objects.name}' {labels.shape}: choose regions of the same image.")
        if not objects.output_axes.startswith("T"):
            return measure_objects(labels, image, spacing, regions, class_names, channel_axis, channel_names)
        tables, summaries = [], []
        for t in range(labels.shape[0]):
            table, summary = measure_objects(
                labels[t], None if image is None else image[t], spacing, None if regions is None else regions[t],
                class_names, None if channel_axis is None else channel_axis - 1, channel_names)
            tables.append({"t": np.full(len(table["label"]), t), **table})
            summaries.append({"t": np.full(len(next(iter(summary.values()))), t), **summary})
        return _concatenated(tables), _concatenated(summaries)

    def _intensity_image(self) -> tuple[np.ndarray | None, int | None, list[str] | None]:
        """(image, channel axis, channel names) of the intensities layer; Nones without one."""
        if self.intensities.value is None:
            return None, None, None
        source = input_image(self.intensities.value, self._viewer)
        if "C" not in source.axes:
            return np.asarray(source.data), None, None
        channel_axis = source.axes.index("C")
        count = source.data.shape[channel_axis]
        names = list(COLOUR_NAMES[:count]) if self.intensities.value.rgb else [f"ch{c}" for c in range(count)]
        return np.asarray(source.data), channel_axis, list(names)

    def _labels_layers(self, _widget=None) -> list[tuple[str, Labels]]:
        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Labels)]

    def _image_layers(self, _widget=None) -> list[tuple[str, Image]]:
        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Image)]


def _concatenated(tables: list[dict]) -> dict:
    """The columns of same-keyed tables (one per time point), one table after the other."""
    return {key: np.concatenate([np.asarray(table[key]) for table in tables]) for key in tables[0]}


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
