"""Figures saved to files, no screen needed (the ``plot`` extra, ``pip install "npconv[plot]"``):
kernel grids, feature-map grids and training-history curves.

Every function returns a matplotlib ``Figure`` drawn on the Agg canvas (pyplot and its global
state are never touched, so nothing depends on the ``MPLBACKEND`` or a display) and, given
``path``, saves it there (the format follows the extension: ``.png``, ``.svg``, ``.pdf``, ...).

>>> from npconv import kernels, plot
>>> plot.plot_kernels({"sobel_x": kernels.sobel_x(), "gabor": kernels.gabor(15)}, "kernels.png")  # doctest: +SKIP
<Figure size 640x320 with 2 Axes>
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path

import numpy as np

from ._extras import new_figure, positive_int
from ._files import atomic_write
from ._spec import _is_int, as_numeric_array, parse_data_format, received


def save_figure(figure, path, dpi: int) -> Path:
    """Save ``figure`` to ``path`` (the format from the extension) atomically: if saving fails, an
    existing file at ``path`` is left as it was.  Returns the path.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        The figure to save.
    path : str or os.PathLike
        Where; ``.png``, ``.svg``, ``.pdf``, ...
    dpi : int
        Resolution (dots per inch).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        ``dpi`` is not a positive int.
    """
    dpi = positive_int(dpi, "dpi")
    return atomic_write(path, lambda temporary: figure.savefig(temporary, dpi=dpi))


def _finish(figure, path, dpi: int):
    """Save ``figure`` to ``path`` when given; return it."""
    if path is not None:
        save_figure(figure, path, dpi)
    return figure


def _panels(count: int, ncols: int | None, panel_inches: float, **figure_kwargs):
    """A figure with ``count`` square-ish panels in a grid of ``ncols`` columns; unused cells removed."""
    ncols = min(count, ncols or math.ceil(math.sqrt(count)))
    nrows = math.ceil(count / ncols)
    figure = new_figure(figsize=(panel_inches * ncols, panel_inches * nrows + 0.3), layout="constrained", **figure_kwargs)
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    for extra in axes[count:]:
        extra.remove()
    return figure, axes[:count]


# --------------------------------------------------------------------------- kernels


def _named_kernels(kernels) -> list[tuple[str, np.ndarray]]:
    """(title, 2-D kernel) pairs from a dict, a list, or one 2-D / (kh, kw, n) / HWIO array."""
    if isinstance(kernels, dict):
        items = [(str(name), as_numeric_array(k, f"kernels[{name!r}]")) for name, k in kernels.items()]
    elif isinstance(kernels, (list, tuple)):
        items = [(f"kernel {i}", as_numeric_array(k, f"kernels[{i}]")) for i, k in enumerate(kernels)]
    else:
        array = as_numeric_array(kernels, "kernels")
        if array.ndim == 3:
            items = [(f"kernel {i}", array[:, :, i]) for i in range(array.shape[2])]
        elif array.ndim == 4:  # HWIO: a panel per (input channel, filter)
            items = [(f"in {c} / out {f}", array[:, :, c, f]) for c in range(array.shape[2]) for f in range(array.shape[3])]
        else:
            items = [("kernel", array)]
    bad = [(name, k.shape) for name, k in items if k.ndim != 2 or 0 in k.shape]
    if bad or not items:
        raise ValueError(
            "Invalid `kernels`: expected 2-D kernels (a dict or list of them, or a (kh, kw), (kh, kw, n) or "
            f"(kh, kw, in, out) array). Received: {bad[0][0]} with shape {bad[0][1]}" if bad else "Invalid `kernels`: empty."
        )
    return items


def plot_kernels(kernels, path=None, *, ncols: int | None = None, annotate: bool | None = None, max_kernels: int = 64, dpi: int = 100):
    """A grid of kernels, each on a diverging colour scale centred at 0 (red positive, blue negative).

    ``kernels``: one 2-D kernel, a list or ``{title: kernel}`` dict of them, a ``(kh, kw, n)`` stack,
    or a conv layer's HWIO weights ``(kh, kw, in, out)`` (a panel per input channel and filter, a
    row per input channel).  Values are written in when ``annotate`` (default: kernels up to 5x5).
    Only the first ``max_kernels`` are drawn.

    >>> from npconv import kernels
    >>> plot_kernels([kernels.sobel_x(), kernels.sobel_y()], "sobel.png")  # doctest: +SKIP
    <Figure size 520x290 with 2 Axes>
    """
    items = _named_kernels(kernels)[: positive_int(max_kernels, "max_kernels")]
    array = np.asarray(kernels) if not isinstance(kernels, (dict, list, tuple)) else None
    if ncols is None and array is not None and array.ndim == 4:
        ncols = array.shape[3]
    figure, axes = _panels(len(items), ncols if ncols is None else positive_int(ncols, "ncols"), 2.6 if len(items) < 4 else 1.8)
    for ax, (name, kernel) in zip(axes, items):
        values = kernel.astype(np.float64)
        bound = max(float(np.abs(values).max()), 1e-12)
        ax.imshow(values, cmap="RdBu_r", vmin=-bound, vmax=bound)
        if annotate or (annotate is None and max(values.shape) <= 5):
            size = 7 if max(values.shape) <= 3 else 5
            for (r, c), value in np.ndenumerate(values):
                ax.text(c, r, f"{value:.2g}", ha="center", va="center", fontsize=size, color="white" if abs(value) > 0.6 * bound else "black")
        ax.set_title(f"{name} ({values.shape[0]}x{values.shape[1]})", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    return _finish(figure, path, dpi)


# --------------------------------------------------------------------------- feature maps


def plot_feature_maps(maps, path=None, *, data_format: str = "channels_last", sample: int = 0, max_maps: int = 64, ncols: int = 8, cmap: str = "viridis", title: str | None = None, dpi: int = 100):
    """A grid of feature maps, one panel per channel, each with its own colour scale (a constant map's
    title says its value).

    ``maps``: a layer's output ``(N, H, W, C)`` (``sample`` picks the image), one image's maps
    ``(H, W, C)``, or a single ``(H, W)`` map; ``data_format="channels_first"`` for ``(N, C, H, W)``
    / ``(C, H, W)``.  Only the first ``max_maps`` channels are drawn.

    >>> plot_feature_maps(np.random.rand(1, 28, 28, 16), "maps.png")  # doctest: +SKIP
    <Figure size 1440x360 with 16 Axes>
    """
    maps = as_numeric_array(maps, "maps")
    channels_last = parse_data_format(data_format)
    if maps.ndim == 4:
        if not (_is_int(sample) and -maps.shape[0] <= sample < maps.shape[0]):
            raise ValueError(f"Invalid value for argument `sample`: the batch has {maps.shape[0]} images. {received(sample=sample)}")
        maps = maps[sample]
    if maps.ndim == 2:
        maps = maps[:, :, None] if channels_last else maps[None]
    if maps.ndim != 3 or 0 in maps.shape:
        raise ValueError(f"Invalid `maps`: expected (N, H, W, C), (H, W, C) or (H, W) feature maps (2-D spatial). Received: maps.shape={maps.shape}")
    if not channels_last:
        maps = np.moveaxis(maps, 0, -1)
    count = min(maps.shape[2], positive_int(max_maps, "max_maps"))
    figure, axes = _panels(count, positive_int(ncols, "ncols"), 1.8)
    for channel, ax in enumerate(axes):
        values = maps[:, :, channel].astype(np.float64)
        ax.imshow(values, cmap=cmap)
        constant = values.min() == values.max()  # one colour: say which value, or it reads as a blank panel
        ax.set_title(f"channel {channel}" + (f" (all {values.flat[0]:g})" if constant else ""), fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        figure.suptitle(title)
    return _finish(figure, path, dpi)


def plot_model_feature_maps(model, x, layer, path=None, *, sample: int = 0, max_maps: int = 64, ncols: int = 8, cmap: str = "viridis", dpi: int = 100):
    """The feature maps that ``layer`` of ``model`` computes for the input ``x[sample]`` (inference
    mode): :func:`npconv.tools.feature_maps`, then :func:`plot_feature_maps` in the layer's
    data_format, titled with the layer's name, kind and output shape.

    ``layer`` is a name, an index into ``model.layers`` or a layer object; its output must be 2-D
    feature maps ``(N, H, W, C)`` (or channels_first).  Only ``x[sample]`` is computed.

    >>> import npconv as nc
    >>> from npconv import layers
    >>> model = nc.Sequential([layers.Input((28, 28, 1)), layers.Conv2D(8, 3, name="conv")])
    >>> plot_model_feature_maps(model, np.random.rand(4, 28, 28, 1), "conv", "conv.png")  # doctest: +SKIP
    <Figure size 1440x360 with 8 Axes>
    """
    from .tools import feature_maps

    batch = x if isinstance(x, (list, tuple)) else [x]
    count = len(batch[0])
    if not (_is_int(sample) and -count <= sample < count):
        raise ValueError(f"Invalid value for argument `sample`: x holds {count} samples. {received(sample=sample)}")
    index = sample % count
    one = [np.asarray(a)[index : index + 1] for a in batch]
    (name, maps), = feature_maps(model, one if isinstance(x, (list, tuple)) else one[0], layers=[layer]).items()
    chosen = next(candidate for candidate in model.layers if candidate.name == name)
    if maps.ndim != 4:
        raise ValueError(
            f"Invalid value for argument `layer`: {name!r} ({type(chosen).__name__}) outputs shape {maps.shape[1:]} per sample, "
            f"not 2-D feature maps (H, W, C). {received(layer=layer)}"
        )
    data_format = getattr(chosen, "data_format", "channels_last")
    channels = maps.shape[1] if data_format == "channels_first" else maps.shape[-1]
    shown = min(channels, positive_int(max_maps, "max_maps"))
    title = f"{name} ({type(chosen).__name__}): {channels} maps of {'x'.join(map(str, maps.shape[2:] if data_format == 'channels_first' else maps.shape[1:3]))}"
    title += f", first {shown} shown" if shown < channels else ""
    return plot_feature_maps(maps, path, data_format=data_format, max_maps=max_maps, ncols=ncols, cmap=cmap, title=title, dpi=dpi)


# --------------------------------------------------------------------------- training history


def _history_dict(history) -> dict[str, list[float]]:
    """``{name: [value per epoch]}`` from a dict of lists or a Keras-style ``History`` (``.history``)."""
    history = getattr(history, "history", history)
    if not isinstance(history, dict) or not history:
        raise TypeError(f"Invalid type for argument `history`: expected a non-empty dict of lists or an object with `.history`. {received(history=history)}")
    for name, values in history.items():
        ok = isinstance(values, (list, tuple, np.ndarray)) and len(values) > 0
        if not (ok and all(isinstance(v, numbers.Real) for v in values)):
            raise ValueError(f"Invalid history: {name!r} must be a non-empty list of numbers, one per epoch. Received: history[{name!r}]={values!r}")
    return {str(name): [float(v) for v in values] for name, values in history.items()}


def plot_history(history, path=None, *, metrics=None, title: str | None = None, dpi: int = 100):
    """Training curves, one panel per metric with its ``val_`` twin: ``history`` is Keras'
    ``History.history`` shape, ``{"loss": [...], "val_loss": [...], "accuracy": [...], ...}`` (or the
    ``History`` object).  ``metrics`` picks and orders the panels (default: every metric, loss first).

    >>> plot_history({"loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7]}, "history.png")  # doctest: +SKIP
    <Figure size 400x330 with 1 Axes>
    """
    values = _history_dict(history)
    names = sorted({name.removeprefix("val_") for name in values}, key=lambda n: (n != "loss", n))
    if metrics is not None:
        unknown = [m for m in metrics if m not in names] if isinstance(metrics, (list, tuple)) else [metrics]
        if unknown:
            raise ValueError(f"Invalid value for argument `metrics`: {unknown} not in the history ({names}). {received(metrics=metrics)}")
        names = list(metrics)
    figure, axes = _panels(len(names), len(names), 4.0)
    from matplotlib.ticker import MaxNLocator  # (after _panels, which says how to install matplotlib)

    for ax, name in zip(axes, names):
        for key, style in ((name, "-"), (f"val_{name}", "--")):
            if key in values:
                ax.plot(range(1, len(values[key]) + 1), values[key], style, marker="o", markersize=3, label="validation" if key != name else "training")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    return _finish(figure, path, dpi)
