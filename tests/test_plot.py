"""npconv.plot writes real figures without a screen (skipped without matplotlib); without the extras,
importing npconv still works and the functions that need one say which to install."""

import subprocess
import sys

import numpy as np
import pytest

from npconv import kernels


def test_without_the_extras_import_works_and_functions_say_which_extra():
    code = (
        "import sys; sys.modules['matplotlib'] = None; sys.modules['PIL'] = None; sys.modules['PIL.Image'] = None\n"
        "import numpy as np, npconv, npconv.plot, npconv.steps, npconv.image\n"
        "print(npconv.image.filter2d(np.ones((3, 3)), np.ones((3, 3)))[1, 1])\n"
        "for call in (lambda: npconv.plot.plot_kernels(np.ones((3, 3))),\n"
        "             lambda: npconv.steps.conv_steps(np.ones(3), np.ones(2)).save_gif('x.gif'),\n"
        "             lambda: npconv.image.read_image('x.png')):\n"
        "    try:\n        call()\n    except ImportError as e:\n        print(e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "9.0"  # filtering needs neither extra
    assert ['pip install "npconv[plot]"' in line for line in lines[1:]] == [True, True, False]
    assert 'pip install "npconv[image]"' in lines[3]


@pytest.fixture
def read_png():
    pytest.importorskip("matplotlib")
    image_module = pytest.importorskip("PIL.Image")

    def read(path):
        with image_module.open(path) as picture:
            return np.asarray(picture.convert("L"), dtype=float)

    return read


def test_kernel_grids(tmp_path, read_png):
    from npconv.plot import plot_kernels

    named = {"sobel_x": kernels.sobel_x(), "gaussian": kernels.gaussian(7, 1.5), "gabor": kernels.gabor(21)}
    figure = plot_kernels(named, tmp_path / "named.png")
    assert len(figure.axes) == 3 and [ax.get_title() for ax in figure.axes][0] == "sobel_x (3x3)"
    pixels = read_png(tmp_path / "named.png")
    assert pixels.shape[1] > 300 and pixels.std() > 10
    assert len(plot_kernels([kernels.sobel_x(), kernels.sobel_y()]).axes) == 2
    hwio = np.random.default_rng(0).standard_normal((3, 3, 2, 4))
    figure = plot_kernels(hwio, tmp_path / "hwio.png")
    assert len(figure.axes) == 8 and figure.axes[5].get_title() == "in 1 / out 1 (3x3)"  # a row per input channel
    assert len(plot_kernels(np.zeros((3, 3, 100)), max_kernels=10).axes) == 10
    texts = [t.get_text() for t in plot_kernels(kernels.sobel_x()).axes[0].texts]
    assert texts == ["-1", "0", "1", "-2", "0", "2", "-1", "0", "1"]  # values written in
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        plot_kernels([np.ones(3)])
    with pytest.raises(ValueError, match="Received: dpi=0"):
        plot_kernels(kernels.box(), tmp_path / "x.png", dpi=0)


def test_feature_map_grids(tmp_path, read_png):
    from npconv.plot import plot_feature_maps

    maps = np.random.default_rng(1).random((2, 16, 12, 10))
    figure = plot_feature_maps(maps, tmp_path / "maps.png", sample=1, ncols=4, title="layer 1")
    assert len(figure.axes) == 10 and figure.axes[0].images[0].get_array().shape == (16, 12)
    np.testing.assert_array_equal(figure.axes[3].images[0].get_array(), maps[1, :, :, 3])
    assert read_png(tmp_path / "maps.png").std() > 10
    first = plot_feature_maps(np.moveaxis(maps, -1, 1), data_format="channels_first", max_maps=3)
    assert len(first.axes) == 3
    np.testing.assert_array_equal(first.axes[2].images[0].get_array(), maps[0, :, :, 2])
    assert len(plot_feature_maps(maps[0, :, :, 0]).axes) == 1
    with pytest.raises(ValueError, match="Received: sample=2"):
        plot_feature_maps(maps, sample=2)
    with pytest.raises(ValueError, match=r"maps.shape=\(5,\)"):
        plot_feature_maps(np.ones(5))


def test_history_curves(tmp_path, read_png):
    from npconv.plot import plot_history

    history = {"accuracy": [0.5, 0.7, 0.8], "loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7], "val_accuracy": [0.4, 0.6, 0.7]}
    figure = plot_history(history, tmp_path / "history.png")
    assert [ax.get_title() for ax in figure.axes] == ["loss", "accuracy"]  # loss first
    lines = figure.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["training", "validation"]
    np.testing.assert_array_equal(lines[1].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(lines[1].get_ydata(), history["val_loss"])
    assert read_png(tmp_path / "history.png").std() > 10

    class History:  # Keras' History object keeps the dict in .history
        pass

    keras_like = History()
    keras_like.history = {"loss": [3.0, 2.0]}
    assert len(plot_history(keras_like).axes) == 1
    assert [ax.get_title() for ax in plot_history(history, metrics=["accuracy"]).axes] == ["accuracy"]
    with pytest.raises(ValueError, match=r"\['mae'\] not in the history"):
        plot_history(history, metrics=["mae"])
    with pytest.raises(ValueError, match="Received: history\\['loss'\\]=\\[\\]"):
        plot_history({"loss": []})
    with pytest.raises(TypeError, match="Received: history=3"):
        plot_history(3)


def test_model_feature_maps(tmp_path, read_png):
    import npconv as nc
    from npconv import layers
    from npconv.plot import plot_model_feature_maps

    nc.set_random_seed(0)
    model = nc.Sequential([layers.Input((3, 12, 10)), layers.Conv2D(6, 3, data_format="channels_first", name="conv"),
                           layers.Flatten(), layers.Dense(2, name="dense")])
    x = np.random.default_rng(2).random((3, 3, 12, 10))
    figure = plot_model_feature_maps(model, x, "conv", tmp_path / "conv.png", sample=-1, max_maps=4, ncols=2)
    assert figure.texts[0].get_text() == "conv (Conv2D): 6 maps of 10x8, first 4 shown"
    assert len(figure.axes) == 4 and read_png(tmp_path / "conv.png").std() > 10
    np.testing.assert_allclose(figure.axes[3].images[0].get_array(), model.layers[0](x)[2, 3], rtol=1e-5, atol=1e-6)  # float32, batch of 1 vs 3
    with pytest.raises(ValueError, match=r"'dense' \(Dense\) outputs shape \(2,\) per sample, not 2-D feature maps"):
        plot_model_feature_maps(model, x, "dense")
    with pytest.raises(ValueError, match="Received: sample=3"):
        plot_model_feature_maps(model, x, 0, sample=3)
