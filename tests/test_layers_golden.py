"""npconv's layers, models, losses and optimizers against Keras 3 golden values.

The fixture ``fixtures/golden_keras_layers.npz`` was made by ``fixtures/make_keras_golden.py`` (its
docstring has the command) with TensorFlow/Keras; this file needs neither.  The models come from
``keras_models.py``, the same code that built them in Keras, here given ``npconv.layers``.

Tolerances (float32 on both sides): layer outputs and gradients ``rtol=1e-5`` with ``atol=1e-5``
times the array's magnitude; whole models ``< 1e-4`` absolute (the acceptance bound); a few
optimizer steps ``2e-5`` relative.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras_models
import numpy as np
import pytest

import npconv as nc
from npconv import layers
from npconv.autograd import Tensor
from npconv.layers import base as layers_base

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "golden_keras_layers.npz"


def _load() -> dict[str, dict[str, np.ndarray]]:
    groups: dict[str, dict[str, np.ndarray]] = {}
    with np.load(FIXTURE, allow_pickle=False) as data:
        for key in data.files:
            if key == "__meta__":
                continue
            kind, name, field = key.split("/")
            value = data[key]
            groups.setdefault(f"{kind}/{name}", {})[field] = (
                value.astype(np.float32) if value.dtype == np.float16 else value
            )
    return groups


GOLDEN = _load()


def _cases(kind: str) -> list[str]:
    return sorted(key.split("/", 1)[1] for key in GOLDEN if key.startswith(kind + "/"))


def _numbered(case: dict, prefix: str) -> list[np.ndarray]:
    count = sum(1 for k in case if k.startswith(prefix) and k[len(prefix) :].isdigit())
    return [case[f"{prefix}{i}"] for i in range(count)]


def assert_close(actual, expected, rtol=1e-5, atol_scale=1e-5, what=""):
    expected = np.asarray(expected)
    scale = max(float(np.abs(expected).max()) if expected.size else 1.0, 1.0)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol_scale * scale, err_msg=what)


@pytest.fixture
def fresh_names():
    """Keras numbers automatic layer names per program; start from zero like a new program."""
    saved = dict(layers_base._NAME_COUNTS)
    layers_base._NAME_COUNTS.clear()
    yield
    layers_base._NAME_COUNTS.clear()
    layers_base._NAME_COUNTS.update(saved)


@pytest.mark.parametrize("case", _cases("layer"))
def test_layer_forward_and_gradients_match_keras(case):
    golden = GOLDEN[f"layer/{case}"]
    spec = json.loads(str(golden["spec"]))
    layer = getattr(layers, spec["class_name"])(**spec["kwargs"])
    xs = [Tensor(x, requires_grad=True) for x in _numbered(golden, "x")]
    inputs = xs if layer.list_input else xs[0]
    layer(inputs)  # builds the weights from the input shapes
    layer.set_weights(_numbered(golden, "w"))
    y = layer(inputs, training=spec["training"])
    assert_close(y.data, golden["y"], what=f"{case}: output")
    y.backward(golden["cotangent"])
    for i, (x, expected) in enumerate(zip(xs, _numbered(golden, "dx"))):
        assert_close(x.grad, expected, what=f"{case}: d/dx{i}")
    trainable = layer.trainable_weights
    expected_dw = _numbered(golden, "dw")
    assert len(trainable) == len(expected_dw)
    for w, expected in zip(trainable, expected_dw):
        assert_close(w.grad, expected, what=f"{case}: d/d{w.name}")
    if spec["training"]:
        for w, expected in zip(layer.get_weights(), _numbered(golden, "after")):
            assert_close(w, expected, what=f"{case}: weights after the call")


MODEL_BUILDERS = {
    "seeds_cnn": lambda: keras_models.seeds_cnn(layers, nc.Sequential),
    "seeds_cnn_16": lambda: keras_models.seeds_cnn(layers, nc.Sequential, (16, 16, 1)),
    "parity_2d": lambda: keras_models.parity_2d(layers, nc.Model),
    "parity_1d": lambda: keras_models.parity_1d(layers, nc.Sequential),
    "parity_3d": lambda: keras_models.parity_3d(layers, nc.Sequential),
}


@pytest.mark.parametrize("name", sorted(MODEL_BUILDERS))
def test_model_summary_and_count_params_equal_keras(name, fresh_names, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # the terminal width the fixture was made with
    golden = GOLDEN[f"model/{name}"]
    model = MODEL_BUILDERS[name]()
    assert model.count_params() == int(golden["count_params"])
    printed = []
    model.summary(print_fn=printed.append)
    assert printed == [str(golden["summary"])]


def test_seeds_cnn_has_keras_parameter_count():
    model = keras_models.seeds_cnn(layers, nc.Sequential)
    assert model.count_params() == 421_642 == int(GOLDEN["model/seeds_cnn"]["count_params"])
    assert [w.shape for w in model.get_weights()] == [
        (3, 3, 1, 32),
        (32,),
        (3, 3, 32, 64),
        (64,),
        (3136, 128),
        (128,),
        (128, 10),
        (10,),
    ]


@pytest.mark.parametrize("name", [n for n in sorted(MODEL_BUILDERS) if "y" in GOLDEN[f"model/{n}"]])
def test_keras_weights_give_keras_predictions(name):
    golden = GOLDEN[f"model/{name}"]
    model = MODEL_BUILDERS[name]()
    model.set_weights(_numbered(golden, "w"))
    predicted = model.predict(golden["x"], verbose=0)
    assert predicted.shape == golden["y"].shape
    assert np.abs(predicted - golden["y"]).max() < 1e-4


@pytest.mark.parametrize("case", _cases("fit"))
def test_fit_steps_match_keras(case):
    golden = GOLDEN[f"fit/{case}"]
    spec = json.loads(str(golden["spec"]))
    model = keras_models.small_trainable(layers, nc.Sequential)
    model.set_weights(_numbered(golden, "w"))
    model.compile(optimizer=nc.optimizers.get(spec["optimizer"]), loss=spec["loss"])
    history = model.fit(golden["x"], golden["y"], batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert history.history["loss"][0] == pytest.approx(float(golden["loss"]), rel=2e-5)
    for w, expected, path in zip(model.get_weights(), _numbered(golden, "after"), model._weight_paths()):
        assert_close(w, expected, rtol=2e-5, atol_scale=2e-5, what=f"{case}: {path}")


@pytest.mark.parametrize("case", _cases("loss"))
def test_losses_match_keras(case):
    golden = GOLDEN[f"loss/{case}"]
    spec = json.loads(str(golden["spec"]))
    loss = getattr(nc.losses, spec["class_name"])(**spec["kwargs"])
    assert loss(golden["y_true"], golden["y_pred"]) == pytest.approx(float(golden["value"]), rel=1e-5)
