"""``nc.datasets``: IDX files written here, located by argument, ``NPCONV_DATA`` or Keras' cache,
Keras' ``mnist.npz``, clear errors without downloads, and scikit-learn's digits."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import npconv as nc
from npconv.datasets import idx

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def write_fake_mnist(directory, train=12, test=5, compress=True):
    """Four small IDX files with Fashion-MNIST's names, shapes and dtypes."""
    rng = np.random.default_rng(0)
    arrays = (
        rng.integers(0, 256, (train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, train, dtype=np.uint8),
        rng.integers(0, 256, (test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, test, dtype=np.uint8),
    )
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in zip(FILES, arrays):
        idx.write_idx(directory / (name if compress else name.removesuffix(".gz")), array)
    return arrays


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
def test_idx_round_trip(tmp_path, dtype):
    array = (np.arange(24) - 5).reshape(2, 3, 4).astype(dtype)
    idx.write_idx(tmp_path / "a.idx.gz", array)
    back = idx.read_idx(tmp_path / "a.idx.gz")
    assert back.dtype == array.dtype and np.array_equal(back, array)


def test_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="not an IDX file"):
        idx.read_idx(tmp_path / "bad")
    idx.write_idx(tmp_path / "ok", np.zeros((3, 2), np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "ok").read_bytes()[:-1])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        idx.read_idx(tmp_path / "short")
    with pytest.raises(TypeError, match="IDX cannot store"):
        idx.write_idx(tmp_path / "x", np.zeros(2, np.int64))


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_from_a_directory(tmp_path, compress):
    arrays = write_fake_mnist(tmp_path / "fm", compress=compress)
    (x_train, y_train), (x_test, y_test) = nc.datasets.fashion_mnist.load_data(path=tmp_path / "fm")
    assert x_train.shape == (12, 28, 28) and x_train.dtype == np.uint8 and y_test.shape == (5,)
    for got, expected in zip((x_train, y_train, x_test, y_test), arrays):
        assert np.array_equal(got, expected)


def test_npconv_data_and_keras_cache_locations(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NPCONV_DATA", raising=False)
    write_fake_mnist(tmp_path / "home" / ".keras" / "datasets" / "fashion-mnist", train=3)
    assert nc.datasets.fashion_mnist.load_data()[0][0].shape == (3, 28, 28)
    write_fake_mnist(tmp_path / "root" / "mnist", train=4)
    monkeypatch.setenv("NPCONV_DATA", str(tmp_path / "root"))
    assert nc.datasets.mnist.load_data()[0][0].shape == (4, 28, 28)


def test_keras_mnist_npz_cache_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NPCONV_DATA", raising=False)
    cache = tmp_path / ".keras" / "datasets"
    cache.mkdir(parents=True)
    zeros = np.zeros((2, 28, 28), np.uint8)
    np.savez(
        cache / "mnist.npz", x_train=zeros, y_train=np.ones(2, np.uint8), x_test=zeros[:1], y_test=np.ones(1, np.uint8)
    )
    (x_train, y_train), (x_test, _) = nc.datasets.mnist.load_data()
    assert x_train.shape == (2, 28, 28) and x_test.shape == (1, 28, 28) and y_train.tolist() == [1, 1]


def test_missing_files_say_where_to_put_them(tmp_path):
    (tmp_path / "half").mkdir()
    idx.write_idx(tmp_path / "half" / FILES[0], np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(FileNotFoundError) as error:
        nc.datasets.fashion_mnist.load_data(path=tmp_path / "half")
    message = str(error.value)
    assert str(tmp_path / "half") in message and "does not download" in message and "NPCONV_DATA" in message
    assert FILES[0] + " " not in message.split("not found")[0]  # only the missing ones are listed as missing
    assert all(name in message for name in FILES)


def test_digits_sizes_split_and_reproducibility():
    pytest.importorskip("sklearn")
    (x_train, y_train), (x_test, y_test) = nc.datasets.digits.load_data(size=28, test_split=0.25, seed=3)
    assert x_train.shape == (1348, 28, 28) and x_test.shape == (449, 28, 28) and x_train.dtype == np.uint8
    assert set(np.unique(y_train)) == set(range(10)) and x_train.max() == 255
    again = nc.datasets.digits.load_data(size=28, test_split=0.25, seed=3)
    assert np.array_equal(again[1][0], x_test)
    with pytest.raises(ValueError, match="Received: size=4"):
        nc.datasets.digits.load_data(size=4)


def test_digits_without_scikit_learn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"npconv\[data\]"):
        nc.datasets.digits.load_data()


def test_example_script_trains_on_idx_files(tmp_path, capsys):
    import runpy

    write_fake_mnist(tmp_path / "fm", train=40, test=10)
    example = runpy.run_path(
        str(__import__("pathlib").Path(__file__).resolve().parents[1] / "examples" / "fashion_mnist_cnn.py")
    )
    weights = tmp_path / "cnn.weights.npz"
    code = example["main"](
        ["--data", str(tmp_path / "fm"), "--epochs", "1", "--batch-size", "16", "--save", str(weights)]
    )
    out = capsys.readouterr().out
    assert code == 0 and "Total params: 421,642" in out and "test accuracy" in out and weights.exists()
    assert example["main"](["--data", str(tmp_path / "nothing")]) == 1
    assert "does not download" in capsys.readouterr().err
