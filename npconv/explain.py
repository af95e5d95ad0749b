"""``nc.explain``: what a convolution will do, before doing it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._spec import ConvSpec, check_dtype, make_spec
from .algorithms import AUTO_WORKSPACE_RATIO, candidates, gathered_spec, over_memory, select


@dataclass(frozen=True)
class Explanation:
    """Resolved facts about one convolution call; ``str()`` gives the readable report."""

    spec: ConvSpec
    input_shape: tuple[int, ...]
    kernel_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    flops: int
    memory_bytes: int
    algorithm: str
    candidates: dict[str, float]
    over_memory: tuple[str, ...] = ()  # candidates auto passes over for their workspace

    def __str__(self) -> str:
        spec = self.spec
        lines = [
            f"convolution: {spec.rank}-D, input {self.input_shape} -> output {self.output_shape}, "
            f"kernel {self.kernel_shape}",
            f"  layout: {'channels_last' if spec.channels_last else 'channels_first'}, kernel "
            f"{'spatial-first (HWIO)' if spec.kernel_spatial_first else 'channels-first (OIHW)'}, "
            f"groups={spec.groups}, dtype {spec.out_dtype} (computed in {spec.dtype})",
            f"  padding mode: {spec.padding_mode}" + (f" (value {spec.pad_value:g})" if spec.padding_mode == "constant" else ""),
            "  per spatial dim: out = (n + before + after - dilation*(k-1) - 1) // stride + 1",
        ]
        for i, (n, (lo, hi), k, s, d, o) in enumerate(
            zip(spec.in_spatial, self.padding, spec.kernel_spatial, spec.stride, spec.dilation, spec.out_spatial)
        ):
            lines.append(
                f"    dim {i}: n={n}, padding=({lo}, {hi}), k={k}, stride={s}, dilation={d}: "
                f"({n} + {lo} + {hi} - {d}*({k}-1) - 1) // {s} + 1 = {o}"
            )
        lines.append(f"  FLOPs: {self.flops:,} ({self.flops / 1e9:.3g} GFLOP)")
        gathered = gathered_spec(spec)
        if gathered is not None:
            lines.append(
                f"  a stride exceeds the kernel's extent: computed on the windows alone, gathered into "
                f"{gathered.in_spatial} with stride {gathered.stride}"
            )
        lines.append(f"  memory: {self.memory_bytes:,} bytes (input, output, kernel and workspace)")
        ranked = sorted(self.candidates.items(), key=lambda item: item[1])
        lines.append("  algorithms (estimated time): " + ", ".join(f"{name} {cost * 1e3:.3g} ms" for name, cost in ranked))
        budget = " among those within auto's memory budget" if self.over_memory else ""
        lines.append(f"  auto picks: {self.algorithm} (lowest estimated time{budget})")
        if self.over_memory:
            lines.append(
                f"  passed over for memory (workspace > {AUTO_WORKSPACE_RATIO}x input + output): {', '.join(self.over_memory)}"
            )
        return "\n".join(lines)


def explain(x_shape, w_shape, *, dtype=np.float32, **conv_params) -> Explanation:
    """Report what ``nc.conv(x, w, **conv_params)`` would do for arrays of these shapes.

    The report has the resolved per-side padding, the output shape with the formula filled in, the
    FLOPs, the memory, every eligible algorithm's estimated time and the one ``"auto"`` picks.

    >>> import npconv as nc
    >>> e = nc.explain((1, 28, 28, 1), (3, 3, 1, 32), stride=2, padding="same")
    >>> e.output_shape, e.padding
    ((1, 14, 14, 32), ((0, 1), (0, 1)))
    >>> print(e)  # doctest: +ELLIPSIS
    convolution: 2-D, input (1, 28, 28, 1) -> output (1, 14, 14, 32), kernel (3, 3, 1, 32)
    ...
        dim 0: n=28, padding=(0, 1), k=3, stride=2, dilation=1: (28 + 0 + 1 - 1*(3-1) - 1) // 2 + 1 = 14
    ...
    """
    algorithm = conv_params.pop("algorithm", "auto")
    conv_params.pop("bias", None)  # a bias changes nothing reported here
    dtype = check_dtype(dtype)
    spec = make_spec(x_shape, w_shape, dtypes=(dtype, dtype), **conv_params)
    chosen = select(spec, algorithm)
    item = spec.out_dtype.itemsize
    x_elems = spec.batch * spec.in_channels * int(np.prod(spec.in_spatial))
    y_elems = spec.batch * spec.out_channels * int(np.prod(spec.out_spatial))
    w_elems = spec.taps * spec.in_per_group * spec.out_channels
    computed = gathered_spec(spec) or spec  # the windows alone, where a stride exceeds the kernel
    workspace = chosen.workspace_bytes(computed) if spec.flops else 0
    if computed is not spec:
        workspace += computed.batch * math.prod(computed.in_spatial) * computed.in_channels * computed.dtype.itemsize
    memory = (x_elems + y_elems + w_elems) * item + workspace
    return Explanation(
        spec=spec,
        input_shape=spec.x_shape(),
        kernel_shape=spec.w_shape(),
        output_shape=spec.y_shape(),
        padding=spec.padding,
        flops=spec.flops,
        memory_bytes=int(memory),
        algorithm=chosen.name,
        candidates=candidates(spec),
        over_memory=tuple(sorted(over_memory(spec))),
    )
