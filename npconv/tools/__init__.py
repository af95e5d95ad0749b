"""Tools that work on whole models: feature maps of any layer, BatchNormalization folding, channel pruning.

- :func:`feature_maps`: every (or some) layer's output for an input, ``{layer name: array}``;
- :func:`fuse_conv_bn`, :func:`fuse_model`: BatchNormalization folded into the convolution before it
  (same inference outputs, one layer less);
- :func:`prune_channels`: the lowest-L1-norm filters of the convolutions removed, with the inputs
  that read them, and a report of parameters and multiply-adds saved.

Each returns new layers or models; the ones given are never modified.

>>> import numpy as np, npconv as nc
>>> from npconv import layers, tools
>>> nc.set_random_seed(0)
>>> model = nc.Sequential([layers.Input((16, 16, 1)), layers.Conv2D(8, 3, use_bias=False),
...                        layers.BatchNormalization(), layers.ReLU(), layers.MaxPooling2D(),
...                        layers.Conv2D(16, 3, activation="relu"), layers.Flatten(), layers.Dense(10)])
>>> fused, fusion = tools.fuse_model(model)
>>> print(fusion)                                          # doctest: +ELLIPSIS
fused 1 BatchNormalization layer(s) into the layer before
  batch_normalization... -> conv2d...
>>> pruned, report = tools.prune_channels(fused, 0.25)
>>> report.params, pruned.count_params()
((5258, 3730), 3730)
>>> {name: maps.shape for name, maps in tools.feature_maps(pruned, np.zeros((1, 16, 16, 1)), layers=[0, 2]).items()}  # doctest: +ELLIPSIS
{'conv2d...': (1, 14, 14, 6), 'max_pooling2d...': (1, 7, 7, 6)}
"""

from .features import feature_maps
from .fusion import FusionReport, fuse_conv_bn, fuse_model
from .pruning import LayerCost, PruningReport, l1_norms, layer_macs, prune_channels

__all__ = [
    "FusionReport",
    "LayerCost",
    "PruningReport",
    "feature_maps",
    "fuse_conv_bn",
    "fuse_model",
    "l1_norms",
    "layer_macs",
    "prune_channels",
]
