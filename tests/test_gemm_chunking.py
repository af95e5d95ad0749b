"""gemm splits the output positions into blocks; results must not depend on where the splits fall."""

import numpy as np
import pytest

import npconv as nc
from npconv.algorithms import gemm
from npconv.algorithms._common import output_chunks


@pytest.mark.parametrize("budget", [1, 200, 3000])
@pytest.mark.parametrize(
    "x_shape, w_shape, params",
    [
        ((3, 11, 2), (3, 2, 4), {"stride": 2, "padding": "same"}),
        ((2, 7, 6, 4), (3, 2, 2, 6), {"groups": 2, "dilation": (2, 1), "padding": 1, "padding_mode": "reflect"}),
        ((2, 5, 6, 4, 3), (2, 3, 2, 3, 4), {"stride": (1, 2, 1), "padding": "full"}),
    ],
)
def test_small_blocks_match_direct(monkeypatch, budget, x_shape, w_shape, params):
    rng = np.random.default_rng(budget)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    y_direct = nc.conv(x, w, algorithm="direct", **params)
    dy = rng.standard_normal(y_direct.shape)
    expected = (
        y_direct,
        nc.conv_backprop_input(dy, w, x.shape, algorithm="direct", **params),
        nc.conv_backprop_filter(x, dy, w.shape, algorithm="direct", **params),
    )
    monkeypatch.setattr(gemm, "COLS_BUDGET_BYTES", budget)
    got = (
        nc.conv(x, w, algorithm="gemm", **params),
        nc.conv_backprop_input(dy, w, x.shape, algorithm="gemm", **params),
        nc.conv_backprop_filter(x, dy, w.shape, algorithm="gemm", **params),
    )
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("max_positions", [1, 2, 5, 12, 1000])
def test_blocks_cover_every_output_position_once_and_are_contiguous(max_positions):
    spec = nc.explain((2, 5, 4, 3, 1), (2, 2, 1, 1, 1)).spec  # out_spatial (4, 3, 3)
    out = np.zeros((spec.batch, *spec.out_spatial), int)
    for batch_range, ranges in output_chunks(spec, bytes_per_position=1, budget_bytes=max_positions):
        block = out[(batch_range, *(slice(a, b) for a, b in ranges))]
        assert block.flags.c_contiguous  # gemm writes its product straight into the block
        assert block.size <= max_positions
        block += 1
    assert (out == 1).all()


@pytest.mark.parametrize("in_per_group", [1, 3, 16, 17])  # tap by tap; one view + planar col2im; channels-last col2im
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize(
    "kernel, params",
    [
        ((3, 3), {"padding": "same"}),
        ((3, 2), {"stride": 2, "dilation": (1, 2), "padding": 1}),
        ((1, 1), {}),  # no im2col copy
        ((1, 1), {"stride": 2}),
    ],
    ids=["3x3", "strided-dilated", "1x1", "1x1-strided"],
)
def test_every_im2col_and_col2im_layout_matches_direct(in_per_group, groups, kernel, params):
    rng = np.random.default_rng(in_per_group * 10 + groups)
    channels = in_per_group * groups
    x = rng.standard_normal((2, 7, 6, channels), dtype=np.float32)
    w = rng.standard_normal((*kernel, in_per_group, 2 * groups), dtype=np.float32)
    params = {**params, "groups": groups}
    y = nc.conv(x, w, algorithm="direct", **params)
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    for got, expected in [
        (nc.conv(x, w, algorithm="gemm", **params), y),
        (
            nc.conv_backprop_input(dy, w, x.shape, algorithm="gemm", **params),
            nc.conv_backprop_input(dy, w, x.shape, algorithm="direct", **params),
        ),
        (
            nc.conv_backprop_filter(x, dy, w.shape, algorithm="gemm", **params),
            nc.conv_backprop_filter(x, dy, w.shape, algorithm="direct", **params),
        ),
    ]:
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
        assert got.flags.c_contiguous
