"""Optional dependencies (the ``image`` and ``plot`` extras), imported only when a function needs them."""

from __future__ import annotations

import importlib

from ._spec import _is_int, received

_EXTRAS = {"PIL": ("Pillow", "image"), "matplotlib": ("matplotlib", "plot")}


def require(module: str, feature: str):
    """Import ``module`` (``"PIL"`` or ``"matplotlib"``) or raise an ImportError saying which extra to
    install for ``feature``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package, extra = _EXTRAS[module.split(".")[0]]
        raise ImportError(
            f"{feature} needs {package}, which is not installed. Install it with: pip install \"npconv[{extra}]\""
        ) from None


def new_figure(**figure_kwargs):
    """A matplotlib Figure on the Agg canvas: no pyplot, no global state, no screen needed."""
    require("matplotlib", "plotting")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(**figure_kwargs)
    FigureCanvasAgg(figure)
    return figure


def positive_int(value, name: str) -> int:
    """An int >= 1 (figure sizes, counts, frame intervals), else a ValueError naming ``name``."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"Invalid value for argument `{name}`: expected an int >= 1. {received(**{name: value})}")
    return int(value)
