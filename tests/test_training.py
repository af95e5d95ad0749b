"""``compile``/``fit``/``evaluate``/``predict``: history, validation, progress line, callbacks,
reproducibility, checks before training, and the seeds' CNN reaching 97% on scikit-learn's digits."""

from __future__ import annotations

import keras_models
import numpy as np
import pytest

import npconv as nc
from npconv import callbacks, layers


def mlp(classes=3, activation="softmax"):
    return nc.Sequential(
        [layers.Input((4,)), layers.Dense(8, activation="relu"), layers.Dense(classes, activation=activation)]
    )


def blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 4)) * 0.3 + np.eye(3, 4)[y] * 2
    return x.astype(np.float32), y


def test_fit_history_evaluate_and_predict():
    x, y = blobs()
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=16, validation_data=(x[:20], y[:20]), verbose=0)
    assert list(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert history.epoch == [0, 1, 2] and all(len(v) == 3 for v in history.history.values())
    loss, accuracy = model.evaluate(x[:20], y[:20], verbose=0)
    assert loss == pytest.approx(history.history["val_loss"][-1], rel=1e-5)
    assert accuracy == pytest.approx(history.history["val_accuracy"][-1])
    probabilities = model.predict(x, batch_size=7, verbose=0)
    assert probabilities.shape == (60, 3) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(probabilities, model.predict(x, verbose=0), rtol=1e-6)  # batching changes nothing
    assert model.evaluate(x, y, verbose=0, return_dict=True).keys() == {"accuracy", "loss"}


def test_validation_split_holds_out_the_last_samples():
    x, y = blobs(50)
    model = mlp()
    model.compile("sgd", "sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=1, validation_split=0.2, shuffle=False, verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(model.evaluate(x[40:], y[40:], verbose=0), rel=1e-6)


def test_progress_line_per_epoch(capsys):
    x, y = blobs(40)
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    assert lines[1].startswith("2/2 ━━━━━━━━━━━━━━━━━━━━ ") and "/step - accuracy: " in lines[1]
    assert " - loss: " in lines[1] and lines[1].endswith(lines[1].split(" - val_loss: ")[-1])
    model.fit(x, y, epochs=1, verbose=2)
    assert capsys.readouterr().out.splitlines()[1].startswith("2/2 - ")
    model.fit(x, y, epochs=1, verbose=0)
    assert capsys.readouterr().out == ""


def test_seeded_training_is_reproducible():
    x, y = blobs()

    def train(seed):
        nc.set_random_seed(seed)
        model = nc.Sequential(
            [layers.Input((4,)), layers.Dense(16, activation="relu"), layers.Dropout(0.3), layers.Dense(3)]
        )
        model.compile("adam", nc.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        return model.get_weights()

    first, second, other = train(5), train(5), train(6)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not np.array_equal(first[0], other[0])


def test_early_stopping_and_restore_best_weights():
    x, y = blobs()
    model = mlp()
    model.compile(nc.optimizers.SGD(learning_rate=0.0), "sparse_categorical_crossentropy")  # nothing improves
    stop = callbacks.EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    history = model.fit(x, y, epochs=10, verbose=0, callbacks=[stop], shuffle=False)
    assert len(history.epoch) == 2 and stop.stopped_epoch == 1 and model.stop_training
    with pytest.raises(ValueError, match="monitors 'val_loss', which is not in the logs"):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.EarlyStopping()])


def test_model_checkpoint_saves_weights_that_load_back(tmp_path):
    x, y = blobs()
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    every = callbacks.ModelCheckpoint(str(tmp_path / "epoch{epoch:02d}.weights.npz"), save_best_only=False)
    best = callbacks.ModelCheckpoint(tmp_path / "best.weights.npz", monitor="loss", save_best_only=True)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[every, best])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best.weights.npz",
        *(f"epoch0{i}.weights.npz" for i in (1, 2, 3)),
    ]
    clone = mlp()
    clone.load_weights(tmp_path / "epoch03.weights.npz")
    assert all(np.array_equal(a, b) for a, b in zip(clone.get_weights(), model.get_weights()))
    with pytest.raises(ValueError, match="must end with '.npz'"):
        callbacks.ModelCheckpoint("model.keras")


class Recorder(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append("begin")

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(batch)


def test_custom_callback_hooks():
    x, y = blobs(40)
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    recorder = Recorder()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[recorder])
    assert recorder.events == ["begin", 0, 1, 2] and recorder.params["steps"] == 3


@pytest.mark.parametrize(
    "compile_kwargs, message",
    [
        (dict(optimizer="adamx", loss="mse"), "Could not interpret optimizer identifier: 'adamx'"),
        (dict(optimizer="adam", loss="cross_entropy"), "Could not interpret loss identifier: 'cross_entropy'"),
        (dict(optimizer="adam", loss="mse", metrics=["acuracy"]), "Could not interpret metric identifier: 'acuracy'"),
    ],
)
def test_unknown_optimizer_loss_or_metric_fails_in_compile(compile_kwargs, message):
    with pytest.raises(ValueError, match=message):
        mlp().compile(**compile_kwargs)


