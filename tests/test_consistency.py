"""Consistency laws relating different npconv calls, checked for every eligible algorithm.

groups == split + separate convs + concatenate; channels_last == transposed channels_first (forward
and both backprops); batch split == whole batch; separable == depthwise then a 1x1 conv (+bias);
flip == spatially reversed kernel; translation equivariance under circular padding (and cropping
under valid padding); bias == added afterwards; explicit kernel_format == the default layout;
non-contiguous inputs == contiguous copies; conv1d/2d/3d reject other ranks.
"""

from __future__ import annotations

import numpy as np
import pytest

import npconv as nc
from reference import (
    KERNEL_FORMATS,
    conv_reference,
    is_channels_first,
    kernel_is_spatial_first,
    pads_legal,
    random_conv_config,
    resolve_padding,
)

SEED = 20261125
MAX_REPORTED = 5


def float64_config(rng, index, **kwargs):
    return random_conv_config(rng, index, dtype_pairs=[("float64", "float64")], **kwargs)


def algorithms_for(x, w, params):
    return [*nc.explain(x.shape, w.shape, dtype=x.dtype, **params).candidates, "auto"]


def scale_of(x, w, params, bias=None):
    p = {**params, "pad_value": abs(params.get("pad_value", 0.0))}
    s = float(np.max(conv_reference(np.abs(x), np.abs(w), **p), initial=0.0))
    return 1.0 + s + (0.0 if bias is None else float(np.abs(bias).max()))


def close(a, b, scale, rel=1e-12):
    return a.shape == b.shape and a.dtype == b.dtype and float(np.max(np.abs(a - b), initial=0.0)) <= rel * scale


def fail_message(failures, total):
    head = "\n".join(failures[:MAX_REPORTED])
    more = f"\n... and {len(failures) - MAX_REPORTED} more" if len(failures) > MAX_REPORTED else ""
    return f"{len(failures)} failures over {total} configurations:\n{head}{more}"


def channel_axis(data_format, ndim):
    return 1 if is_channels_first(data_format) else ndim - 1


def out_axis(w, params):
    return w.ndim - 1 if kernel_is_spatial_first(params["data_format"], params["kernel_format"]) else 0


def spatial_axes_of_kernel(w, params):
    rank = w.ndim - 2
    return tuple(range(rank)) if kernel_is_spatial_first(params["data_format"], params["kernel_format"]) else tuple(range(2, rank + 2))


@pytest.mark.parametrize("chunk", range(3))
def test_groups_equal_split_convs_concatenated(chunk):
    rng = np.random.default_rng([SEED, 1, chunk])
    failures, done, index = [], 0, chunk * 1000
    while done < 30:
        config = float64_config(rng, index)
        index += 1
        x, w, bias, params = config["x"], config["w"], config["bias"], config["params"]
        groups = params["groups"]
        if groups == 1:
            continue
        done += 1
        c_axis, o_axis = channel_axis(params["data_format"], x.ndim), out_axis(w, params)
        cg, og = x.shape[c_axis] // groups, w.shape[o_axis] // groups
        single = {**params, "groups": 1}
        for algorithm in algorithms_for(x, w, params):
            whole = nc.conv(x, w, bias=bias, algorithm=algorithm, **params)
            parts = []
            for g in range(groups):
                xg = np.take(x, range(g * cg, (g + 1) * cg), axis=c_axis)
                wg = np.take(w, range(g * og, (g + 1) * og), axis=o_axis)
                bg = None if bias is None else bias[g * og : (g + 1) * og]
                eligible = nc.explain(xg.shape, wg.shape, dtype=xg.dtype, **single).candidates
                parts.append(nc.conv(xg, wg, bias=bg, algorithm=algorithm if algorithm in eligible else "auto", **single))
            split = np.concatenate(parts, axis=c_axis)
            if not close(whole, split, scale_of(x, w, params, bias)):
                failures.append(f"[{algorithm}] groups != split+concat, max diff "
                                f"{np.max(np.abs(whole - split), initial=0) if whole.shape == split.shape else 'shape'} :: {config['id']}")
    assert not failures, fail_message(failures, done)


