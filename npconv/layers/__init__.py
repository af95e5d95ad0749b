"""Keras 3 layers on npconv: same names, arguments, defaults, weight shapes and ``get_weights()`` order.

>>> import numpy as np
>>> from npconv import layers
>>> x = layers.Input((8, 8, 3))
>>> y = layers.SeparableConv2D(4, 3, padding="same", depth_multiplier=2)(x)
>>> y.shape, [w.shape for w in y.node.layer.get_weights()]
((None, 8, 8, 4), [(3, 3, 3, 2), (1, 1, 6, 4), (4,)])
"""

from .base import Input, InputLayer, Layer, Variable
from .convolutional import (
    Conv1D,
    Conv1DTranspose,
    Conv2D,
    Conv2DTranspose,
    Conv3D,
    Conv3DTranspose,
    DepthwiseConv1D,
    DepthwiseConv2D,
    SeparableConv1D,
    SeparableConv2D,
)
from .core import (
    Activation,
    Add,
    Concatenate,
    Dense,
    Dropout,
    Flatten,
    ReLU,
    ZeroPadding1D,
    ZeroPadding2D,
    ZeroPadding3D,
)
from .normalization import BatchNormalization
from .pooling import (
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
)

__all__ = [
    "Activation",
    "Add",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "BatchNormalization",
    "Concatenate",
    "Conv1D",
    "Conv1DTranspose",
    "Conv2D",
    "Conv2DTranspose",
    "Conv3D",
    "Conv3DTranspose",
    "Dense",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "Dropout",
    "Flatten",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "Input",
    "InputLayer",
    "Layer",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "ReLU",
    "SeparableConv1D",
    "SeparableConv2D",
    "Variable",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
]
