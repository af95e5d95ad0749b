"""Reliability of models, layers and the files npconv writes: all-or-nothing weight loading (bug 6),
atomic writes that survive a full disk (bug 7), arguments checked with Keras-style messages before
anything runs (bug 11) and ``TerminateOnNaN`` with Keras' semantics (bug 13)."""

from __future__ import annotations

import errno
import gzip
import os
import re
import warnings

import numpy as np
import pytest

import npconv as nc
from npconv import callbacks, layers
from npconv._files import atomic_write
from npconv.datasets import idx


def mlp(name=None):
    return nc.Sequential([layers.Input((4,)), layers.Dense(8, name="hidden"), layers.Dense(3, name="out")], name=name)


def full_disk(*args, **kwargs):
    """Stands for a writer (``np.savez``, ``Image.save``, ``Figure.savefig``, ...): it starts writing
    its target (the first path or file argument), then fails like a full disk."""
    target = next(a for a in args if isinstance(a, (str, os.PathLike)) or hasattr(a, "write"))
    if hasattr(target, "write"):
        target.write(b"PK\x03\x04 half written")
    else:
        with open(target, "wb") as handle:
            handle.write(b"PK\x03\x04 half written")
    raise OSError(errno.ENOSPC, "No space left on device")


def same_weights(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


class Recorder(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append(batch)


# --------------------------------------------------------------------------- bug 6: all-or-nothing loading


def new_arrays(model, last):
    """Valid new values for every weight but the last, which is ``last``."""
    arrays = [w + 1 for w in model.get_weights()]
    arrays[-1] = last(arrays[-1])
    return arrays


FINITE = r"expected finite numbers\. Received: value holding"
BAD_LAST_ARRAYS = [
    pytest.param(lambda a: a.astype(np.complex64) + 1j, TypeError, r"Received: value\.dtype=complex64", id="complex"),
    pytest.param(lambda a: a.astype(str), TypeError, r"expected real numbers.*Received: value\.dtype=<U", id="strings"),
    pytest.param(
        lambda a: np.full(a.shape, 1e300),
        ValueError,
        r": 1e\+300 does not fit its dtype float32.*Received: value with largest magnitude 1e\+300",
        id="overflow",
    ),
    pytest.param(lambda a: np.full(a.shape, np.nan), ValueError, FINITE + " nan", id="nan"),
    pytest.param(lambda a: np.full(a.shape, -np.inf), ValueError, FINITE + " -inf", id="inf"),
    pytest.param(lambda a: np.zeros(4), ValueError, r": expected \(3,\), received \(4,\)", id="shape"),
]


@pytest.mark.filterwarnings("error")  # no ComplexWarning, no overflow warning
@pytest.mark.parametrize("last, error, message", BAD_LAST_ARRAYS)
def test_failed_load_weights_leaves_the_model_unchanged(tmp_path, last, error, message):
    model = mlp()
    before = model.get_weights()
    path = tmp_path / "bad.weights.npz"
    np.savez(path, *new_arrays(model, last))
    with pytest.raises(error, match="out/bias.*" + message):  # the message names the weight
        model.load_weights(path)
    assert same_weights(model.get_weights(), before)  # the first three arrays were valid: none was assigned


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("last, error, message", BAD_LAST_ARRAYS)
def test_failed_set_weights_of_a_model_or_a_layer_changes_nothing(last, error, message):
    model = mlp()
    before = model.get_weights()
    with pytest.raises(error, match="out/bias.*" + message):
        model.set_weights(new_arrays(model, last))
    assert same_weights(model.get_weights(), before)
    layer = model.layers[-1]
    before = layer.get_weights()
    with pytest.raises(error, match=message):
        layer.set_weights(new_arrays(layer, last))
    assert same_weights(layer.get_weights(), before)


def test_load_weights_casts_valid_ints_and_float64_to_each_weight_dtype(tmp_path):
    model = mlp()
    arrays = [np.ones(w.shape, dtype=np.int64) for w in model.get_weights()]
    arrays[0] = np.full(arrays[0].shape, 3e38)  # float64, finite in float32
    np.savez(tmp_path / "ok.npz", *arrays)
    model.load_weights(tmp_path / "ok.npz")
    loaded = model.get_weights()
    assert all(w.dtype == np.float32 for w in loaded)
    assert np.all(loaded[0] == np.float32(3e38)) and np.all(loaded[1] == 1)


def test_load_weights_refuses_pickled_object_arrays_naming_the_array(tmp_path):
    model = mlp()
    arrays = [w.astype(object) for w in model.get_weights()]
    np.savez(tmp_path / "objects.npz", *arrays)  # object arrays are pickled
    before = model.get_weights()
    with pytest.raises(ValueError, match="array 'arr_0' cannot be read"):
        model.load_weights(tmp_path / "objects.npz")
    assert same_weights(model.get_weights(), before)


# --------------------------------------------------------------------------- bug 7: atomic writes


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_write_replaces_the_file_or_leaves_it_untouched(tmp_path):
    path = tmp_path / "notes.txt"
    assert atomic_write(path, lambda temporary: temporary.write_text("first")) == path
    assert path.read_text() == "first"
    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, full_disk)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, lambda temporary: (_ for _ in ()).throw(KeyboardInterrupt))
    assert path.read_text() == "first" and leftovers(tmp_path) == []
    with pytest.raises(OSError):
        atomic_write(tmp_path / "new.txt", full_disk)
    assert not (tmp_path / "new.txt").exists() and leftovers(tmp_path) == []