def convert_kernel(k, from_spatial_first, to_spatial_first):
    """(*k, I, O) <-> (O, I, *k)."""
    rank = k.ndim - 2
    if from_spatial_first == to_spatial_first:
        return k
    if from_spatial_first:
        return np.transpose(k, (rank + 1, rank, *range(rank)))
    return np.transpose(k, (*range(2, rank + 2), 1, 0))


def to_other_layout(x, w, params):
    """The same convolution in the other data_format (kernel in that format's default layout)."""
    first = is_channels_first(params["data_format"])
    x2 = np.moveaxis(x, 1, -1) if first else np.moveaxis(x, -1, 1)
    other = "channels_last" if first else "channels_first"
    w2 = convert_kernel(w, kernel_is_spatial_first(params["data_format"], params["kernel_format"]),
                        kernel_is_spatial_first(other, None))
    return np.ascontiguousarray(x2), np.ascontiguousarray(w2), {**params, "data_format": other, "kernel_format": None}


@pytest.mark.parametrize("chunk", range(3))
def test_channels_last_equals_transposed_channels_first(chunk):
    rng = np.random.default_rng([SEED, 2, chunk])
    failures, count = [], 30
    for i in range(count):
        config = float64_config(rng, chunk * count + i)
        x, w, bias, params, cid = config["x"], config["w"], config["bias"], config["params"], config["id"]
        x2, w2, params2 = to_other_layout(x, w, params)
        first = is_channels_first(params["data_format"])
        back = (lambda a: np.moveaxis(a, -1, 1)) if first else (lambda a: np.moveaxis(a, 1, -1))
        scale = scale_of(x, w, params, bias)
        for algorithm in algorithms_for(x, w, params):
            alg2 = algorithm if algorithm in algorithms_for(x2, w2, params2) else "auto"
            y = nc.conv(x, w, bias=bias, algorithm=algorithm, **params)
            y2 = nc.conv(x2, w2, bias=bias, algorithm=alg2, **params2)
            if not close(y, back(y2), scale):
                failures.append(f"[{algorithm}] forward differs between layouts :: {cid}")
                continue
            dy = rng.standard_normal(y.shape)
            dy2 = np.ascontiguousarray(np.moveaxis(dy, 1, -1) if first else np.moveaxis(dy, -1, 1))
            dx = nc.conv_backprop_input(dy, w, x.shape, algorithm=algorithm, **params)
            dx2 = nc.conv_backprop_input(dy2, w2, x2.shape, algorithm=alg2, **params2)
            grad_scale = 1.0 + np.abs(dy).sum() * (1 + np.abs(w).max(initial=0) + np.abs(x).max(initial=0))
            if not close(dx, back(dx2), grad_scale):
                failures.append(f"[{algorithm}] backprop_input differs between layouts :: {cid}")
            dw = nc.conv_backprop_filter(x, dy, w.shape, algorithm=algorithm, **params)
            dw2 = nc.conv_backprop_filter(x2, dy2, w2.shape, algorithm=alg2, **params2)
            expected_dw = convert_kernel(dw2, kernel_is_spatial_first(params2["data_format"], None),
                                         kernel_is_spatial_first(params["data_format"], params["kernel_format"]))
            if not close(dw, expected_dw, grad_scale):
                failures.append(f"[{algorithm}] backprop_filter differs between layouts :: {cid}")
    assert not failures, fail_message(failures, count)


