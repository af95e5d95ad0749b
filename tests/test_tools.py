"""npconv.tools: BatchNormalization folding, L1-norm channel pruning and feature maps, each checked
against an independent computation (the unfused model, the original model with the pruned inputs
zeroed by hand, the layers called one by one)."""

import numpy as np
import pytest
from keras_models import parity_2d, seeds_cnn

import npconv as nc
from npconv import initializers, layers, tools

RNG = np.random.default_rng(6)


def randomize_batch_norms(model, rng=RNG):
    """Non-trivial gamma, beta and moving statistics in every BatchNormalization of ``model``."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            values = {"gamma": rng.uniform(0.5, 2.0, n), "beta": rng.normal(size=n), "moving_mean": rng.normal(size=n), "moving_variance": rng.uniform(0.2, 3.0, n)}
            layer.set_weights([values[w.name] for w in layer.weights])


def relative_error(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


# --------------------------------------------------------------------------- fusion

SPATIAL = {1: (9,), 2: (7, 6), 3: (5, 4, 5)}
CONV_LAYERS = {
    "Conv1D": lambda **kw: layers.Conv1D(5, 3, strides=2, **kw),
    "Conv2D": lambda **kw: layers.Conv2D(5, 3, padding="same", dilation_rate=2, **kw),
    "Conv3D": lambda **kw: layers.Conv3D(4, 2, **kw),
    "Conv2D_grouped": lambda **kw: layers.Conv2D(6, 3, groups=3, **kw),
    "Conv1DTranspose": lambda **kw: layers.Conv1DTranspose(5, 3, strides=2, **kw),
    "Conv2DTranspose": lambda **kw: layers.Conv2DTranspose(5, 3, strides=2, padding="same", **kw),
    "Conv3DTranspose": lambda **kw: layers.Conv3DTranspose(4, 2, **kw),
    "DepthwiseConv1D": lambda **kw: layers.DepthwiseConv1D(3, depth_multiplier=2, **kw),
    "DepthwiseConv2D": lambda **kw: layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", **kw),
    "SeparableConv1D": lambda **kw: layers.SeparableConv1D(5, 3, depth_multiplier=2, **kw),
    "SeparableConv2D": lambda **kw: layers.SeparableConv2D(5, 3, **kw),
}


def conv_bn_model(kind, data_format, dtype, use_bias=True, center=True, scale=True, epsilon=1e-3):
    conv = CONV_LAYERS[kind](data_format=data_format, use_bias=use_bias, dtype=dtype, bias_initializer="random_normal")
    rank = conv.rank
    shape = (*SPATIAL[rank], 3) if data_format == "channels_last" else (3, *SPATIAL[rank])
    bn = layers.BatchNormalization(axis=-1 if data_format == "channels_last" else 1, center=center, scale=scale, epsilon=epsilon, dtype=dtype)
    model = nc.Sequential([layers.Input(shape, dtype=dtype), conv, bn])
    randomize_batch_norms(model)
    return model, RNG.standard_normal((2, *shape)).astype(dtype)


@pytest.mark.parametrize("kind", sorted(CONV_LAYERS))
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_layer_equals_conv_then_batch_norm(kind, data_format, dtype):
    model, x = conv_bn_model(kind, data_format, dtype, use_bias=kind.startswith("Conv2D"))
    conv, bn = model.layers
    expected = model.predict(x, verbose=0)
    before = model.get_weights()
    state = initializers.global_generator().bit_generator.state
    fused = tools.fuse_conv_bn(conv, bn)
    assert initializers.global_generator().bit_generator.state == state  # no random draws
    assert fused.use_bias and fused.name == conv.name and fused.dtype == np.dtype(dtype)
    assert relative_error(fused(x), expected) <= (1e-5 if dtype == "float32" else 1e-12)
    fused_model, report = tools.fuse_model(model)
    assert [type(layer) for layer in fused_model.layers] == [type(conv)] and report.fused == ((conv.name, bn.name),)
    assert relative_error(fused_model.predict(x, verbose=0), expected) <= (1e-5 if dtype == "float32" else 1e-12)
    for old, new in zip(before, model.get_weights()):  # the inputs are untouched
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("center, scale", [(False, True), (True, False), (False, False)])
def test_fusion_without_gamma_or_beta_and_with_another_epsilon(center, scale):
    model, x = conv_bn_model("Conv2D", "channels_last", "float64", use_bias=False, center=center, scale=scale, epsilon=0.3)
    conv, bn = model.layers
    z = conv(x)  # the normalisation by hand
    mean, variance = bn.moving_mean.data, bn.moving_variance.data
    expected = (z - mean) / np.sqrt(variance + 0.3) * (bn.gamma.data if scale else 1) + (bn.beta.data if center else 0)
    np.testing.assert_allclose(tools.fuse_conv_bn(conv, bn)(x), expected, rtol=1e-12, atol=1e-12)


def test_fusion_refuses_with_the_reason():
    model, _ = conv_bn_model("Conv2D", "channels_last", "float32")
    conv, bn = model.layers
    with pytest.raises(ValueError, match="applies activation 'relu' before the normalisation"):
        tools.fuse_conv_bn(layers.Conv2D(5, 3, activation="relu"), bn)
    wrong_axis = layers.BatchNormalization(axis=1)
    wrong_axis(np.ones((1, 7, 6, 5)))
    with pytest.raises(ValueError, match=r"normalises axis 1, but '.*' puts its channels on axis 3"):
        tools.fuse_conv_bn(conv, wrong_axis)
    with pytest.raises(ValueError, match="not built yet"):
        tools.fuse_conv_bn(layers.Conv2D(5, 3), layers.BatchNormalization())
    with pytest.raises(ValueError, match="is not a convolution layer"):
        tools.fuse_conv_bn(layers.Dense(3), bn)
    with pytest.raises(ValueError, match="int 3 is not a BatchNormalization"):
        tools.fuse_conv_bn(conv, 3)
    with pytest.raises(TypeError, match="Received: model=3"):
        tools.fuse_model(3)
    with pytest.raises(ValueError, match="not built yet"):
        tools.fuse_model(nc.Sequential([layers.Conv2D(2, 3)]))


def seeds_cnn_with_batch_norm(data_format="channels_last", flatten_format=None, size=16):
    """The seeds' CNN with BatchNormalization between each convolution and its ReLU."""
    channels_first = data_format == "channels_first"
    model = nc.Sequential(
        [
            layers.Input((1, size, size) if channels_first else (size, size, 1)),
            layers.Conv2D(32, (3, 3), padding="same", use_bias=False, data_format=data_format),
            layers.BatchNormalization(axis=1 if channels_first else -1),
            layers.ReLU(),
            layers.MaxPooling2D((2, 2), data_format=data_format),
            layers.Conv2D(64, (3, 3), padding="same", data_format=data_format),
            layers.BatchNormalization(axis=1 if channels_first else -1),
            layers.ReLU(),
            layers.MaxPooling2D((2, 2), data_format=data_format),
            layers.Flatten(data_format=flatten_format),
            layers.Dense(128, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )
    randomize_batch_norms(model)
    return model


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_fuse_the_seeds_cnn_with_batch_norm(data_format):
    nc.set_random_seed(1)
    model = seeds_cnn_with_batch_norm(data_format)
    x = RNG.random((4, *model.inputs[0].shape[1:]))
    generator = initializers.global_generator()
    state = generator.bit_generator.state
    fused, report = tools.fuse_model(model)
    assert generator.bit_generator.state == state  # no random draws: later initial weights do not change
    assert isinstance(fused, nc.Sequential) and len(fused.layers) == len(model.layers) - 2 and len(report.fused) == 2
    assert fused.count_params() == model.count_params() - 4 * (32 + 64) + 32  # BN weights gone, conv1 gained a bias
    logits = [m.predict(x, verbose=0) for m in (model, fused)]
    assert relative_error(logits[1], logits[0]) <= 1e-5
    assert "fused 2 BatchNormalization layer(s)" in str(report)


def test_fuse_model_skips_what_it_cannot_fold_and_says_why():
    model = seeds_cnn(layers, nc.Sequential, (12, 12, 1))
    with_bn = nc.Sequential([layers.Input((12, 12, 1)), model.layers[0], layers.BatchNormalization(), *model.layers[1:]])
    fused, report = tools.fuse_model(with_bn)
    assert report.fused == () and "applies activation 'relu'" in report.skipped[0][2]
    x = RNG.random((2, 12, 12, 1))
    np.testing.assert_array_equal(fused.predict(x, verbose=0), with_bn.predict(x, verbose=0))
    # functional: a convolution whose output also feeds another branch keeps its BatchNormalization
    inputs = layers.Input((6, 6, 2))
    shared = layers.Conv2D(4, 3, padding="same", name="branching")(inputs)
    alone = layers.Conv2D(4, 3, padding="same", name="alone")(inputs)
    outputs = layers.Add()([layers.BatchNormalization(name="bn_a")(shared), shared, layers.BatchNormalization(name="bn_b")(alone)])
    graph = nc.Model(inputs, outputs)
    randomize_batch_norms(graph)
    fused, report = tools.fuse_model(graph)
    assert report.fused == (("alone", "bn_b"),)
    assert report.skipped == (("branching", "bn_a", "the output of 'branching' is also used elsewhere"),)
    x = RNG.random((3, 6, 6, 2))
    assert relative_error(fused.predict(x, verbose=0), graph.predict(x, verbose=0)) <= 1e-5


def test_fuse_the_parity_graph():
    model = parity_2d(layers, nc.Model)
    randomize_batch_norms(model)
    fused, report = tools.fuse_model(model)
    assert isinstance(fused, nc.Model) and len(report.fused) == 1
    assert not any(isinstance(layer, layers.BatchNormalization) for layer in fused.layers)
    x = RNG.random((2, 16, 16, 3))
    assert relative_error(fused.predict(x, verbose=0), model.predict(x, verbose=0)) <= 1e-5


# --------------------------------------------------------------------------- pruning


def kept_channels(kernel, axis, count):
    """The ``count`` output channels with the largest L1 norms, in order (ties: lower index)."""
    norms = np.abs(np.moveaxis(kernel, axis, -1)).reshape(-1, kernel.shape[axis]).sum(0)
    return np.sort(np.argsort(-norms, kind="stable")[:count])


def zero_inputs(model, layer_name, weight, axis, removed):
    """``model`` with ``layer_name``'s weight zeroed where it reads the removed inputs (in place)."""
    layer = next(layer for layer in model.layers if layer.name == layer_name)
    variable = getattr(layer, weight)
    index = [slice(None)] * variable.ndim
    index[axis] = removed
    variable.data[tuple(index)] = 0


def removed(total, kept):
    return np.setdiff1d(np.arange(total), kept)


@pytest.mark.parametrize("data_format, flatten_format", [("channels_last", None), ("channels_first", None), ("channels_first", "channels_first")])
def test_pruning_the_seeds_cnn_equals_zeroing_the_pruned_inputs(data_format, flatten_format):
    nc.set_random_seed(2)
    model = seeds_cnn_with_batch_norm(data_format, flatten_format)
    conv1, conv2 = model.layers[0], model.layers[4]
    before = model.get_weights()
    pruned, report = tools.prune_channels(model, {conv1.name: 0.5, conv2.name: 0.25})
    keep1 = kept_channels(conv1.kernel.data, -1, 16)
    keep2 = kept_channels(conv2.kernel.data, -1, 48)
    new1, bn1, new2, bn2 = (pruned.layers[i] for i in (0, 1, 4, 5))
    np.testing.assert_array_equal(new1.kernel.data, conv1.kernel.data[..., keep1])
    np.testing.assert_array_equal(new2.kernel.data, conv2.kernel.data[:, :, keep1][..., keep2])
    np.testing.assert_array_equal(new2.bias.data, conv2.bias.data[keep2])
    np.testing.assert_array_equal(bn1.moving_variance.data, model.layers[1].moving_variance.data[keep1])
    np.testing.assert_array_equal(bn2.gamma.data, model.layers[5].gamma.data[keep2])
    assert (new1.filters, new2.filters) == (16, 48) and pruned.layers[9].kernel.shape == (4 * 4 * 48, 128)

    # independent check: the original model with the pruned channels' readers zeroed computes the same
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    masked = nc.Sequential.from_config(model.get_config())
    masked.set_weights(before)
    zero_inputs(masked, conv2.name, "kernel", -2, removed(32, keep1))
    channel_of_row = np.arange(4 * 4 * 64) % 64  # channels_last flatten: H x W x C
    if data_format == "channels_first" and flatten_format is None:
        channel_of_row = np.arange(4 * 4 * 64) // 16  # C x H x W
    zero_inputs(masked, model.layers[9].name, "kernel", 0, np.isin(channel_of_row, removed(64, keep2)))
    x = RNG.random((3, *model.inputs[0].shape[1:]))
    np.testing.assert_allclose(pruned.predict(x, verbose=0), masked.predict(x, verbose=0), rtol=1e-5, atol=1e-7)

    # the report: parameters and multiply-adds per layer for a 16x16 input
    assert report.params == (model.count_params(), pruned.count_params())
    rows = {row.name: row for row in report.layers}
    assert rows[conv1.name].channels == (32, 16) and rows[conv1.name].macs == (16 * 16 * 32 * 9, 16 * 16 * 16 * 9)
    assert rows[conv2.name].macs == (8 * 8 * 64 * 9 * 32, 8 * 8 * 48 * 9 * 16)
    assert rows[conv2.name].params == (9 * 32 * 64 + 64, 9 * 16 * 48 + 48)
    dense = model.layers[9].name
    assert rows[dense].macs == (4 * 4 * 64 * 128, 4 * 4 * 48 * 128) and rows[dense].channels == (128, 128)
    assert report.macs[0] == 16 * 16 * 32 * 9 + 8 * 8 * 64 * 9 * 32 + 4 * 4 * 64 * 128 + 128 * 10
    assert "fewer" in str(report) and report.input_shape == model.inputs[0].shape[1:]


def test_pruning_zero_changes_nothing():
    nc.set_random_seed(3)
    model = seeds_cnn(layers, nc.Sequential, (16, 16, 1))
    pruned, report = tools.prune_channels(model, 0.0)
    x = RNG.random((2, 16, 16, 1))
    np.testing.assert_array_equal(pruned.predict(x, verbose=0), model.predict(x, verbose=0))
    assert pruned.count_params() == model.count_params() == report.params[1]
    assert all(row.channels[0] == row.channels[1] and row.macs[0] == row.macs[1] for row in report.layers)
    assert pruned.layers[0] is not model.layers[0]  # a copy, sharing no weights


def test_pruning_through_depthwise_separable_transpose_and_global_pooling():
    """conv -> BN -> depthwise (x2) -> separable (x2) -> dropout -> transposed -> global pooling -> dense."""
    nc.set_random_seed(4)
    inputs = layers.Input((8, 8, 3))
    x = layers.Conv2D(6, 3, padding="same", name="conv")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Activation("relu")(x)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="depthwise")(x)  # 12 channels
    x = layers.SeparableConv2D(8, 3, depth_multiplier=2, padding="same", name="separable")(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Conv2DTranspose(5, 3, strides=2, name="transpose")(x)
    x = layers.GlobalMaxPooling2D()(x)
    outputs = layers.Dense(3, name="dense")(x)
    model = nc.Model(inputs, outputs)
    randomize_batch_norms(model)
    amounts = {"conv": 0.5, "separable": 0.5, "transpose": 0.4}
    pruned, report = tools.prune_channels(model, amounts)
    assert isinstance(pruned, nc.Model)
    by_name = {layer.name: layer for layer in model.layers}
    keep_conv = kept_channels(by_name["conv"].kernel.data, -1, 3)
    keep_separable = kept_channels(by_name["separable"].pointwise_kernel.data, -1, 4)
    keep_transpose = kept_channels(by_name["transpose"].kernel.data, -2, 3)
    masked = nc.Model.from_config(model.get_config())
    masked.set_weights(model.get_weights())
    depthwise_kept = (keep_conv[:, None] * 2 + np.arange(2)).ravel()  # output channel c * m + j
    separable_rows = (depthwise_kept[:, None] * 2 + np.arange(2)).ravel()
    zero_inputs(masked, "separable", "pointwise_kernel", -2, removed(24, separable_rows))
    zero_inputs(masked, "transpose", "kernel", -1, removed(8, keep_separable))
    zero_inputs(masked, "dense", "kernel", 0, removed(5, keep_transpose))
    sample = RNG.random((2, 8, 8, 3))
    np.testing.assert_allclose(pruned.predict(sample, verbose=0), masked.predict(sample, verbose=0), rtol=1e-5, atol=1e-6)
    new = {layer.name: layer for layer in pruned.layers}
    assert new["depthwise"].kernel.shape == (3, 3, 3, 2) and new["depthwise"].bias.shape == (6,)
    assert new["separable"].pointwise_kernel.shape == (1, 1, 12, 4) and new["transpose"].kernel.shape == (3, 3, 3, 4)
    assert report.params[1] == pruned.count_params()
    assert {row.name: row.channels for row in report.layers}["depthwise"] == (12, 6)


def test_pruning_conv1d_and_the_global_amount():
    nc.set_random_seed(5)
    model = nc.Sequential([layers.Input((20, 2)), layers.Conv1D(8, 3, activation="relu", name="a"), layers.Conv1D(6, 3, name="b"),
                           layers.GlobalAveragePooling1D(), layers.Dense(2, name="out")])
    pruned, report = tools.prune_channels(model, 0.3)  # round(0.3 * 8) = 2 and round(0.3 * 6) = 2 go
    assert [layer.filters for layer in pruned.layers[:2]] == [6, 4] and report.skipped == ()
    masked = nc.Sequential.from_config(model.get_config())
    masked.set_weights(model.get_weights())
    zero_inputs(masked, "b", "kernel", -2, removed(8, kept_channels(model.layers[0].kernel.data, -1, 6)))
    zero_inputs(masked, "out", "kernel", 0, removed(6, kept_channels(model.layers[1].kernel.data, -1, 4)))
    x = RNG.random((3, 20, 2))
    np.testing.assert_allclose(pruned.predict(x, verbose=0), masked.predict(x, verbose=0), rtol=1e-5, atol=1e-7)
    assert tools.prune_channels(model, 0.99)[0].layers[0].filters == 1  # at least one channel stays


def test_pruning_refuses_clearly():
    model = seeds_cnn(layers, nc.Sequential, (8, 8, 1))
    conv = model.layers[0].name
    for amount, error, message in [
        (1.5, ValueError, "Received: amount=1.5"),
        (-0.1, ValueError, "Received: amount=-0.1"),
        (float("nan"), ValueError, "Received: amount=nan"),
        (True, TypeError, "Received: amount=True"),
        ("half", TypeError, "Received: amount='half'"),
        ({conv: 1.0}, ValueError, f"Received: amount\\['{conv}'\\]=1.0"),
        ({"nope": 0.5}, ValueError, "has no layer 'nope'"),
        ({model.layers[-1].name: 0.5}, ValueError, "Dense has no filters to prune"),
    ]:
        with pytest.raises(error, match=message):
            tools.prune_channels(model, amount)
    inputs = layers.Input((6, 6, 2))
    a = layers.Conv2D(4, 3, name="a")(inputs)
    b = layers.Conv2D(4, 3, name="b")(inputs)
    branches = nc.Model(inputs, layers.Add()([a, b]))
    with pytest.raises(ValueError, match="layer 'a' cannot be pruned: its channels reach 'add.*' \\(Add\\), which merges branches"):
        tools.prune_channels(branches, {"a": 0.5})
    with pytest.raises(ValueError, match="No layer of model .* can be pruned"):
        tools.prune_channels(branches, 0.5)


def test_pruning_skips_the_output_layer():
    model = nc.Sequential([layers.Input((10, 10, 1)), layers.Conv2D(4, 3, name="first"), layers.Conv2D(2, 3, name="last")])
    pruned, report = tools.prune_channels(model, 0.5)
    assert report.skipped == (("last", "its channels are an output of the model"),)
    assert pruned.layers[0].filters == 2 and report.layers[1].macs == (6 * 6 * 2 * 9 * 4, 6 * 6 * 2 * 9 * 2)


# --------------------------------------------------------------------------- feature maps


def test_feature_maps_of_a_sequential_model_equal_the_layers_called_in_turn():
    nc.set_random_seed(7)
    model = seeds_cnn(layers, nc.Sequential, (12, 12, 1))
    x = RNG.random((2, 12, 12, 1))
    maps = tools.feature_maps(model, x)
    assert list(maps) == [layer.name for layer in model.layers]
    value = x.astype(np.float32)
    for layer in model.layers:
        value = layer(value)
        np.testing.assert_array_equal(maps[layer.name], value)
    first, pool = model.layers[0], model.layers[1]
    picked = tools.feature_maps(model, x, layers=[pool.name, 0, model.layers[-1]])
    assert list(picked) == [pool.name, first.name, model.layers[-1].name]
    with pytest.raises(ValueError, match="Received: layers='nope'"):
        tools.feature_maps(model, x, layers="nope")
    with pytest.raises(ValueError, match="incompatible"):
        tools.feature_maps(model, np.ones((1, 5, 5, 1)))
    unbuilt = nc.Sequential([layers.Conv2D(3, 3, name="c")])  # built from x, as predict does
    assert tools.feature_maps(unbuilt, x)["c"].shape == (2, 10, 10, 3)


def test_feature_maps_of_a_functional_model_equal_sub_models():
    nc.set_random_seed(8)
    model = parity_2d(layers, nc.Model)
    x = RNG.random((2, 16, 16, 3))
    maps = tools.feature_maps(model, x)
    for layer in model.layers[1:]:
        sub = nc.Model(model.inputs[0], layer.output)  # Keras' way: a model ending at the layer
        np.testing.assert_allclose(maps[layer.name], sub.predict(x, verbose=0), rtol=1e-6, atol=1e-7)
    assert tools.feature_maps(model, x, layers=model.layers[0].name)[model.layers[0].name].dtype == np.float32