def test_atomic_write_keeps_the_usual_permissions_and_follows_symlinks(tmp_path):
    umask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.txt", lambda temporary: temporary.write_text("a"))
    finally:
        os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644  # as open(path, "w") would make it
    (tmp_path / "link.txt").symlink_to(tmp_path / "a.txt")
    atomic_write(tmp_path / "link.txt", lambda temporary: temporary.write_text("b"))
    assert (tmp_path / "link.txt").is_symlink() and (tmp_path / "a.txt").read_text() == "b"


def test_save_weights_on_a_full_disk_keeps_the_previous_file(tmp_path, monkeypatch):
    model = mlp()
    path = tmp_path / "model.weights.npz"
    model.save_weights(path)
    good = model.get_weights()
    model.set_weights([w + 1 for w in good])
    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError, match="No space left"):
        model.save_weights(path)
    monkeypatch.undo()
    model.load_weights(path)
    assert same_weights(model.get_weights(), good)
    assert leftovers(tmp_path) == []


def test_model_checkpoint_on_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    x, y = np.random.default_rng(0).random((16, 4)), np.random.default_rng(1).random((16, 3))
    model = mlp()
    model.compile("sgd", "mse")
    path = tmp_path / "checkpoint.weights.npz"
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.ModelCheckpoint(path, save_best_only=False)])
    good = model.get_weights()
    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError, match="No space left"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.ModelCheckpoint(path, save_best_only=False)])
    monkeypatch.undo()
    clone = mlp()
    clone.load_weights(path)
    assert same_weights(clone.get_weights(), good) and not same_weights(model.get_weights(), good)
    assert leftovers(tmp_path) == []