@pytest.mark.parametrize("chunk", range(2))
def test_explicit_kernel_format_equals_default_layout(chunk):
    rng = np.random.default_rng([SEED, 3, chunk])
    failures, count = [], 30
    for i in range(count):
        config = float64_config(rng, chunk * count + i, allow_kernel_format=False)
        x, w, bias, params, cid = config["x"], config["w"], config["bias"], config["params"], config["id"]
        rank = w.ndim - 2
        spatial_first = kernel_is_spatial_first(params["data_format"], None)
        # the same kernel in the other layout, announced with kernel_format
        if spatial_first:
            w_other, fmt = np.transpose(w, (rank + 1, rank, *range(rank))), KERNEL_FORMATS[rank][1]
        else:
            w_other, fmt = np.transpose(w, (*range(2, rank + 2), 1, 0)), KERNEL_FORMATS[rank][0]
        same_fmt = KERNEL_FORMATS[rank][0 if spatial_first else 1]
        for algorithm in algorithms_for(x, w, params):
            y = nc.conv(x, w, bias=bias, algorithm=algorithm, **params)
            y_named = nc.conv(x, w, bias=bias, algorithm=algorithm, **{**params, "kernel_format": same_fmt})
            y_other = nc.conv(x, w_other, bias=bias, algorithm="auto", **{**params, "kernel_format": fmt})
            if not (np.array_equal(y, y_named) and close(y, y_other, scale_of(x, w, params, bias))):
                failures.append(f"[{algorithm}] kernel_format {fmt}/{same_fmt} changes the result :: {cid}")
    assert not failures, fail_message(failures, count)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_batch_split_equals_whole_batch(dtype):
    rng = np.random.default_rng([SEED, 4, dtype == "float32"])
    failures, count, bitwise, compared = [], 40, 0, 0
    for i in range(count):
        config = random_conv_config(rng, i, dtype_pairs=[(dtype, dtype)], batch_range=(2, 4))
        x, w, bias, params, cid = config["x"], config["w"], config["bias"], config["params"], config["id"]
        rel = 1e-12 if dtype == "float64" else 1e-6
        for algorithm in algorithms_for(x, w, params):
            whole = nc.conv(x, w, bias=bias, algorithm=algorithm, **params)
            pieces = np.concatenate([nc.conv(x[b : b + 1], w, bias=bias, algorithm=algorithm, **params) for b in range(x.shape[0])])
            compared += 1
            bitwise += bool(np.array_equal(whole, pieces))
            if not close(whole, pieces, scale_of(x.astype(float), w.astype(float), params, bias), rel):
                failures.append(f"[{algorithm}] batch split differs by {np.max(np.abs(whole - pieces))} :: {cid}")
    print(f"\nbatch split ({dtype}): {bitwise}/{compared} bitwise identical")
    assert not failures, fail_message(failures, count)


@pytest.mark.parametrize("chunk", range(2))
def test_separable_equals_depthwise_then_pointwise(chunk):
    rng = np.random.default_rng([SEED, 5, chunk])
    failures, count = [], 25
    for i in range(count):
        channels, multiplier, out = (int(v) for v in rng.integers(1, 4, 3))
        channels_first = bool(rng.random() < 0.5)
        data_format = "channels_first" if channels_first else "channels_last"
        spatial = tuple(int(v) for v in rng.integers(5, 9, 2))  # a dilated 3x3 spans 5
        x = rng.standard_normal((2, channels, *spatial) if channels_first else (2, *spatial, channels))
        dw = rng.standard_normal((*(int(v) for v in rng.integers(1, 4, 2)), channels, multiplier))
        pw = rng.standard_normal((1, 1, channels * multiplier, out))
        bias = rng.standard_normal(out) if rng.random() < 0.7 else None
        padding = ("valid", "same", 1, (1, 0), ((1, 0), (0, 2)))[int(rng.integers(5))]
        params = dict(stride=tuple(int(v) for v in rng.integers(1, 3, 2)), padding=padding,
                      dilation=int(rng.integers(1, 3)), data_format=data_format)
        cid = f"#{i} x{x.shape} dw{dw.shape} pw{pw.shape} {params} bias={bias is not None}"
        try:
            separable = nc.separable_conv2d(x, dw, pw, bias=bias, **params)
        except ValueError as exc:
            failures.append(f"separable raised {exc!r} :: {cid}")
            continue
        for algorithm in ["auto", *nc.algorithms()]:
            try:
                middle = nc.depthwise_conv2d(x, dw, algorithm=algorithm, **params)
                two_steps = nc.conv2d(middle, pw, bias=bias, data_format=data_format, kernel_format="HWIO", algorithm=algorithm)
                separable_alg = nc.separable_conv2d(x, dw, pw, bias=bias, algorithm=algorithm, **params)
            except ValueError as exc:
                if algorithm != "auto" and "algorithm" in str(exc):
                    continue
                raise
            scale = 1.0 + np.abs(middle).sum() * np.abs(pw).max() + (0 if bias is None else np.abs(bias).max())
            if not (close(separable_alg, two_steps, scale) and close(separable, two_steps, scale)):
                failures.append(f"[{algorithm}] separable != depthwise then 1x1 :: {cid}")
    assert not failures, fail_message(failures, count)


