"""Convolution step by step: every output element's window, products and sum, as text, as data and
as a sliding-window GIF.

For a small input, :func:`conv_steps` lists what :func:`npconv.conv` computes for each output
position ``o`` (per spatial dim ``window = padded[o * stride : o * stride + dilation * (k - 1) + 1 :
dilation]``)::

    y[o] = sum(window * kernel)         (summed over the kernel taps and the channels)

Seed tutorial 004's by-hand example (5x5x3 volume, edge-detection filter on each channel, zero
padding P=1, stride S=2, see :func:`npconv.demo.seed_004_example`)::

    >>> from npconv.demo import seed_004_example
    >>> example = seed_004_example()
    >>> steps = conv_steps(example["volume"], example["kernel"], stride=2, padding=1)
    >>> bool((steps.output == example["by_hand"]).all()), len(steps)
    (True, 9)
    >>> print(steps[0])
    y[0, 0]: rows -1..1, cols -1..1 (stride 2x2, padding outside the input)
      c0: 0*(-1) + 0*(-1) + 0*(-1) + 0*(-1) + 2*8 + 1*(-1) + 0*(-1) + 0*(-1) + 0*(-1) = 15
      c1: 0*(-1) + 0*(-1) + 0*(-1) + 0*(-1) + 2*8 + 2*(-1) + 0*(-1) + 2*(-1) + 1*(-1) = 11
      c2: 0*(-1) + 0*(-1) + 0*(-1) + 0*(-1) + 2*8 + 2*(-1) + 0*(-1) + 2*(-1) + 1*(-1) = 11
      sum = 37
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _padding
from ._extras import new_figure, positive_int, require
from ._files import atomic_write
from ._spec import as_numeric_array, make_spec, received

MAX_TERMS = 100_000
""":func:`conv_steps` refuses inputs whose outputs times taps exceed this (it is for small examples)."""


def _num(value: float) -> str:
    return f"{value:g}" if value >= 0 else f"({value:g})"


@dataclass(frozen=True, eq=False)
class Step:
    """One output element: its index, the input coordinates of its window (one array per spatial
    dim; outside ``0 .. n - 1`` is padding), the window ``(*k, C)``, the kernel it meets, the
    products and their sum."""

    index: tuple[int, ...]
    coords: tuple[np.ndarray, ...]
    window: np.ndarray
    kernel: np.ndarray
    products: np.ndarray
    total: float
    stride: tuple[int, ...]
    in_spatial: tuple[int, ...]

    def __str__(self) -> str:
        names = ("rows", "cols") if len(self.index) == 2 else ("positions",)
        spans = []
        for name, coords in zip(names, self.coords):
            step = coords[1] - coords[0] if len(coords) > 1 else 1
            spans.append(f"{name} {coords[0]}..{coords[-1]}" + (f" step {step}" if step != 1 else ""))
        outside = any(c.min() < 0 or c.max() >= n for c, n in zip(self.coords, self.in_spatial))
        note = f"stride {'x'.join(map(str, self.stride))}" + (", padding outside the input" if outside else "")
        lines = [f"y[{', '.join(map(str, self.index))}]: {', '.join(spans)} ({note})"]
        for c in range(self.window.shape[-1]):
            terms = " + ".join(f"{_num(x)}*{_num(k)}" for x, k in zip(self.window[..., c].ravel(), self.kernel[..., c].ravel()))
            lines.append(f"  c{c}: {terms} = {self.products[..., c].sum():g}")
        lines.append(f"  sum = {self.total:g}")
        return "\n".join(lines)


@dataclass(frozen=True, eq=False)
class ConvSteps:
    """:func:`conv_steps`' result: ``steps`` (one :class:`Step` per output element, in row-major
    order), the ``output`` they add up to, and what went in (``kernel`` is the one multiplied: rotated
    180 degrees for ``flip=True``; ``padded`` is the padded input, ``(*spatial, C)``)."""

    input: np.ndarray
    kernel: np.ndarray
    padded: np.ndarray
    padding: tuple[tuple[int, int], ...]
    padding_mode: str
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    steps: tuple[Step, ...]
    output: np.ndarray

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, index) -> Step:
        return self.steps[index]

    def __iter__(self):
        return iter(self.steps)

    def __str__(self) -> str:
        header = (
            f"convolution step by step: input {self.input.shape}, kernel {self.kernel.shape}, stride {self.stride}, "
            f"dilation {self.dilation}, padding {self.padding} ({self.padding_mode}) -> output {self.output.shape}"
        )
        return "\n".join([header, *map(str, self.steps), "output:", str(self.output)])

    def to_dicts(self) -> list[dict]:
        """One plain dict per step (index, window coordinates, window, products, sum): for notebooks,
        ``pandas.DataFrame`` or JSON."""
        return [
            {
                "index": step.index,
                "coords": tuple(c.tolist() for c in step.coords),
                "window": step.window.tolist(),
                "products": step.products.tolist(),
                "sum": step.total,
            }
            for step in self.steps
        ]

    def save_gif(self, path, *, interval_ms: int = 800, dpi: int = 80) -> Path:
        """Save the sliding-window animation as a GIF, one frame per output element: each padded
        input channel with the window outlined, the kernel, and the output filling in (matplotlib's
        Pillow writer; needs the ``plot`` extra).

        >>> conv_steps(np.arange(16.0).reshape(4, 4), np.ones((2, 2))).save_gif("steps.gif")  # doctest: +SKIP
        PosixPath('steps.gif')
        """
        return _save_gif(self, Path(path), interval_ms, dpi)


def _as_2d_channels(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, w) as ``(*spatial, C)`` and ``(*k, C)``: 1-D ``(n,)``, 2-D ``(h, w)`` or ``(h, w, C)``."""
    if x.ndim != w.ndim or x.ndim not in (1, 2, 3) or (x.ndim == 3 and x.shape[2] != w.shape[2]):
        raise ValueError(
            "conv_steps takes a 1-D (n,) input with a (k,) kernel, a 2-D (h, w) input with a (kh, kw) kernel, "
            f"or an (h, w, C) volume with a (kh, kw, C) kernel. Received: x.shape={x.shape}, w.shape={w.shape}"
        )
    return (x, w) if x.ndim == 3 else (x[..., None], w[..., None])