def test_write_image_on_a_full_disk_keeps_the_previous_image(tmp_path, monkeypatch):
    pil = pytest.importorskip("PIL.Image")
    path = tmp_path / "edges.png"
    first = np.arange(12, dtype=np.uint8).reshape(3, 4)
    nc.image.write_image(path, first)
    monkeypatch.setattr(pil.Image, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        nc.image.write_image(path, first[::-1])
    monkeypatch.undo()
    np.testing.assert_array_equal(nc.image.read_image(path), first)
    assert leftovers(tmp_path) == []


def test_figures_on_a_full_disk_keep_the_previous_file(tmp_path, monkeypatch):
    figure_module = pytest.importorskip("matplotlib.figure")
    path = tmp_path / "kernels.png"
    nc.plot.plot_kernels({"sobel": nc.kernels.sobel_x()}, path)
    before = path.read_bytes()
    monkeypatch.setattr(figure_module.Figure, "savefig", full_disk)
    with pytest.raises(OSError, match="No space left"):
        nc.plot.plot_kernels({"laplacian": nc.kernels.laplacian(4)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and leftovers(tmp_path) == []


def test_demo_images_and_text_on_a_full_disk_keep_the_previous_files(tmp_path, monkeypatch):
    from npconv import demo

    image_path = demo.write_grayscale(tmp_path / "input", np.arange(6.0).reshape(2, 3))
    tour = demo.Tour(tmp_path, steps=1)
    tour.text("report.txt", "first")
    before = image_path.read_bytes()
    if image_path.suffix == ".png":
        pil = pytest.importorskip("PIL.Image")
        monkeypatch.setattr(pil.Image, "save", full_disk)
    else:
        monkeypatch.setattr(type(image_path), "write_bytes", full_disk)
    with pytest.raises(OSError, match="No space left"):
        demo.write_grayscale(tmp_path / "input", np.zeros((2, 3)))
    monkeypatch.undo()
    monkeypatch.setattr(type(image_path), "write_text", full_disk)
    with pytest.raises(OSError, match="No space left"):
        tour.text("report.txt", "second")
    monkeypatch.undo()
    assert image_path.read_bytes() == before and (tmp_path / "report.txt").read_text() == "first\n"
    assert leftovers(tmp_path) == []


def test_write_idx_on_a_full_disk_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    idx.write_idx(path, np.array([7, 2, 1], dtype=np.uint8))
    monkeypatch.setattr(gzip, "open", full_disk)
    with pytest.raises(OSError, match="No space left"):
        idx.write_idx(path, np.array([0, 0, 0, 0], dtype=np.uint8))
    monkeypatch.undo()
    np.testing.assert_array_equal(idx.read_idx(path), [7, 2, 1])
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- bug 11: argument checks


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: layers.Input((4.5, 4, 1)), ValueError, r"argument `shape`.*Received: shape=\(4\.5, 4, 1\)"),
        (lambda: layers.Input("abc"), TypeError, r"argument `shape`.*Received: shape='abc'"),
        (lambda: layers.Input((4, True)), ValueError, r"argument `shape`.*Received: shape=\(4, True\)"),
        (lambda: layers.Input((0, 3)), ValueError, r"argument `shape`.*Received: shape=\(0, 3\)"),
        (lambda: layers.Input((3,), batch_size=2.5), ValueError, r"argument `batch_size`.*Received: batch_size=2\.5"),
        (lambda: layers.Input(batch_shape=(None, 2.0)), ValueError, r"argument `batch_shape`.*Received: batch_shape="),
        (lambda: layers.Input(batch_shape=()), ValueError, r"argument `batch_shape`: expected the batch dim first"),
    ],
)
def test_input_shape_is_checked(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_input_accepts_ints_lists_and_none():
    assert layers.Input(3).shape == (None, 3)
    assert layers.Input([np.int64(8), None, 1], batch_size=4).shape == (4, 8, None, 1)
    assert layers.Input(batch_shape=[None, 5]).shape == (None, 5)


HUGE = 2**40
FILTERS = rf"arguments `filters`, `kernel_size` .*Received: filters={HUGE}, kernel_size=\(3, 3\)"
UNITS = rf"argument `units` of layer .*would have shape \(4, {HUGE}\).*Received: units={HUGE}"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: layers.Conv2D(HUGE, 3)(layers.Input((8, 8, 1))), FILTERS),
        (lambda: layers.Conv2D(HUGE, 3)(np.zeros((1, 8, 8, 1))), FILTERS),
        (lambda: layers.Dense(HUGE)(np.ones((1, 4))), UNITS),
        (lambda: nc.Sequential([layers.Input((4,)), layers.Dense(HUGE)]), UNITS),
        (lambda: layers.DepthwiseConv2D(3, depth_multiplier=HUGE)(layers.Input((8, 8, 1))), f"depth_multiplier={HUGE}"),
        (lambda: layers.BatchNormalization()(layers.Input((HUGE,))), r"weight 'gamma'.*Check the layer's input shape"),
    ],
)
def test_huge_layers_raise_a_value_error_naming_the_argument_before_allocating(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_memory_error_within_the_limit_names_the_arguments(monkeypatch):
    def no_memory(shape, dtype="float32"):
        raise MemoryError

    monkeypatch.setattr(nc.initializers, "get", lambda identifier: no_memory)
    with pytest.raises(MemoryError, match=r"argument `units` .*Received: units=7"):
        layers.Dense(7)(np.ones((1, 4)))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda m, x, y: m.fit(x, y, verbose="loud"), ValueError, r"argument `verbose`.*Received: verbose='loud'"),
        (lambda m, x, y: m.fit(x, y, verbose=3), ValueError, r"argument `verbose`.*Received: verbose=3"),
        (lambda m, x, y: m.evaluate(x, y, verbose="loud"), ValueError, r"Received: verbose='loud'"),
        (lambda m, x, y: m.predict(x, verbose="loud"), ValueError, r"Received: verbose='loud'"),
        (
            lambda m, x, y: m.fit(x, y, callbacks=callbacks.History()),
            TypeError,
            r"argument `callbacks`: expected a list.*Received: callbacks=<npconv\.callbacks\.History",
        ),
        (lambda m, x, y: m.fit(x, y, callbacks=[print]), TypeError, r"Invalid callback in argument `callbacks`"),
    ],
)
def test_bad_fit_evaluate_predict_arguments_name_the_argument(call, error, message):
    model = mlp()
    model.compile("sgd", "mse")
    before = model.get_weights()
    with pytest.raises(error, match=message):
        call(model, np.zeros((4, 4)), np.zeros((4, 3)))
    assert same_weights(model.get_weights(), before)