@pytest.mark.parametrize("chunk", range(3))
def test_flip_equals_spatially_reversed_kernel(chunk):
    rng = np.random.default_rng([SEED, 6, chunk])
    failures, count = [], 30
    for i in range(count):
        config = float64_config(rng, chunk * count + i)
        x, w, bias, params, cid = config["x"], config["w"], config["bias"], config["params"], config["id"]
        reversed_w = np.ascontiguousarray(np.flip(w, axis=spatial_axes_of_kernel(w, params)))
        flipped = {**params, "flip": not params["flip"]}
        scale = scale_of(x, w, params, bias)
        for algorithm in algorithms_for(x, w, params):
            a = nc.conv(x, w, bias=bias, algorithm=algorithm, **params)
            b = nc.conv(x, reversed_w, bias=bias, algorithm=algorithm, **flipped)
            if not close(a, b, scale):
                failures.append(f"[{algorithm}] flip={params['flip']} != reversed kernel with flip={not params['flip']} :: {cid}")
                continue
            dy = rng.standard_normal(a.shape)
            dw_a = nc.conv_backprop_filter(x, dy, w.shape, algorithm=algorithm, **params)
            dw_b = nc.conv_backprop_filter(x, dy, w.shape, algorithm=algorithm, **flipped)
            grad_scale = 1.0 + np.abs(dy).sum() * (1 + np.abs(x).max(initial=0) + abs(params["pad_value"]))
            if not close(dw_a, np.flip(dw_b, axis=spatial_axes_of_kernel(w, params)), grad_scale):
                failures.append(f"[{algorithm}] backprop_filter under flip is not the reversed gradient :: {cid}")
            dx_a = nc.conv_backprop_input(dy, w, x.shape, algorithm=algorithm, **params)
            dx_b = nc.conv_backprop_input(dy, reversed_w, x.shape, algorithm=algorithm, **flipped)
            if not close(dx_a, dx_b, grad_scale * (1 + np.abs(w).max())):
                failures.append(f"[{algorithm}] backprop_input under flip differs :: {cid}")
    assert not failures, fail_message(failures, count)


@pytest.mark.parametrize("seed", range(30))
def test_translation_equivariance_with_circular_padding(seed):
    """'same' + circular, stride s dividing n: rolling the input by a*s rolls the output by a."""
    rng = np.random.default_rng([SEED, 7, seed])
    rank = seed % 3 + 1
    while True:
        stride = tuple(int(v) for v in rng.integers(1, 4, rank))
        spatial = tuple(s * int(m) for s, m in zip(stride, rng.integers(1, (4, 3, 2)[rank - 1] + 1, rank)))
        kernel = tuple(int(v) for v in rng.integers(1, 4, rank))
        dilation = tuple(int(v) for v in rng.integers(1, 3, rank))
        pads = resolve_padding("same", spatial, kernel, stride, dilation)
        if pads_legal(pads, spatial, "circular") and all(n + a + b >= (k - 1) * d + 1 for n, (a, b), k, d in zip(spatial, pads, kernel, dilation)):
            break
    channels_first = bool(seed % 2)
    cin, cout = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    x = rng.standard_normal((2, cin, *spatial) if channels_first else (2, *spatial, cin))
    w = rng.standard_normal((cout, cin, *kernel) if channels_first else (*kernel, cin, cout))
    params = dict(stride=stride, padding="same", dilation=dilation, padding_mode="circular",
                  data_format="channels_first" if channels_first else "channels_last", flip=bool(seed % 3 == 0))
    axes = tuple(range(2, rank + 2)) if channels_first else tuple(range(1, rank + 1))
    shifts = tuple(int(v) for v in rng.integers(-3, 4, rank))
    for algorithm in algorithms_for(x, w, params):
        y = nc.conv(x, w, algorithm=algorithm, **params)
        y_shifted = nc.conv(np.roll(x, tuple(a * s for a, s in zip(shifts, stride)), axis=axes), w, algorithm=algorithm, **params)
        np.testing.assert_allclose(y_shifted, np.roll(y, shifts, axis=axes), rtol=0, atol=1e-12 * scale_of(x, w, params),
                                   err_msg=f"{algorithm} {params} shifts={shifts} x{x.shape} w{w.shape}")


