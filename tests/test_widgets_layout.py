"""The five docks as a user meets them at 1366 x 768: named fields, nothing clipped, readable tabs,
failures reported once and without stale results (issue 20)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np
import pytest
from magicgui.widgets.bases import ButtonWidget
from qtpy.QtCore import QPoint
from qtpy.QtWidgets import QLabel, QPushButton, QScrollArea, QTabBar

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = "napari-unet-maskrcnn"
WIDGETS = ("U-Net segmentation", "Mask R-CNN instances", "Evaluate segmentation", "Measure objects",
           "Train model")


def launch_script():
    spec = importlib.util.spec_from_file_location("launch_napari", ROOT / "scripts" / "launch_napari.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def show_dock(dock_widget, qtbot) -> QScrollArea:
    """Bring a (possibly tabbed) dock to the front and let Qt lay it out; returns its scroll area."""
    dock_widget.raise_()
    qtbot.wait(30)
    area = dock_widget.widget()
    assert isinstance(area, QScrollArea)
    return area


def assert_fits_its_width(area: QScrollArea, name: str) -> int:
    """No sideways scrolling, no button narrower than its text, no text past the right edge.

    Returns the number of buttons checked.
    """
    viewport = area.viewport()
    body = area.widget()
    assert body.minimumSizeHint().width() <= viewport.width(), (name, body.minimumSizeHint(), viewport.width())
    assert not area.horizontalScrollBar().isVisible(), name
    buttons = [b for b in body.findChildren(QPushButton) if b.isVisible() and b.text()]
    for button in buttons:
        assert button.width() >= button.sizeHint().width(), (name, button.text(), button.width())
        right = button.mapTo(viewport, QPoint(button.width(), 0)).x()
        assert right <= viewport.width(), (name, button.text(), right, viewport.width())
    for label in body.findChildren(QLabel):
        if label.isVisible() and label.text():
            right = label.mapTo(viewport, QPoint(label.width(), 0)).x()
            assert right <= viewport.width(), (name, label.text()[:40], right, viewport.width())
    return len(buttons)


def field_names(widget) -> dict[str, bool]:
    """Every shown field of a dock (not buttons or check boxes, which carry their own text):
    its name, and whether that name is shown beside it."""
    names = {}
    for field in widget:
        if isinstance(field, ButtonWidget) or not field.visible or not field.label:
            continue
        labeled = field._labeled_widget()
        shown = labeled is not None and labeled._label_widget.native.isVisible()
        names[field.label] = shown and labeled._label_widget.value == field.label
    return names


@pytest.mark.parametrize("with_labels_layer", [False, True])
def test_every_field_of_every_dock_shows_its_name(viewer, qtbot, with_labels_layer):
    """The launch script's state (an image, no Labels layer yet) and with a Labels layer: the
    Train dock's `labels` chooser once hid every name (it shadowed magicgui's `labels` switch)."""
    viewer.open_sample(PLUGIN, "nuclei-2d")
    if with_labels_layer:
        viewer.add_labels(np.zeros((256, 320), np.uint16), name="nuclei labels")
    widgets = {name: viewer.window.add_plugin_dock_widget(PLUGIN, name)[1] for name in WIDGETS}
    qtbot.wait(30)

    for name, widget in widgets.items():
        names = field_names(widget)
        assert names, name
        assert all(names.values()), (name, names)
    train = field_names(widgets["Train model"])
    assert {"image", "labels", "task", "start from", "time budget (min)", "max epochs", "validation fraction",
            "crop size (px)", "model name"} <= set(train)


def test_the_launch_script_shows_all_five_docks_whole_at_1366x768(viewer, qtbot):
    """Tabbed as scripts/launch_napari.py docks them: readable tab titles, U-Net in front, and
    every dock's controls inside its width."""
    launch = launch_script()
    viewer.open_sample(PLUGIN, "nuclei-2d")
    docks = launch.dock_all(viewer)
    viewer.window._qt_window.resize(1366, 768)
    qtbot.wait(100)

    (bar,) = [bar for bar in viewer.window._qt_window.findChildren(QTabBar)
              if bar.count() == len(WIDGETS) and bar.isVisible()]
    titles = [bar.tabText(i) for i in range(bar.count())]
    assert titles == [launch.TAB_TITLES[name] for name in WIDGETS]
    assert bar.currentIndex() == 0  # "the first (U-Net segmentation) is shown"
    for i, title in enumerate(titles):  # whole titles, not "Me…"
        assert bar.tabRect(i).width() >= bar.fontMetrics().horizontalAdvance(title), title
    assert bar.tabRect(bar.count() - 1).right() <= bar.width()  # all five in sight, no scrolling

    checked = sum(assert_fits_its_width(show_dock(dock, qtbot), name) for dock, name in zip(docks, WIDGETS))
    assert checked >= 12  # Run and Cancel of each dock, Load model file…, Add pair...


def test_docks_opened_from_the_plugins_menu_fit_their_width_at_1366x768(viewer, qtbot):
    """Docked one under another (the Plugins menu's way): each scrolls down, none sideways."""
    viewer.open_sample(PLUGIN, "nuclei-2d")
    docks = [viewer.window.add_plugin_dock_widget(PLUGIN, name)[0] for name in WIDGETS]
    viewer.window._qt_window.resize(1366, 768)
    qtbot.wait(100)
    for dock, name in zip(docks, WIDGETS):
        assert_fits_its_width(show_dock(dock, qtbot), name)