def conv_steps(x, w, *, stride=1, padding="valid", dilation=1, padding_mode="zeros", pad_value=0.0, flip=False) -> ConvSteps:
    """Every output element of ``nc.conv`` for one small input and one filter: window, products, sum.

    ``x`` is ``(n,)``, ``(h, w)`` or an ``(h, w, C)`` volume; ``w`` is ``(k,)``, ``(kh, kw)`` or
    ``(kh, kw, C)`` (one filter summed over the channels).  The keyword arguments are
    :func:`npconv.conv`'s, and ``result.output`` equals ``nc.conv``'s single output map.  ``print(result)``
    gives the whole computation; ``result.to_dicts()`` the same as data; ``result.save_gif(path)`` the
    animation.

    >>> s = conv_steps(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, -1.0]))
    >>> s.output
    array([-1., -1., -1.])
    >>> print(s[2])
    y[2]: positions 2..3 (stride 1)
      c0: 3*1 + 4*(-1) = -1
      sum = -1
    """
    x = as_numeric_array(x, "x")
    w = as_numeric_array(w, "w")
    volume, kernel = _as_2d_channels(x, w)
    rank = volume.ndim - 1
    spec = make_spec(
        (1, *volume.shape),
        (*kernel.shape, 1),
        stride=stride,
        padding=padding,
        dilation=dilation,
        padding_mode=padding_mode,
        pad_value=pad_value,
        flip=flip,
        dtypes=(np.float64, np.float64),
    )
    taps = int(np.prod(spec.out_spatial)) * kernel.size
    if taps > MAX_TERMS:
        raise ValueError(
            f"conv_steps is for small examples: this one has {taps:,} products (limit {MAX_TERMS:,}). "
            f"{received(x_shape=x.shape, w_shape=w.shape, stride=stride)}"
        )
    kernel = kernel.astype(np.float64)
    if spec.flip:
        kernel = kernel[(*[slice(None, None, -1)] * rank, slice(None))]
    padded = _padding.pad(volume[None], spec.padding, spec.padding_mode, spec.pad_value, np.float64)[0]
    extent = [d * (k - 1) + 1 for k, d in zip(spec.kernel_spatial, spec.dilation)]
    steps, output = [], np.empty(spec.out_spatial)
    for index in np.ndindex(*spec.out_spatial):
        origin = [o * s for o, s in zip(index, spec.stride)]
        window = padded[tuple(slice(a, a + e, d) for a, e, d in zip(origin, extent, spec.dilation))]
        products = window * kernel
        output[index] = total = float(products.sum())
        coords = tuple(np.arange(a, a + e, d) - lo for a, e, d, (lo, _) in zip(origin, extent, spec.dilation, spec.padding))
        steps.append(Step(tuple(index), coords, window, kernel, products, total, spec.stride, spec.in_spatial))
    return ConvSteps(x, kernel if x.ndim == 3 else kernel[..., 0], padded, spec.padding, spec.padding_mode, spec.stride, spec.dilation, tuple(steps), output)


# --------------------------------------------------------------------------- animation


