"""Instances from U-Net classes: touching objects split along the boundary class."""

import numpy as np

from napari_unet_maskrcnn.core.postprocess import instances_from_class_stack, instances_from_classes


def two_touching_squares():
    classes = np.zeros((20, 30), np.uint8)
    classes[4:16, 3:15] = 2      # boundary ring of the left object
    classes[5:15, 4:14] = 1
    classes[4:16, 15:27] = 2     # right object, touching the left one
    classes[5:15, 16:26] = 1
    classes[0:2, 0:2] = 1        # a 4-pixel speck
    return classes


def test_touching_objects_become_two_instances_covering_the_foreground():
    classes = two_touching_squares()
    labels = instances_from_classes(classes, min_size=10)
    assert labels.dtype == np.int32
    assert set(np.unique(labels)) == {0, 1, 2}
    assert labels[10, 8] != labels[10, 20]
    foreground = classes[2:, :] > 0
    assert np.all(labels[2:, :][foreground] > 0)  # boundary pixels are given to an object
    assert labels[0, 0] == 0  # speck removed by min_size


def test_probabilities_guide_the_watershed():
    classes = two_touching_squares()
    probs = np.stack([(classes == k).astype(np.float32) for k in range(3)])
    labels = instances_from_classes(classes, probs, min_size=10)
    assert len(np.unique(labels)) == 3


def test_no_objects_and_stacks():
    assert instances_from_classes(np.zeros((8, 8), np.uint8)).max() == 0
    stack = np.stack([two_touching_squares()] * 3)
    labels = instances_from_class_stack(stack, min_size=10)
    assert labels.shape == stack.shape and labels.dtype == np.uint32
    assert len(np.unique(labels)) == 1 + 3 * 2


def test_z_stacks_are_linked_across_z_like_mask_rcnn():
    """(T, Z, H, W): the same two squares in 3 slices are 2 objects per time point, not 6."""
    stack = np.stack([np.stack([two_touching_squares()] * 3)] * 2)
    labels = instances_from_class_stack(stack, min_size=10, z_link_iou=0.3)
    assert labels.shape == stack.shape and labels.dtype == np.uint32
    assert len(np.unique(labels)) == 1 + 2 * 2
    for t in range(2):
        assert set(np.unique(labels[t, 0])) == set(np.unique(labels[t, 2]))  # same ids through z
    assert not set(np.unique(labels[0])[1:]) & set(np.unique(labels[1])[1:])  # time points apart
