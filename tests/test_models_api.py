"""Sequential and functional models: building, graphs, weights, persistence, configs, summary."""

from __future__ import annotations

import json

import numpy as np
import pytest

import npconv as nc
from npconv import layers


def small_cnn(**first):
    return [layers.Conv2D(4, 3, activation="relu", **first), layers.MaxPooling2D(), layers.Flatten(), layers.Dense(3)]


@pytest.mark.parametrize("how", ["input", "input_shape", "lazy", "build", "add"])
def test_sequential_builds_from_input_input_shape_data_or_build(how):
    if how == "input":
        model = nc.Sequential([layers.Input((8, 8, 1)), *small_cnn()])
    elif how == "input_shape":
        model = nc.Sequential(small_cnn(input_shape=(8, 8, 1)))
    elif how == "add":
        model = nc.Sequential()
        model.add(layers.Input((8, 8, 1)))
        for layer in small_cnn():
            model.add(layer)
    else:
        model = nc.Sequential(small_cnn())
        assert not model.built
        if how == "build":
            model.build((None, 8, 8, 1))
    y = model.predict(np.zeros((5, 8, 8, 1)), verbose=0)
    assert y.shape == (5, 3) and model.built
    assert len(model.layers) == 4 and not isinstance(model.layers[0], layers.InputLayer)
    assert model.count_params() == 4 * 10 + 36 * 3 + 3


def test_sequential_pop_and_input_must_come_first():
    model = nc.Sequential([layers.Input((8, 8, 1)), *small_cnn()])
    assert isinstance(model.pop(), layers.Dense)
    assert model.outputs[0].shape == (None, 36)
    with pytest.raises(ValueError, match="Input must come first"):
        model.add(layers.Input((3,)))
    with pytest.raises(TypeError, match="Only npconv layers"):
        model.add("dense")


def test_functional_model_with_two_inputs_a_shared_layer_and_a_nested_model():
    a, b = layers.Input((5,), name="a"), layers.Input((5,), name="b")
    shared = layers.Dense(4, activation="tanh")
    merged = layers.Concatenate()([shared(a), shared(b)])
    inner = nc.Sequential([layers.Input((8,)), layers.Dense(2)])
    model = nc.Model([a, b], inner(merged))
    xa, xb = np.ones((3, 5)), np.zeros((3, 5))
    w, bias = shared.get_weights()
    expected = np.concatenate([np.tanh(xa @ w + bias), np.tanh(xb @ w + bias)], axis=1)
    np.testing.assert_allclose(model.predict([xa, xb], verbose=0), inner.predict(expected, verbose=0), rtol=1e-5)  # float32
    assert model.count_params() == 24 + 18 and len(model.get_weights()) == 4  # shared weights once
    assert [layer.name for layer in model.layers][:2] == ["a", "b"]


def test_functional_graph_errors():
    x = layers.Input((3,))
    other = layers.Input((3,))
    y = layers.Add()([x, other])
    with pytest.raises(ValueError, match="Graph disconnected"):
        nc.Model(x, y)
    with pytest.raises(TypeError, match="symbolic tensors"):
        nc.Model(x, np.zeros(3))
    with pytest.raises(TypeError, match="functional models"):
        nc.Model()


def test_set_weights_checks_count_and_every_shape_first():
    model = nc.Sequential([layers.Input((8, 8, 1)), *small_cnn()])
    before = model.get_weights()
    with pytest.raises(ValueError, match="has 4 weights, but set_weights received 3"):
        model.set_weights(before[:3])
    bad = [w.copy() for w in before]
    bad[2] = np.zeros((36, 4))
    with pytest.raises(ValueError, match=r"dense_?\d*/kernel: expected \(36, 3\), received \(36, 4\)"):
        model.set_weights(bad)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))  # nothing half-set