def _save_gif(steps: ConvSteps, path: Path, interval_ms: int, dpi: int) -> Path:
    interval_ms, dpi = positive_int(interval_ms, "interval_ms"), positive_int(dpi, "dpi")
    require("matplotlib", "npconv.steps.ConvSteps.save_gif")
    from matplotlib.patches import Rectangle

    as_2d = (lambda a: a[None]) if len(steps.stride) == 1 else (lambda a: a)  # 1-D: one row
    padded = as_2d(steps.padded)
    kernel = as_2d(steps.kernel if steps.kernel.ndim == padded.ndim else steps.kernel[..., None])
    output = as_2d(steps.output)
    (top, _), (left, _) = ((0, 0), *steps.padding) if len(steps.padding) == 1 else steps.padding
    channels = padded.shape[-1]
    if len(steps.stride) == 1:  # input, kernel and output stacked, full width
        figure = new_figure(figsize=(max(5.0, 0.45 * padded.shape[1]), 1.6 * (2 * channels + 1)), layout="constrained")
        grid = figure.add_gridspec(2 * channels + 1, 1)
        input_cells, kernel_cells, output_cell = (grid[2 * c, 0] for c in range(channels)), (grid[2 * c + 1, 0] for c in range(channels)), grid[-1, 0]
    else:  # a column per channel (input above its kernel), the output on the right
        figure = new_figure(figsize=(2.6 * (channels + 1), 5.4), layout="constrained")
        grid = figure.add_gridspec(2, channels + 1)
        input_cells, kernel_cells, output_cell = (grid[0, c] for c in range(channels)), (grid[1, c] for c in range(channels)), grid[:, channels]
    windows = []
    for c, input_cell, kernel_cell in zip(range(channels), input_cells, kernel_cells):
        axes = figure.add_subplot(input_cell)
        _grid_image(axes, padded[..., c], f"input c{c} (padded)", cmap="Blues")
        inside = Rectangle((left - 0.5, top - 0.5), padded.shape[1] - 2 * left, padded.shape[0] - 2 * top, fill=False, lw=1.5, ls="--", ec="0.4")
        axes.add_patch(inside)
        taps = [axes.add_patch(Rectangle((0, 0), 1, 1, fill=True, alpha=0.35, fc="tab:red", ec="tab:red", lw=2)) for _ in range(kernel[..., c].size)]
        windows.append(taps)
        _grid_image(figure.add_subplot(kernel_cell), kernel[..., c], f"kernel c{c}", cmap="RdBu_r", symmetric=True)
    out_axes = figure.add_subplot(output_cell)
    shown = np.full(output.shape, np.nan)
    image = _grid_image(out_axes, shown, "output", cmap="Greens", limits=(min(0.0, output.min()), max(output.max(), 1e-12)))
    texts = {}
    marker = out_axes.add_patch(Rectangle((-0.5, -0.5), 1, 1, fill=False, ec="tab:red", lw=2.5))
    title = figure.suptitle(" ")
    figure.canvas.draw()
    figure.set_layout_engine("none")  # keep the first frame's layout: redrawing stays fast

    def frame(step):
        """Move the windows and the marker to ``step``, show its output value."""
        index = (0, *step.index) if len(step.index) == 1 else step.index
        rows, cols = ((np.zeros(1, int), *step.coords) if len(step.coords) == 1 else step.coords)
        for taps in windows:
            for tap, (r, cc) in zip(taps, ((r, cc) for r in rows for cc in cols)):
                tap.set_xy((cc + left - 0.5, r + top - 0.5))
        shown[index] = output[index]
        image.set_data(shown)
        texts[index] = texts.get(index) or out_axes.text(index[1], index[0], f"{output[index]:g}", ha="center", va="center", fontsize=9)
        marker.set_xy((index[1] - 0.5, index[0] - 0.5))
        title.set_text(f"y[{', '.join(map(str, step.index))}] = sum(window * kernel) = {step.total:g}")

    return atomic_write(path, lambda temporary: _write_frames(steps, figure, temporary, interval_ms, dpi, frame))


def _write_frames(steps: ConvSteps, figure, path: Path, interval_ms: int, dpi: int, draw_step) -> None:
    """One frame per step of ``steps``, drawn by ``draw_step(step)``, written as a GIF to ``path``."""
    from matplotlib.animation import PillowWriter

    writer = PillowWriter(fps=1000.0 / interval_ms)
    with writer.saving(figure, str(path), dpi):
        for step in steps.steps:
            draw_step(step)
            writer.grab_frame()


def _grid_image(axes, values: np.ndarray, title: str, cmap: str, symmetric: bool = False, limits=None):
    """A small matrix drawn cell by cell, its values written in when it is small enough to read."""
    if symmetric:
        bound = max(float(np.abs(values).max()), 1e-12)
        limits = (-bound, bound)
    image = axes.imshow(values, cmap=cmap, alpha=0.6, vmin=None if limits is None else limits[0], vmax=None if limits is None else limits[1])
    if values.size <= 144 and np.isfinite(values).all():
        for (r, c), value in np.ndenumerate(values):
            axes.text(c, r, f"{value:g}", ha="center", va="center", fontsize=8)
    axes.set_title(title, fontsize=9)
    axes.set_xticks([])
    axes.set_yticks([])
    return image
