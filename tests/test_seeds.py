"""The seed tutorials' worked examples, each recomputed independently.

The seeds contain mistakes; every number here is computed by plain loops or formulas in this file
(or derived from first principles), never copied from a seed unchecked.  Where a seed is wrong the
test says so and checks the correct value; README.md lists the errata.
"""

import numpy as np
import pytest

import npconv as nc
from npconv.demo import SEED_000_INPUT, SEED_000_KERNEL, SEED_000_PRINTED, by_hand_conv2d, seed_004_example


def loops_correlate2d(image, kernel, stride=1):
    """Valid 2-D cross-correlation with plain Python loops."""
    kh, kw = len(kernel), len(kernel[0])
    out_h = (len(image) - kh) // stride + 1
    out_w = (len(image[0]) - kw) // stride + 1
    return [
        [
            sum(image[i * stride + a][j * stride + b] * kernel[a][b] for a in range(kh) for b in range(kw))
            for j in range(out_w)
        ]
        for i in range(out_h)
    ]


def test_seed_000_printed_output_is_wrong_and_npconv_matches_tf_semantics():
    # tf.nn.conv2d(VALID) of a 4x5 input with a 2x2 kernel has (4-2+1) x (5-2+1) = 3x4 outputs.
    expected = np.array(loops_correlate2d(SEED_000_INPUT.tolist(), SEED_000_KERNEL.tolist()))
    assert expected.shape == (3, 4)
    got = nc.conv2d(SEED_000_INPUT[None, :, :, None], SEED_000_KERNEL[:, :, None, None])[0, :, :, 0]
    np.testing.assert_array_equal(got, expected)
    # The tutorial's printed 3x3 map is not the result: wrong shape, and wrong values where they overlap.
    assert SEED_000_PRINTED.shape != expected.shape
    assert not np.array_equal(SEED_000_PRINTED, expected[:, :3])


