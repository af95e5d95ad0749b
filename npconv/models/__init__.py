"""Models: the functional :class:`Model` and :class:`Sequential`, with Keras 3's training API."""

from .model import Model
from .sequential import Sequential

__all__ = ["Model", "Sequential"]
