"""Consistency laws that relate different calls, for every algorithm."""

import numpy as np
import pytest

import npconv as nc

ALGORITHMS = ["auto", *nc.algorithms()]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("groups", [2, 3, 6])
def test_groups_equal_split_and_concatenate(algorithm, groups):
    rng = np.random.default_rng(groups)
    x = rng.standard_normal((2, 7, 8, 6))
    w = rng.standard_normal((3, 2, 6 // groups, 2 * groups))
    params = dict(stride=2, padding="same", dilation=(1, 2), algorithm=algorithm)
    whole = nc.conv(x, w, groups=groups, **params)
    cg, og = 6 // groups, 2
    parts = [nc.conv(x[..., g * cg : (g + 1) * cg], w[..., g * og : (g + 1) * og], **params) for g in range(groups)]
    np.testing.assert_allclose(whole, np.concatenate(parts, axis=-1), atol=1e-12)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_channels_last_equals_transposed_channels_first(algorithm, rank):
    rng = np.random.default_rng(rank)
    x = rng.standard_normal((2, *[6] * rank, 4))
    w = rng.standard_normal((*[3] * rank, 2, 6))
    params = dict(stride=2, padding=1, groups=2, padding_mode="reflect", algorithm=algorithm)
    last = nc.conv(x, w, **params)
    first = nc.conv(np.moveaxis(x, -1, 1), np.moveaxis(w, (-1, -2), (0, 1)), data_format="channels_first", **params)
    np.testing.assert_allclose(np.moveaxis(first, 1, -1), last, atol=1e-12)
    dy = rng.standard_normal(last.shape)
    dx_last = nc.conv_backprop_input(dy, w, x.shape, **params)
    dx_first = nc.conv_backprop_input(
        np.moveaxis(dy, -1, 1), np.moveaxis(w, (-1, -2), (0, 1)), np.moveaxis(x, -1, 1).shape, data_format="channels_first", **params
    )
    np.testing.assert_allclose(np.moveaxis(dx_first, 1, -1), dx_last, atol=1e-12)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_batch_split_equals_whole_batch(algorithm):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 9, 7, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    whole = nc.conv(x, w, padding="same", algorithm=algorithm)
    pieces = np.concatenate([nc.conv(x[i : i + 1], w, padding="same", algorithm=algorithm) for i in range(5)])
    np.testing.assert_allclose(whole, pieces, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_separable_equals_depthwise_then_pointwise(algorithm):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 8, 8, 3))
    dw, pw, bias = rng.standard_normal((3, 3, 3, 2)), rng.standard_normal((1, 1, 6, 5)), rng.standard_normal(5)
    params = dict(stride=2, padding="same", algorithm=algorithm)
    separable = nc.separable_conv2d(x, dw, pw, bias=bias, **params)
    two_steps = nc.conv2d(nc.depthwise_conv2d(x, dw, **params), pw, bias=bias, algorithm=algorithm)
    np.testing.assert_allclose(separable, two_steps, atol=1e-12)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_flip_equals_reversed_kernel_and_scipy_convolve(algorithm):
    from scipy.signal import convolve

    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 9, 8, 1)), rng.standard_normal((4, 3, 1, 1))
    flipped = nc.conv(x, w, flip=True, algorithm=algorithm)
    np.testing.assert_allclose(flipped, nc.conv(x, w[::-1, ::-1], algorithm=algorithm), atol=1e-12)
    np.testing.assert_allclose(flipped[0, :, :, 0], convolve(x[0, :, :, 0], w[:, :, 0, 0], mode="valid"), atol=1e-12)
    full = nc.conv(x, w, flip=True, padding="full", algorithm=algorithm)
    np.testing.assert_allclose(full[0, :, :, 0], convolve(x[0, :, :, 0], w[:, :, 0, 0], mode="full"), atol=1e-12)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_translation_equivariance_with_circular_padding(algorithm):
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((1, 8, 8, 2)), rng.standard_normal((3, 3, 2, 3))
    params = dict(padding="same", padding_mode="circular", algorithm=algorithm)
    shifted_input = nc.conv(np.roll(x, (2, -3), axis=(1, 2)), w, **params)
    np.testing.assert_allclose(shifted_input, np.roll(nc.conv(x, w, **params), (2, -3), axis=(1, 2)), atol=1e-12)


@pytest.mark.parametrize("function, rank", [(nc.conv1d, 1), (nc.conv2d, 2), (nc.conv3d, 3)])
def test_rank_wrappers_reject_other_ranks(function, rank):
    other = 1 if rank != 1 else 2
    with pytest.raises(ValueError, match=r"Received: w\.shape="):
        function(np.zeros((1, *[4] * other, 1)), np.zeros((*[2] * other, 1, 1)))