def test_seed_004_by_hand_equals_npconv_and_output_formula():
    example = seed_004_example()
    # Output size: floor((5 + 2*1 - 3) / 2) + 1 = 3.
    assert (5 + 2 * 1 - 3) // 2 + 1 == 3
    assert example["npconv"].shape == (3, 3)
    # Independent recomputation: pad with np.pad, then the loops of this file, per channel, summed.
    padded = np.pad(example["volume"], ((1, 1), (1, 1), (0, 0)))
    expected = sum(
        np.array(loops_correlate2d(padded[:, :, c].tolist(), example["kernel"][:, :, c].tolist(), stride=2))
        for c in range(3)
    )
    np.testing.assert_allclose(example["by_hand"], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(example["npconv"], expected, rtol=0, atol=1e-12)


def test_by_hand_helper_matches_loops_on_random_volume():
    rng = np.random.default_rng(1)
    volume, kernel = rng.standard_normal((6, 7, 2)), rng.standard_normal((3, 2, 2))
    padded = np.pad(volume, ((2, 2), (2, 2), (0, 0)))
    expected = sum(np.array(loops_correlate2d(padded[:, :, c].tolist(), kernel[:, :, c].tolist(), 3)) for c in range(2))
    np.testing.assert_allclose(by_hand_conv2d(volume, kernel, padding=2, stride=3), expected, atol=1e-12)


@pytest.mark.parametrize(
    "n, k, s, padding, expected",
    [
        (28, 3, 2, "valid", 13),  # seed 001: 28x28, 3x3, stride 2, no padding -> 13x13 (correct)
        (28, 3, 1, "same", 28),  # seed 001: same padding keeps 28x28 (correct)
        (7, 3, 1, 0, 5),  # seed 003: floor((7 + 0 - 3) / 1) + 1 = 5 (correct)
        (7, 3, 2, 0, 3),  # seed 003: stride 2 -> 3 (correct)
    ],
)
def test_seed_output_sizes(n, k, s, padding, expected):
    assert (n + 2 * (0 if isinstance(padding, str) else padding) - k) // s + 1 == expected or padding == "same"
    y = nc.conv2d(np.zeros((1, n, n, 1)), np.zeros((k, k, 1, 1)), stride=s, padding=padding)
    assert y.shape == (1, expected, expected, 1)


def test_seed_001_layer_shapes():
    image = np.random.default_rng(0).random((1, 28, 28, 1)).astype(np.float32)
    assert nc.conv2d(image, np.zeros((3, 3, 1, 16), np.float32), padding="same").shape == (1, 28, 28, 16)
    assert nc.conv2d(np.zeros((1, 28, 28, 16)), np.zeros((1, 1, 16, 8))).shape == (1, 28, 28, 8)
    assert nc.conv2d(image, np.zeros((3, 3, 1, 1), np.float32), dilation=2, padding="same").shape == (1, 28, 28, 1)


def seed_003_same_padding(input_size, kernel_size, stride):
    """The seed's formula, verbatim: ((stride - 1) * input_size - stride + kernel_size) // 2."""
    return max(0, ((stride - 1) * input_size - stride + kernel_size) // 2)


def test_seed_003_same_padding_formula_is_wrong_for_stride_2():
    # TF's SAME: output ceil(n / s); total padding max((ceil(n/s) - 1) * s + k - n, 0), split before/after.
    n, k, s = 28, 3, 2
    total = max((-(-n // s) - 1) * s + k - n, 0)
    assert total == 1
    assert nc.explain((1, n, n, 1), (k, k, 1, 1), stride=s, padding="same").padding == ((0, 1), (0, 1))
    assert seed_003_same_padding(n, k, s) == 14  # pads 14 per side: nothing like TF's (0, 1)
    # At stride 1 with odd kernels the seed's formula happens to agree: (k - 1) // 2 on each side.
    assert seed_003_same_padding(n, 3, 1) == 1
    assert nc.explain((1, n, n, 1), (3, 3, 1, 1), padding="same").padding == ((1, 1), (1, 1))


def test_seed_003_transposed_output_size_formula():
    # Seed: (input - 1) * stride - 2 * padding + kernel (PyTorch's, for dilation 1 and no output_padding).
    for n, k, s, p in [(4, 4, 2, 1), (5, 3, 2, 0), (3, 2, 3, 1)]:
        y = nc.conv_transpose(np.zeros((1, 1, n, n)), np.zeros((1, 1, k, k)), stride=s, padding=p, data_format="channels_first")
        assert y.shape[-1] == (n - 1) * s - 2 * p + k


def winograd_f23(tile, kernel, BT, G, AT):
    """Y = AT [ (G g G^T) * (BT d BT^T) ] AT^T for one 4x4 tile d and 3x3 kernel g (Lavin & Gray)."""
    return AT @ ((G @ kernel @ G.T) * (BT @ tile @ BT.T)) @ AT.T


def test_seed_003_winograd_matrices_are_in_the_wrong_orientation():
    seed_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
    seed_B = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])
    seed_A = np.array([[1, 1, 1, 0], [0, 1, -1, -1]])
    rng = np.random.default_rng(0)
    tile, kernel = rng.standard_normal((4, 4)), rng.standard_normal((3, 3))
    direct = np.array(loops_correlate2d(tile.tolist(), kernel.tolist()))  # 2x2 outputs
    # The seed computes V = B.T @ tile @ B and output = A.T @ M @ A with the matrices above.
    # V is not the transformed tile (B^T d B with B^T as listed), and the last product cannot even run:
    seed_V = seed_B.T @ tile @ seed_B
    assert not np.allclose(seed_V, seed_B @ tile @ seed_B.T)
    with pytest.raises(ValueError):
        seed_A.T @ ((seed_G @ kernel @ seed_G.T) * seed_V) @ seed_A  # (4, 2) @ (4, 4)
    # The matrices it lists are B^T and A^T; used as such, F(2x2, 3x3) is exact:
    np.testing.assert_allclose(winograd_f23(tile, kernel, seed_B, seed_G, seed_A), direct, atol=1e-12)
    # and the multiplication count claim (16 instead of 36) holds: a 4x4 elementwise product.
    assert (seed_G @ kernel @ seed_G.T).size == 16 and direct.size * kernel.size == 36


def test_seed_003_vgg_receptive_field_by_perturbation():
    # Seed 003 prints receptive field 16 and cumulative stride 4 for conv3,conv3,pool2/2,conv3,conv3,pool2/2.
    # Check by brute force: which inputs can change output unit 0 of the 1-D stack (ones kernels).
    layers = [(3, 1), (3, 1), (2, 2), (3, 1), (3, 1), (2, 2)]

    def stack(signal):
        y = signal[None, :, None]
        for k, s in layers:
            y = nc.conv1d(y, np.ones((k, 1, 1)), stride=s)
        return y[0, :, 0]

    base = stack(np.zeros(64))
    reached = [i for i in range(64) if stack(np.eye(64)[i])[0] != base[0]]
    assert reached == list(range(16))
    # cumulative stride: output unit 1 starts 4 inputs later.
    reached_1 = [i for i in range(64) if stack(np.eye(64)[i])[1] != base[1]]
    assert reached_1[0] == 4
