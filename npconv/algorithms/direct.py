"""``direct``: the readable sliding-window convolution.

For every kernel tap, take the strided view of the input that this tap sees (one view covers all
output positions at once) and add ``view @ w[tap]`` to the output:

    y[n, o, g, :] = sum over taps t, channels c of  xp[n, o*stride + t*dilation, g, c] * w[g, t, c, :]

No temporary larger than the output is made.  It is the reference the other algorithms are checked
against and the fastest choice for tiny problems; ``gemm`` wins as soon as there is real work.
"""

from __future__ import annotations

import numpy as np

from .._spec import ConvSpec
from ._common import full_ranges, tap_window, taps


def _grouped(array: np.ndarray, groups: int) -> np.ndarray:
    """Split the channel axis into ``(groups, channels_per_group)``."""
    return array.reshape(*array.shape[:-1], groups, array.shape[-1] // groups)


def forward(xp: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    out = np.zeros((spec.batch, *spec.out_spatial, spec.groups, spec.out_per_group), spec.dtype)
    xg = _grouped(xp, spec.groups)
    for tap in taps(spec):
        window = tap_window(xg, spec, tap, full_ranges(spec))
        out += np.einsum("...gc,gco->...go", window, w[(slice(None), *tap)])
    return out.reshape(*out.shape[:-2], spec.out_channels)


def backward_input(dy: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """Gradient w.r.t. the padded input: each tap scatters ``dy @ w[tap].T`` back onto its window."""
    dxg = np.zeros((spec.batch, *spec.padded_spatial, spec.groups, spec.in_per_group), spec.dtype)
    dy = _grouped(dy, spec.groups)
    for tap in taps(spec):
        window = tap_window(dxg, spec, tap, full_ranges(spec))
        window += np.einsum("...go,gco->...gc", dy, w[(slice(None), *tap)])
    return dxg.reshape(*dxg.shape[:-2], spec.in_channels)


def backward_weight(xp: np.ndarray, dy: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """Gradient w.r.t. the kernel: per tap, correlate its window with ``dy`` over all positions."""
    dw = np.empty((spec.groups, *spec.kernel_spatial, spec.in_per_group, spec.out_per_group), spec.dtype)
    xg, dy = _grouped(xp, spec.groups), _grouped(dy, spec.groups)
    axes = "nxyz"[: spec.rank + 1]  # batch and spatial dims
    for tap in taps(spec):
        window = tap_window(xg, spec, tap, full_ranges(spec))
        dw[(slice(None), *tap)] = np.einsum(f"{axes}gc,{axes}go->gco", window, dy)
    return dw


def cost(spec: ConvSpec, direction: str = "forward") -> float:
    """Seconds (the same for each direction): einsum runs at a few GFLOP/s, plus a per-tap overhead."""
    return spec.taps * 2e-5 + spec.flops / 2e9