def test_save_and_load_weights_npz_and_keras_style_positional_arrays(tmp_path):
    model = nc.Sequential([layers.Input((8, 8, 1)), *small_cnn()])
    path = tmp_path / "model.weights.npz"
    model.save_weights(path)
    with np.load(path, allow_pickle=False) as data:
        assert len(data.files) == 4 and data.files[0].startswith("0000:conv2d")
    clone = nc.Sequential([layers.Input((8, 8, 1)), *small_cnn()])
    clone.load_weights(path)
    x = np.random.default_rng(0).random((2, 8, 8, 1))
    np.testing.assert_array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))
    np.savez(
        tmp_path / "keras.npz", *[w * 2 for w in model.get_weights()]
    )  # np.savez(path, *keras_model.get_weights())
    clone.load_weights(tmp_path / "keras.npz")
    assert np.array_equal(clone.get_weights()[0], 2 * model.get_weights()[0])
    with pytest.raises(ValueError, match="must end with '.npz'"):
        model.save_weights(tmp_path / "model.h5")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="not an npconv weights file"):
        model.load_weights(tmp_path / "other.npz")


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_get_config_from_config_round_trip_through_json(kind):
    if kind == "sequential":
        model = nc.Sequential(
            [layers.Input((8, 8, 1)), *small_cnn(), layers.Dropout(0.5), layers.Activation("softmax")]
        )
    else:
        x = layers.Input((8, 8, 1))
        branch = layers.Conv2D(4, 3, padding="same")(x)
        y = layers.Concatenate()([layers.BatchNormalization()(branch), layers.ReLU()(branch)])
        model = nc.Model(x, layers.Dense(2)(layers.GlobalAveragePooling2D()(y)))
    text = json.dumps(model.get_config())
    clone = type(model).from_config(json.loads(text))
    assert json.dumps(clone.get_config()) == text
    clone.set_weights(model.get_weights())
    x = np.random.default_rng(1).random((3, 8, 8, 1))
    np.testing.assert_array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))


def test_summary_of_unbuilt_and_trained_models():
    model = nc.Sequential(small_cnn(), name="tiny")
    lines = []
    model.summary(print_fn=lines.append)
    assert 'Model: "tiny"' in lines[0] and "0 (unbuilt)" in lines[0] and "│ ?" in lines[0]
    model.compile("adam", "mse")
    model.fit(np.zeros((4, 8, 8, 1)), np.zeros((4, 3)), verbose=0)
    model.summary(print_fn=lines.append)
    params = model.count_params()
    assert f" Total params: {3 * params + 2:,}" in lines[1]  # weights, Adam's m and v, step and learning rate
    assert f" Optimizer params: {2 * params + 2:,}" in lines[1]


def test_trainable_false_freezes_layers_in_fit():
    model = nc.Sequential([layers.Input((4,)), layers.Dense(3), layers.Dense(1)])
    model.layers[0].trainable = False
    frozen = model.layers[0].get_weights()
    model.compile("sgd", "mse")
    model.fit(np.ones((8, 4)), np.ones((8, 1)), epochs=2, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(model.layers[0].get_weights(), frozen))
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 2
    model.trainable = False
    assert model.trainable_weights == []


class Scale(layers.Layer):
    """A user layer: one trainable scalar per channel (built from the input shape)."""

    def build(self, input_shape):
        self.scale = self.add_weight("scale", (input_shape[-1],), "ones")

    def call(self, inputs, training=None):
        return inputs * self.scale


def test_custom_layer_trains_and_round_trips_with_custom_objects():
    model = nc.Sequential([layers.Input((3,)), Scale(), layers.Dense(1, kernel_initializer="ones", use_bias=False)])
    model.compile(nc.optimizers.SGD(learning_rate=0.1), "mse")
    model.fit(np.ones((4, 3)), np.full((4, 1), 6.0), epochs=1, batch_size=4, verbose=0)
    # loss (s_1 + s_2 + s_3 - 6)^2 from s = 1: d/ds_c = 2 * (3 - 6) = -6, so s_c = 1 + 0.1 * 6
    np.testing.assert_allclose(model.layers[0].get_weights()[0], 1.6, rtol=1e-6)
    with pytest.raises(ValueError, match="custom_objects"):
        nc.Sequential.from_config(model.get_config())
    clone = nc.Sequential.from_config(model.get_config(), custom_objects={"Scale": Scale})
    assert [type(layer) for layer in clone.layers] == [Scale, layers.Dense]
