"""Training: targets, augmentation alignment, split, learning, stop/interrupt, resume, the CLI."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from napari_unet_maskrcnn import cli
from napari_unet_maskrcnn.core.inputs import prepare_plane
from napari_unet_maskrcnn.core.model_file import load_model_file, read_spec
from napari_unet_maskrcnn.core.testing import TINY_CONFIGS
from napari_unet_maskrcnn.core.training import (
    AugmentSettings,
    TrainConfig,
    TrainingPair,
    load_pairs,
    train_maskrcnn,
    train_unet,
)
from napari_unet_maskrcnn.core.object_size import median_diameter
from napari_unet_maskrcnn.core.training import loop
from napari_unet_maskrcnn.core.training.augment import NO_AUGMENTATION, random_sample
from napari_unet_maskrcnn.core.training.checkpoint import load_checkpoint
from napari_unet_maskrcnn.core.training.data import (
    IGNORE_INDEX,
    PAD_LABEL,
    instance_targets,
    instances_to_classes,
    semantic_targets,
    split_pairs,
)
from napari_unet_maskrcnn.core.training.tasks import masked_cross_entropy

TINY_UNET = dict(depth=2, base_width=8)
FAST = dict(crop=64, batch_size=4, amp=False)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def discs(seed: int, size: int = 64, count: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Bright discs (radius 6-9) on a noisy background: float32 image and int32 instance labels."""
    rng = np.random.default_rng(seed)
    image = rng.normal(100, 10, (size, size))
    labels = np.zeros((size, size), np.int32)
    yy, xx = np.mgrid[:size, :size]
    for label in range(1, count + 1):
        cy, cx = rng.integers(10, size - 10, 2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= rng.integers(6, 10) ** 2
        image[disc] += 100
        labels[disc] = label
    return image.astype(np.float32), labels


def disc_pairs(count: int, size: int = 64) -> list[TrainingPair]:
    return [TrainingPair(*discs(seed, size), f"im{seed}") for seed in range(count)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Images as 16-bit TIFF, 8-bit grey PNG, RGB PNG and opaque RGBA PNG; labels as TIFF."""
    root = tmp_path_factory.mktemp("data")
    images, labels = root / "images", root / "labels"
    images.mkdir()
    labels.mkdir()
    for seed in range(5):
        image, label = discs(seed, 80)
        grey = np.clip(image, 0, 255).astype(np.uint8)
        if seed in (0, 4):
            tifffile.imwrite(images / f"s{seed}.tif", (image * 20).astype(np.uint16))
        elif seed == 1:
            Image.fromarray(grey).save(images / "s1.png")
        elif seed == 2:
            Image.fromarray(np.dstack([grey, grey // 2, grey])).save(images / "s2.png")
        else:
            Image.fromarray(np.dstack([grey, grey, grey, np.full_like(grey, 255)])).save(images / "s3.png")
        tifffile.imwrite(labels / f"s{seed}.tif", label.astype(np.uint16))
    return images, labels


# -- targets ------------------------------------------------------------------------------------


def test_instances_become_background_object_boundary_classes():
    instances = np.array([
        [0, 0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 2, 2, 0],
        [0, 1, 1, 1, 2, 2, 0],
        [0, 1, 1, 1, 2, 2, 0],
        [0, 0, 0, 0, 0, 0, 0],
    ])
    expected = np.array([
        [0, 0, 0, 0, 0, 0, 0],
        [0, 2, 2, 2, 2, 2, 0],
        [0, 2, 1, 2, 2, 2, 0],
        [0, 2, 2, 2, 2, 2, 0],
        [0, 0, 0, 0, 0, 0, 0],
    ])
    np.testing.assert_array_equal(instances_to_classes(instances), expected)
    padded = np.where(np.arange(7) < 6, instances, PAD_LABEL)
    targets = semantic_targets(padded, "instances")
    assert np.all(targets[:, 6] == IGNORE_INDEX) and targets[2, 2] == 1


def test_class_maps_shift_classes_and_ignore_unlabelled_and_padding():
    labels = np.array([[0, 1, 2], [3, PAD_LABEL, 0]])
    np.testing.assert_array_equal(
        semantic_targets(labels, "classes"), [[IGNORE_INDEX, 0, 1], [2, IGNORE_INDEX, IGNORE_INDEX]]
    )
    np.testing.assert_array_equal(  # painted: the value is the output class; 0 is never a target
        semantic_targets(labels, "painted"), [[IGNORE_INDEX, 1, 2], [3, IGNORE_INDEX, IGNORE_INDEX]]
    )


def test_loss_ignores_unlabelled_pixels():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    targets = torch.randint(0, 3, (2, 8, 8))
    sparse = targets.clone()
    sparse[:, :, 4:] = IGNORE_INDEX
    loss = masked_cross_entropy(logits, sparse)
    labelled = torch.nn.functional.cross_entropy(logits[..., :4], targets[..., :4])
    assert torch.isclose(loss, labelled)
    loss.backward()
    assert torch.all(logits.grad[..., 4:] == 0) and torch.any(logits.grad[..., :4] != 0)
    changed = logits.detach().clone()
    changed[..., 4:] += 100.0
    assert torch.isclose(masked_cross_entropy(changed, sparse), labelled)
    all_ignored = torch.full_like(targets, IGNORE_INDEX)
    assert masked_cross_entropy(logits, all_ignored).item() == 0.0
    weights = torch.tensor([1.0, 1.0, 5.0])
    weighted = torch.nn.functional.cross_entropy(logits[..., :4], targets[..., :4], weight=weights)
    assert torch.isclose(masked_cross_entropy(logits, sparse, weights), weighted)
    assert masked_cross_entropy(logits, all_ignored, weights).item() == 0.0


def test_mask_rcnn_targets_use_pixel_edges_and_drop_slivers():
    crop = np.zeros((20, 30), np.int64)
    crop[2:7, 3:10] = 7       # 5 x 7 object
    crop[10:20, 28:30] = 9    # cut to 2 px wide by the crop edge: dropped
    crop[0:1, 15:25] = PAD_LABEL
    targets = instance_targets(crop)
    np.testing.assert_array_equal(targets["boxes"], [[3, 2, 10, 7]])
    assert targets["labels"].tolist() == [1] and targets["masks"].dtype == np.uint8
    assert targets["masks"].shape == (1, 20, 30) and targets["masks"].sum() == 35
    empty = instance_targets(np.zeros((16, 16), np.int64))
    assert empty["boxes"].shape == (0, 4) and empty["masks"].shape == (0, 16, 16)


# -- augmentation and sampling -----------------------------------------------------------------


def test_augmented_crops_keep_labels_on_the_bright_discs():
    image, labels = discs(3, 96)
    source = prepare_plane(np.where(labels > 0, 1000.0, 10.0), 1)
    geometry_only = AugmentSettings(contrast=0, brightness=0, gamma_range=(1, 1), noise_std=0)
    rng = np.random.default_rng(0)
    for _ in range(40):
        crop, crop_labels = random_sample(source, labels.astype(np.int64), 48, rng, geometry_only)
        assert crop.shape == (1, 48, 48) and crop_labels.shape == (48, 48)
        bright = crop[0] > 0.5
        objects = crop_labels > 0
        if objects.any():
            assert np.mean(bright[objects]) > 0.95
        assert np.mean(bright[crop_labels == 0]) < 0.05


def test_small_images_are_padded_with_ignored_labels():
    image, labels = discs(1, 32)
    crop, crop_labels = random_sample(prepare_plane(image, 1), labels.astype(np.int64), 64,
                                      np.random.default_rng(0), NO_AUGMENTATION)
    assert crop.shape == (1, 64, 64)
    assert np.sum(crop_labels == PAD_LABEL) == 64 * 64 - 32 * 32
    assert np.all(crop[0][crop_labels == PAD_LABEL] == 0)


def test_split_by_fraction_is_seeded_and_val_names_win():
    pairs = disc_pairs(5, 32)
    train, val = split_pairs(pairs, val_fraction=0.4, seed=3)
    assert len(val) == 2 and {p.name for p in train} | {p.name for p in val} == {p.name for p in pairs}
    assert [p.name for p in split_pairs(pairs, val_fraction=0.4, seed=3)[1]] == [p.name for p in val]
    train, val = split_pairs(pairs, val_fraction=0.4, val_names=["im4"])
    assert [p.name for p in val] == ["im4"] and len(train) == 4
    with pytest.raises(ValueError, match="im9"):
        split_pairs(pairs, val_names=["im9"])


def test_validation_images_are_never_trained_on(monkeypatch):
    pairs = disc_pairs(4, 48)
    names = {id(pair.labels): pair.name for pair in pairs}
    sampled: list[str] = []

    def recording_sample(source, labels, *args, **kwargs):
        sampled.append(names[id(labels)])
        return random_sample(source, labels, *args, **kwargs)

    monkeypatch.setattr(loop, "random_sample", recording_sample)
    result = train_unet(pairs, **TINY_UNET, config=TrainConfig(epochs=3, val_names=["im2"], **FAST))
    assert "im2" not in sampled
    assert sampled.count("im0") == sampled.count("im1") == sampled.count("im3") == 3  # each image, each epoch
    assert result.spec.provenance["data"]["val_names"] == ["im2"]
    # the training objects' median equivalent diameter is stored, validation image left out
    train_labels = [pair.labels for pair in pairs if pair.name != "im2"]
    assert result.spec.object_diameter_px == pytest.approx(median_diameter(train_labels), abs=0.01)
    assert 10 <= result.spec.object_diameter_px <= 19  # discs of radius 6-9, some overlapping


# -- learning, stopping, resuming ---------------------------------------------------------------


def test_unet_overfits_one_image():
    image, labels = discs(0)
    pairs = [TrainingPair(image, labels, "train"), TrainingPair(image, labels, "same, for validation")]
    config = TrainConfig(epochs=80, lr=3e-3, val_names=["same, for validation"], augment=NO_AUGMENTATION, **FAST)
    result = train_unet(pairs, **TINY_UNET, config=config)
    assert result.steps == 80  # one 64 px crop per epoch
    assert result.best_metrics["object_iou"] > 0.8


def test_sparse_class_maps_train_with_named_classes():
    image, labels = discs(2, 48)
    scribbles = np.zeros_like(labels)
    scribbles[labels > 0] = 2
    scribbles[::2] = 0                      # half the rows unlabelled
    scribbles[:4, :] = 1                    # a stripe of background class
    pairs = [TrainingPair(image, scribbles, "a"), TrainingPair(image, scribbles, "b")]
    result = train_unet(pairs, **TINY_UNET, label_kind="classes", class_names=["bg", "cell"],
                        config=TrainConfig(epochs=2, val_names=["b"], **FAST))
    assert result.spec.class_names == ["bg", "cell"]
    assert set(result.best_metrics) == {"mean_iou", "iou_bg", "iou_cell"}
    assert result.spec.object_diameter_px is None  # class maps have no objects to measure
    assert np.isfinite(result.history[-1].losses["loss"])


def test_painted_class_maps_output_the_painted_values():
    """Painted 1 and 2 -> output classes 1 and 2 (0 "unlabelled" is never trained nor output)."""
    from napari_unet_maskrcnn.core.progress import drain
    from napari_unet_maskrcnn.core.semantic import predict_semantic_plane
    from napari_unet_maskrcnn.core.inputs import prepare_plane

    image, labels = discs(2, 48)
    scribbles = np.zeros_like(labels)
    scribbles[labels > 0] = 2
    scribbles[::2] = 0
    scribbles[:4, :] = 1
    pairs = [TrainingPair(image, scribbles, "a"), TrainingPair(image, scribbles, "b")]
    result = train_unet(pairs, **TINY_UNET, label_kind="painted", class_names=["bg", "cell"],
                        config=TrainConfig(epochs=1, val_names=["b"], **FAST))
    assert result.spec.class_names == ["unlabelled", "bg", "cell"]
    assert set(result.best_metrics) == {"mean_iou", "iou_bg", "iou_cell"}
    source = prepare_plane(image, result.spec.in_channels)
    classes, _ = drain(predict_semantic_plane(source, result.network.eval(), tile=48, overlap=8, device=torch.device("cpu")))
    assert set(np.unique(classes)) <= {1, 2}


def test_should_stop_keeps_a_valid_model_written_atomically(tmp_path):
    calls = iter(range(100))
    output = tmp_path / "stopped.safetensors"
    result = train_unet(disc_pairs(3, 48), output=output, **TINY_UNET,
                        config=TrainConfig(epochs=50, **FAST), should_stop=lambda: next(calls) >= 4)
    assert result.stop_reason == "stopped" and result.path == output
    spec, network = load_model_file(output)
    assert spec.provenance["training"]["stop_reason"] == "stopped"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stopped.safetensors"]  # no temporary files


def test_ctrl_c_writes_the_best_model_then_reraises(tmp_path):
    output = tmp_path / "interrupted.safetensors"

    def interrupt_in_epoch_two(event):
        if event.stage == "step" and event.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_unet(disc_pairs(3, 48), output=output, **TINY_UNET, config=TrainConfig(epochs=5, **FAST),
                   on_progress=interrupt_in_epoch_two)
    spec = read_spec(output)
    assert spec.provenance["training"]["stop_reason"] == "interrupted"
    assert spec.provenance["validation"]["best_epoch"] == 1


def test_time_budget_stops_after_validating_the_cut_epoch(monkeypatch):
    class TickingClock:
        """Each reading is one second later: the 5 s budget ends during the first epoch."""

        def __init__(self, offset_s):
            self.now = offset_s

        def elapsed(self):
            self.now += 1.0
            return self.now

    monkeypatch.setattr(loop, "Clock", TickingClock)
    config = TrainConfig(epochs=None, minutes=5 / 60, crop=32, batch_size=1, amp=False)
    result = train_unet(disc_pairs(3, 48), **TINY_UNET, config=config)
    assert result.stop_reason == "time budget"
    assert result.steps < 2 * 4  # 2 training images x 4 crops of 32 px: the epoch was cut short
    assert len(result.history) == 1 and result.history[0].metrics


def test_resume_continues_exactly_where_the_checkpoint_left_off(tmp_path):
    pairs = disc_pairs(3, 48)
    epochs_done = []
    config = TrainConfig(epochs=2, **FAST)
    first = train_unet(pairs, **TINY_UNET, config=replace(config, checkpoint_dir=str(tmp_path / "a")),
                       on_progress=lambda e: e.stage == "epoch" and epochs_done.append(e.epoch),
                       should_stop=lambda: bool(epochs_done))
    assert first.stop_reason == "stopped"
    checkpoint = load_checkpoint(tmp_path / "a" / "last.pt")  # torch.load(weights_only=True)
    assert checkpoint["epoch"] == 1 and checkpoint["step"] == first.steps
    notes = []
    resumed = train_unet(pairs, **TINY_UNET, on_progress=lambda e: notes.append(e.message),
                         config=replace(config, resume=str(tmp_path / "a" / "last.pt")))
    assert [report.epoch for report in resumed.history] == [1, 2]
    assert resumed.steps == 2 * first.steps
    assert f"Resumed after epoch 1 (step {first.steps})." in notes
    straight = train_unet(pairs, **TINY_UNET, config=replace(config, checkpoint_dir=str(tmp_path / "b")))
    continued = load_checkpoint(tmp_path / "a")["model"]
    for key, value in load_checkpoint(tmp_path / "b")["model"].items():
        torch.testing.assert_close(continued[key], value, msg=key)
    assert resumed.history[-1].losses == pytest.approx(straight.history[-1].losses)


def test_fine_tuning_reinitialises_a_head_with_other_classes(tmp_path):
    pairs = disc_pairs(2, 48)
    base = train_unet(pairs, output=tmp_path / "base.safetensors", **TINY_UNET,
                      config=TrainConfig(epochs=1, **FAST))
    classes = [TrainingPair(p.image, (p.labels > 0) + 1, p.name) for p in pairs]
    notes = []
    tuned = train_unet(classes, label_kind="classes", depth=3, base_width=4,
                       on_progress=lambda e: notes.append(e.message),
                       config=TrainConfig(epochs=1, base=str(base.path), **FAST))
    assert tuned.spec.config == {"depth": 2, "base_width": 8}  # the base's architecture wins
    assert any("re-initialised" in note and "head.weight" in note for note in notes)
    head = tuned.network.state_dict()["head.weight"]
    assert head.shape[0] == 2
    stages = tuned.spec.provenance["stages"]  # the base's run, then this one
    assert [stage["base_model"] for stage in stages] == [None, str(base.path)]
    assert stages[0]["time_s"] == base.spec.provenance["training"]["time_s"]
    assert tuned.spec.provenance["total_cpu_hours"] == pytest.approx(
        sum(stage["time_s"] for stage in stages) / 3600, abs=1e-3)


# -- the command line -----------------------------------------------------------------------------


def test_load_pairs_reads_mixed_formats(folders):
    pairs = load_pairs(*folders)
    assert [p.name for p in pairs] == ["s0", "s1", "s2", "s3", "s4"]
    assert pairs[3].image.shape == (80, 80, 4) and pairs[0].image.dtype == np.uint16
    assert all(p.labels.shape == (80, 80) for p in pairs)


def test_cli_trains_a_unet_with_a_validation_list(folders, tmp_path, capsys):
    images, labels = folders
    val_list = tmp_path / "val.txt"
    val_list.write_text("s4\n# comment\n")
    output = tmp_path / "unet.safetensors"
    code = cli.main(["train", "--arch", "unet", "--images", str(images), "--labels", str(labels),
                     "--output", str(output), "--epochs", "2", "--val-list", str(val_list), "--crop", "64",
                     "--batch-size", "4", "--depth", "2", "--width", "8", "--class-names", "nucleus",
                     "--seed", "1", "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert out.count("epoch ") == 2 and "object_iou" in out
    spec, _ = load_model_file(output)
    provenance = spec.provenance
    assert spec.arch == "unet" and spec.in_channels == 3
    assert spec.class_names == ["background", "nucleus", "boundary"]
    assert provenance["data"]["images_dir"] == str(images.resolve())
    assert provenance["data"]["n_images"] == 5 and provenance["data"]["val_names"] == ["s4"]
    assert provenance["recipe"]["crop"] == 64 and provenance["recipe"]["seed"] == 1
    assert "--val-list" in provenance["command_line"] and "--epochs 2" in provenance["command_line"]
    assert provenance["validation"]["best_epoch"] in (1, 2)
    assert provenance["training"]["time_s"] > 0 and provenance["software"]["torch"] == torch.__version__
    assert "cpu" in provenance["hardware"]["device"]
    assert (tmp_path / "unet.checkpoints" / "last.pt").is_file()
    assert read_spec(tmp_path / "unet.checkpoints" / "best.safetensors").arch == "unet"


def test_cli_trains_a_mask_rcnn_from_a_tiny_base(folders, tmp_path, capsys):
    images, labels = folders
    base = tmp_path / "base.safetensors"
    tiny = dict(TINY_CONFIGS["maskrcnn"])
    train_maskrcnn(disc_pairs(1, 48), output=base, class_name="nucleus", backbone=tiny.pop("backbone"),
                   fpn_channels=tiny.pop("fpn_channels"), builder_options=tiny,
                   config=TrainConfig(epochs=1, val_fraction=0, **FAST))
    output = tmp_path / "mrcnn.safetensors"
    code = cli.main(["train", "--arch", "maskrcnn", "--images", str(images), "--labels", str(labels),
                     "--output", str(output), "--epochs", "1", "--base", str(base), "--crop", "64",
                     "--batch-size", "4", "--val-fraction", "0.2", "--in-channels", "1", "--no-bf16", "--quiet"])
    assert code == 0
    assert "ap50" in capsys.readouterr().out
    spec, network = load_model_file(output)
    assert spec.arch == "maskrcnn" and spec.config == read_spec(base).config
    assert spec.provenance["training"]["base_model"] == str(base)
    assert spec.provenance["hardware"]["precision"] == "float32"
    assert len(spec.provenance["data"]["val_names"]) == 1


def test_warm_restart_with_a_finer_mask_grid_keeps_every_base_weight(folders, tmp_path, capsys):
    """--mask-roi-size 28 over a 14-grid base: all its tensors load, the head pools 28 x 28 and masks are 56 x 56."""
    from napari_unet_maskrcnn.core.models.maskrcnn import detect
    from napari_unet_maskrcnn.core.testing import make_tiny_model_file
    from napari_unet_maskrcnn.core.training.tasks import InstanceTask

    base = make_tiny_model_file(tmp_path / "base.safetensors", "maskrcnn")
    base_spec, base_network = load_model_file(base)
    assert "mask_roi_size" not in base_spec.config  # the builder's default, 14
    pairs = disc_pairs(2, 48)
    run = loop.Run(InstanceTask(), replace(base_spec, config={}), pairs,
                   TrainConfig(epochs=1, base=str(base), mask_roi_size=28, val_fraction=0, **FAST),
                   None, None, None, None)
    assert run.spec.config == {**base_spec.config, "mask_roi_size": 28}
    assert run.network.roi_heads.mask_roi_pool.output_size == (28, 28)
    own = run.network.state_dict()
    for key, value in base_network.state_dict().items():  # every tensor copied, none re-initialised
        torch.testing.assert_close(own[key], value, msg=key)
    assert any("Mask head RoIAlign grid 28 x 28 (was the base model's 14)" in note for note in run.notes)
    image = (pairs[0].image / pairs[0].image.max())[None].astype(np.float32)
    masks = detect(run.network, image, score_threshold=0.0)["masks"]
    assert len(masks) > 0 and masks.shape[1:] == (56, 56)

    images, labels = folders  # the command line: a warm restart that trains the 28-grid head and writes it
    output = tmp_path / "fine.safetensors"
    code = cli.main(["train", "--arch", "maskrcnn", "--images", str(images), "--labels", str(labels),
                     "--output", str(output), "--epochs", "1", "--base", str(base), "--mask-roi-size", "28",
                     "--crop", "64", "--batch-size", "4", "--val-fraction", "0.2", "--in-channels", "1",
                     "--no-bf16", "--quiet"])
    assert code == 0
    assert f"({len(own)} of {len(own)} tensors copied)" in capsys.readouterr().err
    spec, network = load_model_file(output)
    assert spec.config["mask_roi_size"] == 28 and spec.provenance["recipe"]["mask_roi_size"] == 28
    assert network.roi_heads.mask_roi_pool.output_size == (28, 28)
    unet = ["train", "--arch", "unet", "--images", str(images), "--labels", str(labels),
            "--output", str(tmp_path / "u.safetensors"), "--mask-roi-size", "28"]
    assert cli.main(unet) == 2 and "Mask R-CNN setting" in capsys.readouterr().err
    with pytest.raises(ValueError, match="mask_roi_size"):
        TrainConfig(mask_roi_size=28).resolved("unet")


def test_cli_reports_images_without_labels(folders, tmp_path, capsys):
    images, _ = folders
    empty = tmp_path / "no-labels"
    empty.mkdir()
    code = cli.main(["train", "--arch", "unet", "--images", str(images), "--labels", str(empty),
                     "--output", str(tmp_path / "m.safetensors")])
    assert code == 2
    assert "no label image" in capsys.readouterr().err
    assert not (tmp_path / "m.safetensors").exists()


def test_cli_ctrl_c_writes_the_best_model_and_exits_130(folders, tmp_path, monkeypatch, capsys):
    from napari_unet_maskrcnn.cli import train as cli_train

    def interrupt_in_epoch_two(self, event):
        if event.stage == "step" and event.epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli_train._Reporter, "__call__", interrupt_in_epoch_two)
    output = tmp_path / "model.safetensors"
    code = cli.main(["train", "--arch", "unet", "--images", str(folders[0]), "--labels", str(folders[1]),
                     "--output", str(output), "--epochs", "3", "--crop", "64", "--depth", "2", "--width", "8"])
    assert code == 130
    assert "best model so far was written" in capsys.readouterr().err
    assert read_spec(output).provenance["training"]["stop_reason"] == "interrupted"
