"""Gradients of npconv: finite differences, adjoint identities, conv_transpose == backprop_input.

``L(x, w) = <conv(x, w), y>`` is affine in x (linear unless padding_mode='constant' with
pad_value != 0) and linear in w, so a central difference along any direction equals the directional
derivative up to rounding, whatever the step.  We compare

    (L(x + v) - L(x - v)) / 2  ==  <v, conv_backprop_input(y, w, x.shape)>
    (L(w + u) - L(w - u)) / 2  ==  <u, conv_backprop_filter(x, y, w.shape)>

for every algorithm ``nc.explain`` lists as eligible, with L evaluated both by the independent
reference and by npconv's own conv with that algorithm; on tiny tensors the full gradients are
compared element by element against coordinate-wise central differences.
"""

from __future__ import annotations

import numpy as np
import pytest

import npconv as nc
from reference import (
    MODES,
    conv_output_spatial,
    conv_reference,
    conv_transpose_geometry,
    conv_transpose_reference,
    effective_size,
    random_conv_config,
    resolve_padding,
    transpose_forward_consistent,
)

SEED = 20261124
FD_CHUNKS, FD_PER_CHUNK = 8, 40  # 320 configurations
EXACT_CHUNKS, EXACT_PER_CHUNK = 2, 25  # 50 tiny configurations, every coordinate
ADJOINT_CHUNKS, ADJOINT_PER_CHUNK = 6, 50  # 300 configurations
MAX_REPORTED = 5


def vdot(a, b):
    return float(np.vdot(np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()))


def fail_message(failures, total):
    head = "\n".join(failures[:MAX_REPORTED])
    more = f"\n... and {len(failures) - MAX_REPORTED} more" if len(failures) > MAX_REPORTED else ""
    return f"{len(failures)} failures over {total} configurations:\n{head}{more}"


def float64_config(rng, index, **kwargs):
    return random_conv_config(rng, index, dtype_pairs=[("float64", "float64")], **kwargs)


def functional_scale(x, w, y, params, extra_x=None, extra_w=None):
    """<|y|, conv(|x| + |v|, |w| + |u|)> with |pad_value|: bounds every term of L(x +- v, w +- u)."""
    ax = np.abs(x) + (0 if extra_x is None else np.abs(extra_x))
    aw = np.abs(w) + (0 if extra_w is None else np.abs(extra_w))
    p = {**params, "pad_value": abs(params["pad_value"])}
    return 1.0 + vdot(np.abs(y), conv_reference(ax, aw, **p))


@pytest.mark.parametrize("chunk", range(FD_CHUNKS))
def test_finite_differences_along_random_directions(chunk):
    rng = np.random.default_rng([SEED, 1, chunk])
    failures = []
    for i in range(FD_PER_CHUNK):
        config = float64_config(rng, chunk * FD_PER_CHUNK + i)
        x, w, params, cid = config["x"], config["w"], config["params"], config["id"]
        out_shape = conv_reference(x, w, **params).shape
        y = rng.standard_normal(out_shape)
        v, u = rng.standard_normal(x.shape), rng.standard_normal(w.shape)

        def loss_reference(x_, w_):
            return vdot(conv_reference(x_, w_, **params), y)

        fd_x = (loss_reference(x + v, w) - loss_reference(x - v, w)) / 2
        fd_w = (loss_reference(x, w + u) - loss_reference(x, w - u)) / 2
        tol = 1e-10 * functional_scale(x, w, y, params, v, u)
        candidates = list(nc.explain(x.shape, w.shape, dtype=x.dtype, **params).candidates)
        for algorithm in candidates:
            try:
                dx = nc.conv_backprop_input(y, w, x.shape, algorithm=algorithm, **params)
                dw = nc.conv_backprop_filter(x, y, w.shape, algorithm=algorithm, **params)
            except Exception as exc:  # noqa: BLE001
                failures.append(f"[{algorithm}] raised {exc!r} :: {cid}")
                continue
            if dx.shape != x.shape or dx.dtype != np.float64 or dw.shape != w.shape or dw.dtype != np.float64:
                failures.append(f"[{algorithm}] dx {dx.shape} {dx.dtype}, dw {dw.shape} {dw.dtype} :: {cid}")
                continue

            def loss_npconv(x_, w_):
                return vdot(nc.conv(x_, w_, algorithm=algorithm, **params), y)

            fd_x_own = (loss_npconv(x + v, w) - loss_npconv(x - v, w)) / 2
            fd_w_own = (loss_npconv(x, w + u) - loss_npconv(x, w - u)) / 2
            for name, got, fds in (("dx", vdot(v, dx), (fd_x, fd_x_own)), ("dw", vdot(u, dw), (fd_w, fd_w_own))):
                for source, fd in zip(("reference", "npconv"), fds):
                    if not abs(got - fd) <= tol:
                        failures.append(f"[{algorithm}] {name}: <dir, grad>={got!r} vs FD of {source} conv={fd!r} "
                                        f"(tol {tol:.2g}) :: {cid}")
    assert not failures, fail_message(failures, FD_PER_CHUNK)


