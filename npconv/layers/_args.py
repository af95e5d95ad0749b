"""Validation of layer constructor arguments, with Keras' wording (``Received: strides=0``)."""

from __future__ import annotations

import numbers

from .._spec import normalize_ints, received

SPATIAL_FIRST_KERNEL = {1: "WIO", 2: "HWIO", 3: "DHWIO"}  # Keras kernels are (*k, in, out) in every data_format


def positive_int(value, name: str) -> int:
    """A strictly positive int (``filters``, ``units``, ``depth_multiplier``, ...)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a strictly positive int. {received(**{name: value})}"
        )
    return int(value)


def int_tuple(value, rank: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """An int or ``rank`` ints, each ``>= minimum`` (``kernel_size``, ``strides``, ``dilation_rate``)."""
    return normalize_ints(value, rank, name, minimum=minimum)


def padding_mode(value, allowed=("valid", "same")) -> str:
    """Keras' string padding, case-insensitive."""
    if not isinstance(value, str) or value.lower() not in allowed:
        raise ValueError(f"Invalid value for argument `padding`. Expected one of {allowed}. {received(padding=value)}")
    return value.lower()


def data_format(value) -> str:
    """``"channels_last"`` (also for ``None``, Keras' default image_data_format) or ``"channels_first"``."""
    if value is None:
        return "channels_last"
    if value not in ("channels_last", "channels_first"):
        raise ValueError(
            "Invalid value for argument `data_format`. Expected 'channels_last' or 'channels_first'. "
            f"{received(data_format=value)}"
        )
    return value


def fraction(value, name: str) -> float:
    """A float in ``[0, 1)`` (dropout ``rate``)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0 <= value < 1:
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected a float value between 0 and 1 (1 excluded). "
            f"{received(**{name: value})}"
        )
    return float(value)


def channel_axis(data_format_value: str, ndim: int) -> int:
    """-1 (Keras' spelling in error messages) or 1."""
    return -1 if data_format_value == "channels_last" else 1


def spatial_axes(data_format_value: str, ndim: int) -> tuple[int, ...]:
    return tuple(range(1, ndim - 1)) if data_format_value == "channels_last" else tuple(range(2, ndim))
