"""npconv: every convolution of TensorFlow, PyTorch, SciPy and OpenCV in one NumPy-native package.

>>> import numpy as np, npconv as nc
>>> nc.conv(np.ones((1, 5, 5, 1)), np.ones((3, 3, 1, 1)), padding="same")[0, :, :, 0]
array([[4., 6., 6., 6., 4.],
       [6., 9., 9., 9., 6.],
       [6., 9., 9., 9., 6.],
       [6., 9., 9., 9., 6.],
       [4., 6., 6., 6., 4.]])
"""

from . import callbacks, datasets, image, initializers, kernels, layers, losses, optimizers, plot, shapes, steps, tools
from ._allocator import tune_malloc
from .algorithms import algorithms
from .algorithms.calibration import calibrate
from .explain import Explanation, explain
from .initializers import set_random_seed
from .layers import Input
from .models import Model, Sequential
from .ops import (
    conv,
    conv1d,
    conv2d,
    conv3d,
    conv_backprop_filter,
    conv_backprop_input,
    conv_transpose,
    depthwise_conv2d,
    separable_conv2d,
)
from .shapes import output_shape, receptive_field
from .steps import conv_steps
from ._threads import get_num_threads, set_num_threads
from .tools import feature_maps, fuse_conv_bn, fuse_model, prune_channels

__version__ = "0.1.0"

__all__ = [
    "Explanation",
    "Input",
    "Model",
    "Sequential",
    "algorithms",
    "calibrate",
    "callbacks",
    "conv",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_backprop_filter",
    "conv_backprop_input",
    "conv_steps",
    "conv_transpose",
    "datasets",
    "depthwise_conv2d",
    "explain",
    "feature_maps",
    "fuse_conv_bn",
    "fuse_model",
    "get_num_threads",
    "image",
    "initializers",
    "kernels",
    "layers",
    "losses",
    "optimizers",
    "output_shape",
    "plot",
    "prune_channels",
    "receptive_field",
    "separable_conv2d",
    "set_num_threads",
    "set_random_seed",
    "shapes",
    "steps",
    "tools",
    "tune_malloc",
]