def test_finite_difference_count():
    assert FD_CHUNKS * FD_PER_CHUNK >= 300
    assert ADJOINT_CHUNKS * ADJOINT_PER_CHUNK >= 300


def coordinate_gradient(loss, a):
    """Central differences (step 1: the loss is affine in a) along every coordinate of a."""
    grad = np.zeros(a.shape)
    for index in np.ndindex(a.shape):
        e = np.zeros(a.shape)
        e[index] = 1.0
        grad[index] = (loss(a + e) - loss(a - e)) / 2
    return grad


@pytest.mark.parametrize("chunk", range(EXACT_CHUNKS))
def test_full_gradients_on_tiny_tensors(chunk):
    rng = np.random.default_rng([SEED, 2, chunk])
    failures = []
    for i in range(EXACT_PER_CHUNK):
        config = float64_config(rng, chunk * EXACT_PER_CHUNK + i, small=True, batch_range=(1, 2))
        x, w, params, cid = config["x"], config["w"], config["params"], config["id"]
        y = rng.standard_normal(conv_reference(x, w, **params).shape)
        gx = coordinate_gradient(lambda a: vdot(conv_reference(a, w, **params), y), x)
        gw = coordinate_gradient(lambda a: vdot(conv_reference(x, a, **params), y), w)
        tol = 1e-10 * functional_scale(x, w, y, params, np.ones_like(x), np.ones_like(w))
        for algorithm in nc.explain(x.shape, w.shape, dtype=x.dtype, **params).candidates:
            dx = nc.conv_backprop_input(y, w, x.shape, algorithm=algorithm, **params)
            dw = nc.conv_backprop_filter(x, y, w.shape, algorithm=algorithm, **params)
            err_x = float(np.max(np.abs(dx - gx), initial=0))
            err_w = float(np.max(np.abs(dw - gw), initial=0))
            if not (err_x <= tol and err_w <= tol):
                failures.append(f"[{algorithm}] max |dx - FD| {err_x:.3g}, max |dw - FD| {err_w:.3g} (tol {tol:.2g})"
                                f" :: {cid}\n    FD dx={gx.ravel().round(6).tolist()}\n    npconv dx={dx.ravel().round(6).tolist()}")
    assert not failures, fail_message(failures, EXACT_PER_CHUNK)


@pytest.mark.parametrize("chunk", range(ADJOINT_CHUNKS))
def test_adjoint_identities(chunk):
    """Half the chunks: zeros padding, <conv(x, w), y> == <x, bp_input(y)> == <w, bp_filter(x, y)>.
    The others: every mode; conv is affine in x, so <conv(x, w) - conv(0, w), y> == <x, bp_input(y)>,
    and it stays linear in w."""
    rng = np.random.default_rng([SEED, 3, chunk])
    zeros_only = chunk % 2 == 0
    failures = []
    for i in range(ADJOINT_PER_CHUNK):
        config = float64_config(rng, chunk * ADJOINT_PER_CHUNK + i, modes=("zeros",) if zeros_only else MODES)
        x, w, params, cid = config["x"], config["w"], config["params"], config["id"]
        for algorithm in nc.explain(x.shape, w.shape, dtype=x.dtype, **params).candidates:
            out = nc.conv(x, w, algorithm=algorithm, **params)
            y = rng.standard_normal(out.shape)
            offset = 0.0 if zeros_only else vdot(nc.conv(np.zeros_like(x), w, algorithm=algorithm, **params), y)
            forward = vdot(out, y)
            via_input = vdot(x, nc.conv_backprop_input(y, w, x.shape, algorithm=algorithm, **params))
            via_filter = vdot(w, nc.conv_backprop_filter(x, y, w.shape, algorithm=algorithm, **params))
            tol = 1e-10 * functional_scale(x, w, y, params)
            if not abs(forward - offset - via_input) <= tol:
                failures.append(f"[{algorithm}] <conv(x,w){' - conv(0,w)' if not zeros_only else ''}, y>="
                                f"{forward - offset!r} != <x, bp_input>={via_input!r} :: {cid}")
            if not abs(forward - via_filter) <= tol:
                failures.append(f"[{algorithm}] <conv(x,w), y>={forward!r} != <w, bp_filter>={via_filter!r} :: {cid}")
    assert not failures, fail_message(failures, ADJOINT_PER_CHUNK)


