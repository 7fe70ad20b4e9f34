"""One declaration per setting (core/settings.py): the API's signatures, the command line's flags and the
docks' fields take the same names, defaults and meanings from it (issue 20, part 2); and the public API
covers training, evaluation and measurement (part 3)."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

from napari_unet_maskrcnn import api
from napari_unet_maskrcnn.cli.main import build_parser
from napari_unet_maskrcnn.core.settings import (
    INSTANCES,
    MASKRCNN_SCRATCH,
    SEGMENT_SETTINGS,
    SEMANTIC,
    TRAIN_SETTINGS,
    UNET_SCRATCH,
    segment_default,
)


def subparser(name: str):
    parser = build_parser()
    (commands,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return commands.choices[name]


def parser_defaults(name: str) -> dict:
    """Each destination's default as argparse applies it: the first action's (aliases come after)."""
    defaults = {}
    for action in subparser(name)._actions:
        defaults.setdefault(action.dest, action.default)
    return defaults


def test_the_declarations_themselves_are_sound():
    for setting in [*SEGMENT_SETTINGS.values(), *TRAIN_SETTINGS.values()]:
        assert setting.help, setting.name
        if setting.default is not None and setting.kind in (int, float):
            assert setting.check(setting.default) == setting.default, setting.name  # in its own range
        if setting.fallback is not None:
            assert setting.check(setting.fallback) == setting.fallback, setting.name


@pytest.mark.parametrize("task, function, names", [
    ("semantic", api.iter_segment_semantic, SEMANTIC), ("instances", api.iter_segment_instances, INSTANCES)])
def test_segmentation_api_defaults_are_the_declared_ones(task, function, names):
    parameters = inspect.signature(function).parameters
    for name in names:
        assert parameters[name].default == segment_default(name, task), (task, name)
    assert parameters["precision"].default == "auto"  # Mask R-CNN: the mask head only (core.blockwise.NetworkRun)


def test_segment_flags_are_made_from_the_declarations():
    defaults = parser_defaults("segment")
    flags = {action.dest: action.option_strings for action in subparser("segment")._actions}
    for name in set(SEMANTIC) | set(INSTANCES):
        setting = SEGMENT_SETTINGS[name]
        assert setting.cli_flag in flags[name], name
        assert defaults[name] == setting.default, name
    assert flags["return_probabilities"] == ["--return-probabilities", "--probabilities"]  # old spelling kept


def test_train_api_and_flags_take_the_declared_defaults():
    parameters = inspect.signature(api.train).parameters
    defaults = parser_defaults("train")
    for name, setting in TRAIN_SETTINGS.items():
        if name == "annotation_margin":  # the dock's annotated regions; the CLI and the API take pairs
            continue
        assert parameters[name].default == setting.default, name
        if name != "arch":  # required on the command line
            assert defaults[name] == setting.default, name
    # one from-scratch size everywhere: the API, the command line, the core's builders
    from napari_unet_maskrcnn.core.training import builders

    assert (parameters["base_width"].default, parameters["fpn_channels"].default) == (16, 128)
    assert inspect.signature(builders.train_unet).parameters["base_width"].default == UNET_SCRATCH["base_width"]
    assert inspect.signature(builders.train_maskrcnn).parameters["fpn_channels"].default == \
        MASKRCNN_SCRATCH["fpn_channels"]
    from napari_unet_maskrcnn.core.training import TrainConfig

    config = TrainConfig()
    for name in ("val_fraction", "seed", "crop", "checkpoint_every", "device"):
        assert getattr(config, name) == TRAIN_SETTINGS[name].default, name


def test_deprecated_train_spellings_still_parse():
    parse = build_parser().parse_args
    base = ["train", "--arch", "unet", "--images", "i", "--labels", "l", "--output", "m.safetensors"]
    args = parse([*base, "--width", "8", "--no-augment", "--bf16"])
    assert (args.base_width, args.augment, args.precision) == (8, "none", "bf16")
    args = parse([*base, "--no-bf16"])
    assert args.precision == "fp32"
    args = parse(base)
    assert (args.base_width, args.augment, args.precision, args.val_fraction) == (16, "standard", "auto", 0.2)


def test_diameter_none_is_automatic_and_0_is_off_in_the_api_and_on_the_command_line(tiny_models):
    parse = build_parser().parse_args
    base = ["segment", "in.tif", "--model", "m", "--output", "out"]
    assert parse(base).diameter is None
    assert parse([*base, "--diameter", "0"]).diameter == 0.0
    image = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    automatic = api.segment_semantic(image, tiny_models["unet"], tile=64, diameter=None)
    off = api.segment_semantic(image, tiny_models["unet"], tile=64, diameter=0)
    assert automatic.object_size["mode"] == "auto"
    assert off.object_size["mode"] == "off" and off.object_size["scale"] == 1.0


def test_widget_fields_start_at_the_declared_defaults(viewer, dock, monkeypatch):
    from napari_unet_maskrcnn.napari_plugin import widget_segmentation_base

    def no_spec(model):
        raise ValueError("no model defaults in this test")

    monkeypatch.setattr(widget_segmentation_base.api, "get_model_spec", no_spec)  # fields as declared, not
    viewer.add_image(np.zeros((64, 64), np.float32), name="img")                  # filled by a model's defaults
    for display, names in (("U-Net segmentation", ("return_probabilities", "split_instances", "tta")),
                           ("Mask R-CNN instances", ("score_threshold", "mask_threshold", "nms_iou", "min_size",
                                                     "z_link_iou", "tta"))):
        widget = dock(display)
        for name in names:
            setting = SEGMENT_SETTINGS[name]
            field = widget._options[name]
            assert field.value == setting.shown_default, (display, name)
            assert (field.label if setting.kind is not bool else field.text) == setting.widget_label
        assert widget._options["tile"].value is None and widget.diameter.value is None  # automatic, as None
        assert widget.diameter.label == SEGMENT_SETTINGS["diameter"].widget_label
    train = dock("Train model")
    fields = {"annotation_margin": train.margin, "minutes": train.minutes, "epochs": train.epochs,
              "val_fraction": train.val_fraction, "crop": train.crop}
    for name, field in fields.items():
        setting = TRAIN_SETTINGS[name]
        assert field.value == setting.shown_default, name
        assert field.label == setting.widget_label, name
        if setting.kind in (int, float) and name != "epochs":  # the dock's epochs 0 = until the budget
            assert (field.min, field.max) == (setting.low, setting.high), name
    assert train.device.value == TRAIN_SETTINGS["device"].default


def discs(size: int = 96, seed: int = 0):
    from skimage.draw import disk

    rng = np.random.default_rng(seed)
    labels = np.zeros((size, size), np.uint16)
    for index, centre in enumerate([(20, 20), (20, 70), (70, 30), (65, 75)], 1):
        labels[disk(centre, 9, shape=labels.shape)] = index
    image = (labels > 0) * 200.0 + rng.normal(20, 5, labels.shape)
    return image.astype(np.float32), labels


def test_api_train_writes_a_model_and_reports_its_warnings(tmp_path):
    pairs = [discs(seed=0)]
    events = []
    result = api.train(pairs, tmp_path / "tiny.safetensors", arch="unet", epochs=1, crop=64, batch_size=2,
                       depth=2, base_width=4, on_progress=events.append)
    assert result.path is not None and result.path.is_file()
    assert api.get_model_spec(result.path).task == "semantic"
    warned = [event.message for event in events if event.stage == "warning"]
    assert any("No validation" in message for message in warned)  # one image: none to hold out
    assert result.warnings == warned
    with pytest.warns(api.training.TrainingWarning, match="No validation"):  # no on_progress: a Python warning
        api.train(pairs, None, arch="unet", epochs=1, crop=64, batch_size=2, depth=2, base_width=4)
    with pytest.raises(ValueError, match="val_fraction"):
        api.train(pairs, None, arch="unet", val_fraction=1.5)
    from napari_unet_maskrcnn.core.output_paths import OutputClash

    with pytest.raises(OutputClash):  # never replaces a file unless told to
        api.train(pairs, result.path, arch="unet", epochs=1, crop=64, depth=2, base_width=4)


def test_api_train_stopped_before_its_first_step_writes_nothing(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = api.train([discs()], tmp_path / "none.safetensors", arch="unet", epochs=1, crop=64, depth=2,
                           base_width=4, should_stop=lambda: True)
    assert result.path is None and not (tmp_path / "none.safetensors").exists()


def test_api_evaluate_and_measure_on_tiny_labels():
    _, truth = discs()
    prediction = truth.copy()
    prediction[prediction == 4] = 0  # one object missed
    result = api.evaluate(truth, prediction)
    assert result.kind == "instances"
    first = result.scores["thresholds"][0]
    assert (first["tp"], first["fp"], first["fn"]) == (3, 0, 1)
    assert result.table and result.review is None
    reviewed = api.evaluate(truth, prediction, review_iou=0.5)
    assert set(np.unique(reviewed.review[2])) == {0, 4}  # the missed object
    classes = api.evaluate((truth > 0).astype(np.uint8), (prediction > 0).astype(np.uint8), kind="classes",
                           class_names=["background", "object"])
    assert classes.kind == "classes" and classes.table["name"][:2] == ["background", "object"]
    pairs = api.evaluate_pairs([(truth, prediction), (truth, truth)])
    assert pairs["images"] == 2 and pairs["thresholds"][0]["fn"] == 1

    image = discs()[0]
    measured = api.measure(truth, image)
    assert list(measured.objects["label"]) == [1, 2, 3, 4]
    events = []
    over_time = api.measure(np.stack([truth, prediction]), time_lapse=True, on_progress=events.append)
    assert len(events) == 2 and list(over_time.objects["t"]) == [0, 0, 0, 0, 1, 1, 1]
    assert api.measure_objects(truth).summary == api.measure(truth).summary


def test_the_command_line_prints_the_training_warnings(tmp_path, capsys):
    import tifffile

    from napari_unet_maskrcnn.cli.main import main

    image, labels = discs()
    (tmp_path / "imgs").mkdir()
    (tmp_path / "labels").mkdir()
    tifffile.imwrite(tmp_path / "imgs" / "a.tif", image)
    tifffile.imwrite(tmp_path / "labels" / "a.tif", labels)
    code = main(["train", "--arch", "unet", "--images", str(tmp_path / "imgs"), "--labels", str(tmp_path / "labels"),
                 "--output", str(tmp_path / "m.safetensors"), "--epochs", "1", "--crop", "64", "--depth", "2",
                 "--base-width", "4", "--quiet"])
    assert code == 0
    assert "warning: No validation" in capsys.readouterr().err  # as the dock shows it, as api.train raises it