def test_a_run_with_a_long_status_and_a_legend_still_fits(viewer, dock, load_model, run_widget, tiny_models,
                                                          qtbot):
    """After a U-Net run the status line (result + object size) and the class legend wrap in the dock."""
    viewer.add_image(np.random.default_rng(0).random((64, 64), np.float32), name="an image with a long name")
    widget = dock("U-Net segmentation")
    load_model(widget, tiny_models["unet"])
    viewer.window._qt_window.resize(1366, 768)

    run_widget(widget)
    qtbot.wait(50)

    assert widget.legend.value and "\n" in widget.status.value
    assert_fits_its_width(widget.native, "U-Net segmentation")


def test_a_failed_evaluate_clears_the_previous_table(viewer, dock, run_widget, new_notifications):
    truth = np.zeros((40, 40), np.uint16)
    truth[2:10, 2:10], truth[20:30, 20:30] = 1, 2
    viewer.add_labels(truth, name="cells")
    viewer.add_labels(truth.copy(), name="cells corrected")
    widget = dock("Evaluate segmentation")
    run_widget(widget)
    assert not widget.scores.frame.empty and widget.scores.table.native.rowCount() > 0
    assert widget.scores.export_button.enabled

    widget.ground_truth.value = viewer.add_labels(np.zeros((20, 20), np.uint16), name="another image")
    run_widget(widget)

    assert widget.status.value.startswith("Failed")
    assert widget.scores.frame.empty and widget.scores.table.native.rowCount() == 0
    assert not widget.scores.export_button.enabled
    assert any("same image" in message for message in new_notifications())


def test_a_failed_measure_clears_the_previous_tables(viewer, dock, run_widget):
    objects = np.zeros((40, 40), np.uint16)
    objects[2:10, 2:10], objects[20:30, 20:30] = 1, 2
    viewer.add_labels(objects, name="nuclei")
    widget = dock("Measure objects")
    widget.objects.value = viewer.layers["nuclei"]
    run_widget(widget)
    assert not widget.summary.frame.empty and widget.export_objects_button.enabled

    widget.regions.value = viewer.add_labels(np.zeros((20, 20), np.uint8), name="regions of another image")
    run_widget(widget)

    assert widget.status.value.startswith("Failed")
    assert widget.summary.frame.empty and widget.summary.table.native.rowCount() == 0
    assert not widget.export_objects_button.enabled


def test_a_failing_run_is_one_notification_and_one_log_line_not_a_traceback(
    viewer, dock, load_model, run_widget, tiny_models, new_notifications, monkeypatch, caplog, capfd
):
    from napari_unet_maskrcnn import api

    def failing(*args, **kwargs):
        yield from ()
        raise RuntimeError("the disk is full")

    viewer.add_image(np.random.default_rng(1).random((64, 64), np.float32), name="image")
    widget = dock("U-Net segmentation")
    load_model(widget, tiny_models["unet"])
    widget.legend.value = "a legend of an earlier run"
    monkeypatch.setattr(api, "iter_segment_semantic", failing)
    capfd.readouterr()

    with caplog.at_level(logging.INFO, logger="napari_unet_maskrcnn"):
        run_widget(widget)

    (message,) = new_notifications()
    assert "the disk is full" in message and message.startswith("Segmentation failed")
    records = [r for r in caplog.records if r.name.startswith("napari_unet_maskrcnn")]
    assert [(r.levelno, r.getMessage()) for r in records] == [(logging.ERROR, message)]
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    assert widget.status.value.startswith("Failed") and widget.run_button.enabled
    assert widget.legend.value == ""


def test_a_wrapped_status_line_is_never_cut(viewer, qtbot):
    """A status line whose text wraps gets the height it needs at the dock's width, in the docking
    of scripts/screenshot.py (magicgui's labels are fixed-height: its three-line status line of the
    Mask R-CNN dock once showed two and a half lines), and shrinks back with a shorter text."""
    from qtpy.QtCore import Qt

    viewer.open_sample(PLUGIN, "nuclei-2d")
    add = viewer.window.add_plugin_dock_widget
    add(PLUGIN, "U-Net segmentation")
    instances_dock, instances = add(PLUGIN, "Mask R-CNN instances", tabify=True)
    add(PLUGIN, "Train model", tabify=True)
    measure_dock, _ = add(PLUGIN, "Measure objects")
    add(PLUGIN, "Evaluate segmentation", tabify=True)
    instances.status.value = ("39 objects in 'nuclei 2D'.\nObject diameter 24.0 px (estimated), "
                              "model trained on 19.5 px, native scale.")
    instances_dock.raise_()
    measure_dock.raise_()
    window = viewer.window._qt_window
    window.resize(1700, 1000)
    window.resizeDocks([instances_dock, measure_dock], [620, 620], Qt.Orientation.Horizontal)
    window.resizeDocks([instances_dock, measure_dock], [540, 400], Qt.Orientation.Vertical)
    qtbot.wait(200)

    label = instances.status.native
    assert label.heightForWidth(label.width()) > 2 * label.fontMetrics().lineSpacing()  # three lines or more
    assert label.height() >= label.heightForWidth(label.width())
    instances.status.value = "done"
    qtbot.wait(100)
    assert label.minimumHeight() < 2 * label.fontMetrics().lineSpacing()