# --------------------------------------------------------------------------------------------------
# conv_transpose == conv_backprop_input where their conventions meet
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(120))
def test_conv_transpose_equals_backprop_input_pytorch_conventions(seed):
    """channels_first + explicit padding: PyTorch's ConvTranspose weight (in, out // g, *k) is the
    forward conv's OIHW kernel; output_padding = what the forward size formula floors away picks the
    forward input size."""
    rng = np.random.default_rng([SEED, 4, seed])
    rank = seed % 3 + 1
    groups = int(rng.integers(1, 4))
    cin, cout = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    kernel = tuple(int(v) for v in rng.integers(1, 4, rank))
    stride = tuple(int(v) for v in rng.integers(1, 4, rank))
    dilation = tuple(int(v) for v in rng.integers(1, 3, rank))
    form = ("int", "tuple", "pairs")[seed % 3 if rank > 1 else (seed // 3) % 3]
    if form == "int":
        padding = int(rng.integers(0, 3))
    elif form == "tuple":
        padding = tuple(int(v) for v in rng.integers(0, 3, rank))
    else:
        padding = tuple((int(a), int(b)) for a, b in rng.integers(0, 3, (rank, 2)))
    pads = resolve_padding(padding, (1,) * rank, kernel, stride, dilation)
    # forward input sizes with the dilated kernel fitting the padded input
    spatial = tuple(max(int(n) + effective_size(k, d) - lo - hi, 1) for n, k, d, (lo, hi)
                    in zip(rng.integers(0, 5, rank), kernel, dilation, pads))
    spatial = tuple(max(n, effective_size(k, d) - lo - hi) for n, k, d, (lo, hi) in zip(spatial, kernel, dilation, pads))
    data_format = "channels_first" if seed % 5 else "channels_last"  # the layouts agree as well
    batch = int(rng.integers(1, 3))
    x_shape = (batch, cin, *spatial) if data_format == "channels_first" else (batch, *spatial, cin)
    oihw = rng.standard_normal((cout, cin // groups, *kernel))
    w = oihw if data_format == "channels_first" else np.transpose(oihw, (*range(2, rank + 2), 1, 0))
    params = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, data_format=data_format)
    out_spatial = conv_output_spatial(spatial, kernel, stride, padding, dilation)
    dy = rng.standard_normal((batch, cout, *out_spatial) if data_format == "channels_first" else (batch, *out_spatial, cout))
    output_padding = tuple((n + lo + hi - effective_size(k, d)) % s
                           for n, (lo, hi), k, d, s in zip(spatial, pads, kernel, dilation, stride))
    assert conv_transpose_geometry(out_spatial, kernel, stride, padding, output_padding, dilation)[0] == spatial
    expected = nc.conv_backprop_input(dy, w, x_shape, **params)
    got = nc.conv_transpose(dy, w, output_padding=output_padding, **params)
    assert got.shape == tuple(x_shape)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-11 * (1 + np.abs(expected).max()), err_msg=str(params))
    reference = conv_transpose_reference(dy, w, output_padding=output_padding, **params)
    np.testing.assert_allclose(got, reference, rtol=0, atol=1e-11 * (1 + np.abs(reference).max()), err_msg=str(params))


@pytest.mark.parametrize("seed", range(120))
def test_conv_transpose_equals_backprop_input_keras_conventions(seed):
    """channels_last + 'same'/'valid': Conv*DTranspose's kernel (*k, out // g, in) is the forward
    HWIO kernel and Keras' output size is a forward input size that maps back (output_padding too,
    when the forward conv maps that size back)."""
    rng = np.random.default_rng([SEED, 5, seed])
    rank = seed % 3 + 1
    padding = ("same", "valid")[(seed // 3) % 2]
    groups = int(rng.integers(1, 3)) if seed % 4 == 0 else 1
    cin, cout = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))  # forward channels
    n = tuple(int(v) for v in rng.integers(1, (6, 4, 3)[rank - 1] + 1, rank))  # the transpose's input
    kernel = tuple(int(v) for v in rng.integers(1, 5, rank))
    stride = tuple(int(v) for v in rng.integers(1, 4, rank))
    dilation = tuple(int(v) for v in rng.integers(1, 3, rank)) if seed % 3 == 0 else (1,) * rank
    output_padding = None
    if seed % 2:
        output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
        if not transpose_forward_consistent(n, kernel, stride, padding, output_padding, dilation):
            output_padding = None
    data_format = "channels_last" if seed % 5 else "channels_first"
    hwio = rng.standard_normal((*kernel, cin // groups, cout))
    w = hwio if data_format == "channels_last" else np.transpose(hwio, (rank + 1, rank, *range(rank)))
    batch = 2
    dy = rng.standard_normal((batch, *n, cout) if data_format == "channels_last" else (batch, cout, *n))
    params = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, data_format=data_format)
    y = nc.conv_transpose(dy, w, output_padding=output_padding, **params)
    lengths, _ = conv_transpose_geometry(n, kernel, stride, padding, output_padding, dilation)
    y_spatial = y.shape[1:-1] if data_format == "channels_last" else y.shape[2:]
    assert tuple(y_spatial) == lengths  # Keras sizes: same -> n * s, valid -> (n - 1) * s + max(keff, s)
    if output_padding is None:
        keff = [effective_size(k, d) for k, d in zip(kernel, dilation)]
        keras = [m * s if padding == "same" else (m - 1) * s + max(e, s) for m, s, e in zip(n, stride, keff)]
        assert list(y_spatial) == keras
    expected = nc.conv_backprop_input(dy, w, y.shape, **params)
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-11 * (1 + np.abs(expected).max()),
                               err_msg=f"{params} output_padding={output_padding}")


def test_gradients_through_padding_modes_by_hand():
    # x = [a, b, c]; a 1-tap kernel of 1 over 5 padded positions: dx counts how often each element
    # is copied into the padded signal.
    ones = np.ones((1, 5, 1))
    kernel = np.ones((1, 1, 1))
    cases = {
        "zeros": [1, 1, 1],  # [0, a, b, c, 0]
        "reflect": [1, 3, 1],  # [b, a, b, c, b]
        "symmetric": [2, 1, 2],  # [a, a, b, c, c]
        "replicate": [2, 1, 2],  # [a, a, b, c, c]
        "circular": [2, 1, 2],  # [c, a, b, c, a]
    }
    for mode, counts in cases.items():
        dx = nc.conv_backprop_input(ones, kernel, (1, 3, 1), padding=1, padding_mode=mode)
        np.testing.assert_array_equal(dx[0, :, 0], counts, err_msg=mode)
    dx = nc.conv_backprop_input(ones, kernel, (1, 3, 1), padding=1, padding_mode="constant", pad_value=5.0)
    np.testing.assert_array_equal(dx[0, :, 0], [1, 1, 1])  # the constant gets no gradient
    # pad 2 on a length-3 input, two taps: reflect [c, b, a, b, c, b, a]
    dy = np.arange(1.0, 7.0).reshape(1, 6, 1)
    dx = nc.conv_backprop_input(dy, np.ones((2, 1, 1)), (1, 3, 1), padding=2, padding_mode="reflect")
    # padded position p feeds outputs p-1 and p (when in range): weight(p) = dy[p-1] + dy[p]
    weight = [1, 1 + 2, 2 + 3, 3 + 4, 4 + 5, 5 + 6, 6]
    source = [2, 1, 0, 1, 2, 1, 0]
    expected = np.zeros(3)
    for wgt, s in zip(weight, source):
        expected[s] += wgt
    np.testing.assert_array_equal(dx[0, :, 0], expected)


def test_backprop_filter_through_flip_and_kernel_format_by_hand():
    # 1-D, x = [1, 2, 3, 4], kernel of 2 taps, valid: y[i] = w0 x[i] + w1 x[i+1] (flip: swapped)
    x = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1)
    dy = np.array([1.0, 10.0, 100.0]).reshape(1, 3, 1)
    dw = nc.conv_backprop_filter(x, dy, (2, 1, 1))
    np.testing.assert_allclose(dw[:, 0, 0], [1 + 20 + 300, 2 + 30 + 400])
    dw = nc.conv_backprop_filter(x, dy, (2, 1, 1), flip=True)
    np.testing.assert_allclose(dw[:, 0, 0], [2 + 30 + 400, 1 + 20 + 300])
    dw = nc.conv_backprop_filter(x, dy, (1, 1, 2), kernel_format="OIW")
    np.testing.assert_allclose(dw[0, 0], [1 + 20 + 300, 2 + 30 + 400])
