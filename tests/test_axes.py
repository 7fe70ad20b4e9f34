"""Axes: guessing, validation with actionable errors, canonical TZYXC views and back."""

import numpy as np
import pytest

from napari_unet_maskrcnn.core.axes import (
    from_canonical,
    guess_axes,
    output_axes,
    resolve_axes,
    to_canonical,
    validate_axes,
)


@pytest.mark.parametrize(
    "shape, rgb, expected",
    [
        ((64, 80), None, "YX"),
        ((64, 80, 3), None, "YXC"),
        ((64, 80, 4), None, "YXC"),
        ((64, 80, 3), False, "ZYX"),
        ((64, 80, 7), True, "YXC"),
        ((3, 64, 80), None, "ZYX"),
        ((40, 64, 80), None, "ZYX"),
        ((5, 40, 64, 3), None, "ZYXC"),
        ((5, 2, 64, 80), None, "ZCYX"),
        ((5, 20, 64, 80), None, "TZYX"),
        ((2, 5, 3, 64, 80), None, "TZCYX"),
        ((2, 5, 64, 80, 3), None, "TZYXC"),
    ],
)
def test_guess_axes(shape, rgb, expected):
    assert guess_axes(shape, rgb) == expected


@pytest.mark.parametrize("shape", [(10,), (1, 2, 3, 4, 5, 6)])
def test_guess_axes_rejects_unsupported_dimensions(shape):
    with pytest.raises(ValueError, match="dimensions"):
        guess_axes(shape)


def test_validate_axes_normalises_letters():
    assert validate_axes("zyx", (3, 8, 8)) == "ZYX"
    assert validate_axes("YXS", (8, 8, 3)) == "YXC"


@pytest.mark.parametrize(
    "axes, shape, match",
    [
        ("ZYX", (5, 3, 256, 256), r"'ZYX' has 3 letters but the image has 4 dimensions \(shape \(5, 3, 256, 256\)\); "
                                  r"give 4 letters, e.g. axes 'ZCYX' \(--axes ZCYX"),
        ("ZZYX", (2, 3, 8, 8), "repeats Z"),
        ("ZQX", (2, 8, 8), "unknown letter"),
        ("ZYC", (2, 8, 3), "needs both Y and X"),
        ("XY", (8, 8), "Y and X must be adjacent"),
        ("YXZ", (8, 8, 2), "only C may follow"),
        ("YCX", (8, 2, 8), "adjacent"),
    ],
)
def test_validate_axes_errors_are_actionable(axes, shape, match):
    with pytest.raises(ValueError, match=match):
        validate_axes(axes, shape)


@pytest.mark.parametrize(
    "axes, shape",
    [
        ("YX", (6, 7)),
        ("YXC", (6, 7, 3)),
        ("ZYX", (4, 6, 7)),
        ("TYX", (3, 6, 7)),
        ("TZYX", (2, 4, 6, 7)),
        ("CZYX", (2, 4, 6, 7)),
        ("ZTYX", (4, 2, 6, 7)),
        ("TZCYX", (2, 4, 3, 6, 7)),
    ],
)
def test_canonical_view_and_back(axes, shape):
    image = np.arange(np.prod(shape)).reshape(shape)
    canonical = to_canonical(image, axes)
    assert canonical.ndim == 5 and np.shares_memory(canonical, image)
    sizes = dict(zip(axes, shape))
    assert canonical.shape == tuple(sizes.get(a, 1) for a in "TZYXC")
    first_channel = image.take(0, axis=axes.index("C")) if "C" in axes else image
    back = from_canonical(canonical[..., 0], axes)
    assert output_axes(axes) == axes.replace("C", "")
    assert back.shape == first_channel.shape
    np.testing.assert_array_equal(back, first_channel)


def test_canonical_element_matches_the_original():
    image = np.random.default_rng(0).random((2, 3, 5, 6, 7))
    canonical = to_canonical(image, "TZCYX")
    assert canonical[1, 2, 4, 5, 3] == image[1, 2, 3, 4, 5]


def test_from_canonical_rejects_results_that_do_not_fit():
    with pytest.raises(ValueError, match="size 1"):
        from_canonical(np.zeros((2, 1, 6, 7)), "ZYX")
    with pytest.raises(ValueError, match=r"\(T, Z, Y, X\)"):
        from_canonical(np.zeros((6, 7)), "YX")


@pytest.mark.parametrize(
    "axes, shape, expected",
    [
        (None, (5, 64, 64), "ZYX"),
        ("QYXS", (5, 16, 16, 3), "ZYXC"),  # tifffile: shaped file without axes
        ("IYX", (5, 16, 16), "ZYX"),  # tifffile: generic page sequence
        ("SYX", (3, 16, 16), "CYX"),  # tifffile: planar RGB
        ("TQYX", (3, 2, 16, 16), "TZYX"),  # the guess (ZCYX) disagrees with T: fill with Z
        ("CYXS", (2, 16, 16, 3), "ZYXC"),
    ],
)
def test_resolve_axes_from_file_metadata(axes, shape, expected):
    assert resolve_axes(axes, shape) == expected


def test_resolve_axes_rejects_what_cannot_be_mapped():
    with pytest.raises(ValueError, match="shape"):
        resolve_axes("QQQQYX", (2, 2, 2, 2, 8, 8))