@pytest.mark.parametrize("seed", range(20))
def test_cropping_the_input_crops_the_output_with_valid_padding(seed):
    """Valid padding: dropping a*s leading input samples drops a leading output samples."""
    rng = np.random.default_rng([SEED, 8, seed])
    rank = seed % 3 + 1
    stride = tuple(int(v) for v in rng.integers(1, 4, rank))
    kernel = tuple(int(v) for v in rng.integers(1, 4, rank))
    dilation = tuple(int(v) for v in rng.integers(1, 3, rank))
    crop = tuple(int(v) for v in rng.integers(0, 3, rank))
    spatial = tuple((k - 1) * d + 1 + a * s + int(m) for k, d, a, s, m in zip(kernel, dilation, crop, stride, rng.integers(0, 4, rank)))
    x = rng.standard_normal((2, *spatial, 2))
    w = rng.standard_normal((*kernel, 2, 3))
    params = dict(stride=stride, dilation=dilation)
    for algorithm in algorithms_for(x, w, params):
        y = nc.conv(x, w, algorithm=algorithm, **params)
        cropped = x[(slice(None), *[slice(a * s, None) for a, s in zip(crop, stride)])]
        y_cropped = nc.conv(cropped, w, algorithm=algorithm, **params)
        np.testing.assert_allclose(y_cropped, y[(slice(None), *[slice(a, None) for a in crop])], rtol=0,
                                   atol=1e-12 * scale_of(x, w, params), err_msg=f"{algorithm} {params} crop={crop}")


@pytest.mark.parametrize("chunk", range(2))
def test_bias_and_non_contiguous_inputs(chunk):
    """conv(x, w, bias) == conv(x, w) + bias; strided/transposed views == contiguous copies."""
    rng = np.random.default_rng([SEED, 9, chunk])
    failures, count = [], 30
    for i in range(count):
        config = float64_config(rng, chunk * count + i, batch_range=(1, 3))
        x, w, params, cid = config["x"], config["w"], config["params"], config["id"]
        o_axis = out_axis(w, params)
        bias = rng.standard_normal(w.shape[o_axis])
        c_axis = channel_axis(params["data_format"], x.ndim)
        shape = [1] * x.ndim
        shape[c_axis] = -1
        # a non-contiguous x: every other element of a twice-as-long buffer; a Fortran-ordered w
        x_view = np.repeat(x, 2, axis=-1)[..., ::2]
        w_view = np.asfortranarray(w)
        assert np.array_equal(x_view, x) and (x_view.flags.c_contiguous is False or x.shape[-1] == 1 or x.size == 0)
        for algorithm in algorithms_for(x, w, params):
            plain = nc.conv(x, w, algorithm=algorithm, **params)
            with_bias = nc.conv(x, w, bias=bias, algorithm=algorithm, **params)
            if not close(with_bias, plain + bias.reshape(shape), scale_of(x, w, params, bias)):
                failures.append(f"[{algorithm}] bias is not added per output channel :: {cid}")
            if not np.array_equal(nc.conv(x_view, w_view, algorithm=algorithm, **params), plain):
                failures.append(f"[{algorithm}] non-contiguous inputs change the result :: {cid}")
    assert not failures, fail_message(failures, count)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_rank_wrappers_reject_other_ranks(rank):
    function = {1: nc.conv1d, 2: nc.conv2d, 3: nc.conv3d}[rank]
    x = np.zeros((1, *[5] * rank, 2))
    w = np.zeros((*[2] * rank, 2, 3))
    assert function(x, w).shape == (1, *[4] * rank, 3)  # the right rank works
    assert function(np.moveaxis(x, -1, 1), np.moveaxis(w, (-1, -2), (0, 1)), data_format="channels_first").shape == (1, 3, *[4] * rank)
    for other in {1, 2, 3} - {rank}:
        x_other = np.zeros((1, *[5] * other, 2))
        w_other = np.zeros((*[2] * other, 2, 3))
        with pytest.raises(ValueError, match=r"Received: (w|x)\.shape="):
            function(x_other, w_other)  # consistent x/w of the wrong rank
        with pytest.raises(ValueError, match=r"Received: (w|x)\.shape="):
            function(x, w_other)  # only the kernel has the wrong rank
    assert np.array_equal(nc.conv(x, w), function(x, w))