@pytest.mark.parametrize(
    "loss, x, y, fit_kwargs, error, message",
    [
        (
            "sparse_categorical_crossentropy",
            (60, 4),
            np.arange(59) % 3,
            {},
            ValueError,
            "Data cardinality is ambiguous.*'x' sizes: 60 'y' sizes: 59",
        ),
        (
            "sparse_categorical_crossentropy",
            (60, 4),
            np.arange(60) % 4,
            {},
            ValueError,
            r"expected integers in \[0, 3\) \(the model has 3 outputs\).*values in \[0, 3\]",
        ),
        (
            "sparse_categorical_crossentropy",
            (60, 4),
            np.arange(60) % 3 - 1,
            {},
            ValueError,
            r"expected integers in \[0, 3\)",
        ),
        ("sparse_categorical_crossentropy", (60, 4), np.full(60, 0.5), {}, ValueError, "expected integers"),
        ("categorical_crossentropy", (60, 4), np.arange(60) % 3, {}, ValueError, "sparse_categorical_crossentropy"),
        (
            "mse",
            (60, 4),
            np.zeros((60, 2)),
            {},
            ValueError,
            r"the model outputs \(None, 3\). Received: y.shape=\(60, 2\)",
        ),
        (
            "sparse_categorical_crossentropy",
            (60, 5),
            np.arange(60) % 3,
            {},
            ValueError,
            r"expected shape=\(None, 4\), found shape=\(60, 5\)",
        ),
        (
            "sparse_categorical_crossentropy",
            (60,),
            np.arange(60) % 3,
            {},
            ValueError,
            r"expected shape=\(None, 4\), found shape=\(60,\)",
        ),
        (
            "sparse_categorical_crossentropy",
            (60, 4),
            np.arange(60) % 3,
            {"batch_size": 0},
            ValueError,
            "Received: batch_size=0",
        ),
        (
            "sparse_categorical_crossentropy",
            (60, 4),
            np.arange(60) % 3,
            {"epochs": 0},
            ValueError,
            "Received: epochs=0",
        ),
        (
            "sparse_categorical_crossentropy",
            (60, 4),
            np.arange(60) % 3,
            {"validation_split": 1.0},
            ValueError,
            "validation_split",
        ),
        (
            "sparse_categorical_crossentropy",
            (60, 4),
            np.arange(60) % 3,
            {"validation_data": (np.zeros((5, 4)), np.full(5, 7))},
            ValueError,
            r"\[0, 3\)",
        ),
        (
            "sparse_categorical_crossentropy",
            (60, 4),
            np.arange(60) % 3,
            {"callbacks": [print]},
            TypeError,
            "Invalid callback",
        ),
    ],
)
def test_bad_fit_arguments_raise_before_training(loss, x, y, fit_kwargs, error, message):
    model = mlp()
    model.compile("adam", loss)
    before = model.get_weights()
    recorder = Recorder()
    callbacks_list = fit_kwargs.pop("callbacks", []) + [recorder]
    with pytest.raises(error, match=message):
        model.fit(np.zeros(x), y, epochs=fit_kwargs.pop("epochs", 2), callbacks=callbacks_list, verbose=0, **fit_kwargs)
    assert recorder.events == [] and all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))


def test_fit_before_compile():
    with pytest.raises(RuntimeError, match="You must call `compile\\(\\)` with a loss before calling `fit\\(\\)`"):
        mlp().fit(np.zeros((4, 4)), np.zeros(4))


def test_optimizer_gradient_clipping():
    w = layers.Variable(np.zeros(2), "w")
    nc.optimizers.SGD(learning_rate=1.0, clipnorm=1.0).apply([np.array([3.0, 4.0])], [w])
    np.testing.assert_allclose(w.data, [-0.6, -0.8])
    nc.optimizers.SGD(learning_rate=1.0, clipvalue=0.5).apply([np.array([3.0, -0.1])], [w])
    np.testing.assert_allclose(w.data, [-1.1, -0.7])
    with pytest.raises(ValueError, match="learning_rate"):
        nc.optimizers.Adam(learning_rate=-1)


@pytest.mark.skipif(not nc.optimizers.NUMBA_ENABLED, reason="numba is not installed")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_fused_adam_gives_the_bits_of_the_numpy_path(monkeypatch, dtype, amsgrad):
    """Adam's Numba kernel, over several shares, against its NumPy passes, NaN and Inf included."""
    from npconv import _threads

    monkeypatch.setattr(nc.optimizers, "ADAM_PIECE", 100)  # 5 pieces, in 3 shares
    monkeypatch.setattr(_threads, "threads_for", lambda flops: 3)
    rng = np.random.default_rng(4)
    start = rng.standard_normal((7, 61)).astype(dtype)
    start[0, 5] = np.nan
    grads = rng.standard_normal((4, 7, 61)).astype(dtype)
    grads[:, 1, 3], grads[2, 2, 2] = np.inf, np.nan
    results = []
    for fused in (True, False):
        monkeypatch.setattr(nc.optimizers, "USE_NUMBA", fused)
        w = layers.Variable(start.copy(), "w")
        optimizer = nc.optimizers.Adam(learning_rate=0.01, amsgrad=amsgrad)
        for g in grads:
            optimizer.apply([g], [w])
        results.append([w.data, *optimizer._slots[id(w)].values()])
    for fused, numpy_path in zip(*results):
        np.testing.assert_array_equal(fused, numpy_path)


def test_seeds_cnn_reaches_97_percent_on_sklearn_digits():
    """16x16 digits, Adam with a decaying learning rate: 97.8-98.3% over seeds 0-5 (97.8% for seed 0)."""
    pytest.importorskip("sklearn")
    (x_train, y_train), (x_test, y_test) = nc.datasets.digits.load_data(size=16)
    nc.set_random_seed(0)
    model = keras_models.seeds_cnn(layers, nc.Sequential, (16, 16, 1))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    decay = callbacks.LearningRateScheduler(lambda epoch: 1e-3 * 0.7**epoch)
    model.fit(x_train[..., None] / 255.0, y_train, epochs=10, batch_size=16, callbacks=[decay], verbose=0)
    assert model.optimizer.learning_rate == pytest.approx(1e-3 * 0.7**9)
    loss, accuracy = model.evaluate(x_test[..., None] / 255.0, y_test, verbose=0)
    assert accuracy >= 0.97, (loss, accuracy)