@pytest.mark.parametrize("cls", [nc.Model, nc.Sequential])
def test_from_config_of_a_bad_config_names_the_argument(cls):
    with pytest.raises(ValueError, match=r"argument `config`: expected the keys .*missing \['name', .*config=\{\}"):
        cls.from_config({})
    with pytest.raises(TypeError, match=r"argument `config`: expected a dict.*Received: config='abc'"):
        cls.from_config("abc")
    config = mlp().get_config() if cls is nc.Sequential else nc.Model(*functional_io()).get_config()
    del config["layers"][1]["class_name"]
    entry = re.escape('argument `config["layers"][1]`')
    with pytest.raises(ValueError, match=entry + r".*missing \['class_name'\]"):
        cls.from_config(config)


def functional_io():
    x = layers.Input((4,))
    return x, layers.Dense(2)(x)


def test_load_weights_of_other_files_names_the_filepath(tmp_path):
    model = mlp()
    with pytest.raises(ValueError, match=r"load_weights reads \.npz files.*Received: filepath='x\.npy'"):
        model.load_weights("x.npy")
    np.save(tmp_path / "single.npy", np.zeros(3))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    with pytest.raises(ValueError, match=r"not an npconv weights file.*Received: filepath='.*single\.npz'"):
        model.load_weights(tmp_path / "single.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match=r"not an npconv weights file.*Received: filepath='.*text\.npz'"):
        model.load_weights(tmp_path / "text.npz")


@pytest.mark.parametrize(
    "filepath, message",
    [
        ("{val_loss}.npz", r"`filepath` uses \{val_loss\}, which this fit's logs will not hold: .*\['epoch', 'loss'\]"),
        ("{epoch:zz}.npz", r"`filepath` is not a valid format string"),
        ("{}.npz", r"`filepath` is not a valid format string"),
    ],
)
def test_model_checkpoint_with_a_missing_log_key_fails_before_the_first_step(tmp_path, filepath, message):
    model = mlp()
    model.compile("sgd", "mse")
    before, recorder = model.get_weights(), Recorder()
    checkpoint = callbacks.ModelCheckpoint(str(tmp_path / filepath))
    with pytest.raises(ValueError, match=message):
        model.fit(np.zeros((8, 4)), np.zeros((8, 3)), epochs=2, verbose=0, callbacks=[recorder, checkpoint])
    assert recorder.batches == [] and same_weights(model.get_weights(), before) and list(tmp_path.iterdir()) == []


def test_model_checkpoint_monitor_is_checked_before_the_first_step(tmp_path):
    model = mlp()
    model.compile("sgd", "mse")
    recorder = Recorder()
    checkpoint = callbacks.ModelCheckpoint(str(tmp_path / "best.npz"), save_best_only=True)  # monitors val_loss
    with pytest.raises(ValueError, match="monitors 'val_loss', which is not in the logs"):
        model.fit(np.zeros((8, 4)), np.zeros((8, 3)), verbose=0, callbacks=[recorder, checkpoint])
    assert recorder.batches == []
    name = str(tmp_path / "ck-{epoch:02d}-{val_loss:.2f}.npz")
    x, y = np.zeros((8, 4)), np.zeros((8, 3))
    model.fit(x, y, verbose=0, validation_data=(x, y), callbacks=[callbacks.ModelCheckpoint(name)])
    assert [p.name for p in tmp_path.iterdir()] == ["ck-01-0.00.npz"]


# --------------------------------------------------------------------------- bug 13: TerminateOnNaN


def keras_test_data(num_train, num_test, input_shape, num_classes):
    """keras.src.testing.test_utils.get_test_data."""
    num_sample = num_train + num_test
    templates = 2 * num_classes * np.random.random((num_classes,) + input_shape)
    y = np.random.randint(0, num_classes, size=(num_sample,))
    x = np.zeros((num_sample,) + input_shape, dtype=np.float32)
    for i in range(num_sample):
        x[i] = templates[y[i]] + np.random.normal(loc=0, scale=1.0, size=input_shape)
    return (x[:num_train], y[:num_train]), (x[num_train:], y[num_train:])


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_terminate_on_nan_as_keras_test(capsys):
    """keras/src/callbacks/terminate_on_nan_test.py, with ``keras`` replaced by npconv."""
    np.random.seed(1337)
    (x_train, y_train), (x_test, y_test) = keras_test_data(10, 10, (3,), 2)
    y_test, y_train = np.eye(2)[y_test], np.eye(2)[y_train]  # to_categorical
    model = nc.Sequential()
    initializer = nc.initializers.Constant(value=1e5)
    for _ in range(5):
        model.add(layers.Dense(2, activation="relu", kernel_initializer=initializer))
    model.add(layers.Dense(2))
    model.compile(loss="mean_squared_error", optimizer="sgd")
    history = model.fit(
        x_train,
        y_train,
        batch_size=4,
        validation_data=(x_test, y_test),
        callbacks=[callbacks.TerminateOnNaN()],
        epochs=20,
    )
    loss = history.history["loss"]
    assert len(loss) == 1
    assert np.isnan(loss[0]) or np.isinf(loss[0])
    assert model.stop_training
    out = capsys.readouterr().out
    assert re.search(r"^Batch \d+: Invalid loss, terminating training$", out, re.MULTILINE)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_terminate_on_nan_stops_within_the_epoch_and_still_validates(capsys):
    model = nc.Sequential([layers.Input((1,)), layers.Dense(1, kernel_initializer="ones")])
    model.compile(nc.optimizers.SGD(learning_rate=1e20), "mse")  # the first step overshoots
    x, y = np.ones((8, 1)), np.zeros(8)
    recorder = Recorder()
    history = model.fit(x, y, batch_size=2, epochs=3, verbose=2, shuffle=False, validation_data=(x, y),
                        callbacks=[callbacks.TerminateOnNaN(), recorder])  # fmt: skip
    assert recorder.batches == [0, 1] and history.epoch == [0]
    assert sorted(history.history) == ["loss", "val_loss"] and not np.isfinite(history.history["loss"][0])
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["Epoch 1/3", "Batch 1: Invalid loss, terminating training"]
    assert lines[2].startswith("2/4 - ") and lines[2].endswith(": see callbacks.TerminateOnNaN")
    assert issubclass(nc.callbacks.TerminateOnNaN, nc.callbacks.Callback)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_epoch_line_says_when_the_loss_is_not_finite(capsys):
    model = nc.Sequential([layers.Input((1,)), layers.Dense(1, kernel_initializer="ones")])
    model.compile(nc.optimizers.SGD(learning_rate=1e20), "mse")
    x, y = np.ones((8, 1)), np.zeros(8)
    model.fit(x, y, batch_size=2, epochs=2, verbose=2)  # no TerminateOnNaN: runs on
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].endswith("loss: nan - loss is NaN: see callbacks.TerminateOnNaN")
    assert lines[3].endswith("loss: nan - loss is NaN: see callbacks.TerminateOnNaN")
    model = nc.Sequential([layers.Input((1,)), layers.Dense(1)])
    model.compile("sgd", "mse")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(x, y, epochs=1, verbose=2)
    assert "TerminateOnNaN" not in capsys.readouterr().out
