"""``npconv demo``: a tour of convolution that runs anywhere (no downloads), writing into one folder.

1. Filters a generated test image with the classic kernels (Sobel, Laplacian, Gaussian, Gabor, ...).
2. Loads scikit-learn's handwritten digits (16x16), or generated shapes without scikit-learn.
3. Trains the seed tutorials' CNN on them for a few epochs and reports the test accuracy.
4. Shows what its layers see: learned kernels and the feature maps of a test image.
5. Prints ``nc.explain`` for each of its convolutions, and 6. its receptive-field table.
7. Folds BatchNormalization into the convolutions of a variant (same predictions) and prunes the
   CNN's weakest channels (parameters, multiply-adds and accuracy before and after).
8. Recomputes the worked examples of the seed tutorials, by hand and with npconv.

Figures need matplotlib (the ``plot`` extra), PNG files Pillow (``image``), the digits scikit-learn
(``data``); without them the tour still runs and says what it skipped.
"""

from __future__ import annotations

import importlib
import math
import re
import time
from pathlib import Path

import numpy as np

from . import image as nc_image
from . import kernels
from ._files import atomic_write
from .callbacks import Callback, LearningRateScheduler
from .explain import explain
from .initializers import set_random_seed
from .ops import conv
from .plot import save_figure

# --------------------------------------------------------------------------- generated data


def synthetic_image(size: int = 128) -> np.ndarray:
    """A grayscale test image in [0, 1]: a soft horizontal ramp, a disc, a square, a diagonal bar and
    a patch of vertical stripes (period ``size / 13``, what the default Gabor kernel is tuned to).

    >>> img = synthetic_image(64)
    >>> img.shape, float(img.min()) >= 0.0, float(img.max()) <= 1.0
    ((64, 64), True, True)
    """
    rows, cols = np.mgrid[0:size, 0:size] / size
    image = 0.25 * cols
    image[(rows - 0.35) ** 2 + (cols - 0.3) ** 2 < 0.18**2] = 0.9
    image[(rows > 0.55) & (rows < 0.85) & (cols > 0.55) & (cols < 0.85)] = 0.6
    image[np.abs(rows - cols) < 0.03] = 1.0
    stripes = (rows > 0.08) & (rows < 0.38) & (cols > 0.62) & (cols < 0.92)
    image[stripes] = 0.5 + 0.4 * np.sin(2 * np.pi * 13 * cols[stripes])
    return image


SHAPES = ("horizontal bar", "vertical bar", "diagonal \\", "diagonal /", "plus", "cross", "disc", "ring", "square", "frame")


def load_shapes(size: int = 16, count: int = 1797, test_split: float = 0.2, seed: int = 0):
    """A generated stand-in for the digits: ``count`` noisy ``size x size`` images of the 10 shapes in
    :data:`SHAPES` (random position, size and brightness), shaped like :func:`npconv.datasets.digits.load_data`:
    ``((x_train, y_train), (x_test, y_test))``, uint8 images 0-255 and labels 0-9.

    >>> (x_train, y_train), (x_test, y_test) = load_shapes(count=50)
    >>> x_train.shape, x_test.shape, x_train.dtype, sorted(set(y_train.tolist()))[:3]
    ((40, 16, 16), (10, 16, 16), dtype('uint8'), [0, 1, 2])
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size] + 0.5
    labels = rng.integers(0, len(SHAPES), count)
    images = np.empty((count, size, size))
    for i, label in enumerate(labels):
        dy, dx = rows - size / 2 - rng.uniform(-size / 8, size / 8), cols - size / 2 - rng.uniform(-size / 8, size / 8)
        radius, width = size * rng.uniform(0.25, 0.4), size * rng.uniform(0.05, 0.09)
        inside, distance = np.maximum(np.abs(dy), np.abs(dx)) < radius, np.hypot(dy, dx)
        bars = [np.abs(dy) < width, np.abs(dx) < width, np.abs(dy - dx) < 1.4 * width, np.abs(dy + dx) < 1.4 * width]
        mask = [
            bars[0] & inside, bars[1] & inside, bars[2] & inside, bars[3] & inside,
            (bars[0] | bars[1]) & inside, (bars[2] | bars[3]) & inside,
            distance < radius, np.abs(distance - radius + width) < width,
            np.maximum(np.abs(dy), np.abs(dx)) < 0.8 * radius, inside & (np.maximum(np.abs(dy), np.abs(dx)) > radius - 2 * width),
        ][label]  # fmt: skip
        images[i] = mask * rng.uniform(0.6, 1.0) + rng.normal(0, 0.08, (size, size))
    x = (np.clip(images, 0, 1) * 255).round().astype(np.uint8)
    n_test = int(round(count * test_split))
    return (x[n_test:], labels[n_test:].astype(np.uint8)), (x[:n_test], labels[:n_test].astype(np.uint8))


def write_grayscale(path: Path, image: np.ndarray) -> Path:
    """Save ``image`` scaled to 0-255 (atomically): PNG through Pillow when installed, else binary PGM."""
    low, high = float(image.min()), float(image.max())
    pixels = np.zeros(image.shape, np.uint8) if high == low else ((image - low) / (high - low) * 255).round().astype(np.uint8)
    try:
        from PIL import Image
    except ImportError:
        header = b"P5 %d %d 255\n" % (pixels.shape[1], pixels.shape[0])
        return atomic_write(path.with_suffix(".pgm"), lambda temporary: temporary.write_bytes(header + pixels.tobytes()))
    return atomic_write(path.with_suffix(".png"), Image.fromarray(pixels).save)


# --------------------------------------------------------------------------- the seed tutorials' examples


def by_hand_conv2d(volume: np.ndarray, kernel: np.ndarray, padding: int, stride: int) -> np.ndarray:
    """The tutorial's by-hand computation: zero-pad, slide, multiply, sum — plain Python loops.

    ``volume`` is ``(H, W, C)``, ``kernel`` ``(kh, kw, C)``; returns the ``(out_h, out_w)`` map.
    """
    height, width, channels = volume.shape
    kh, kw, _ = kernel.shape
    padded = [[[0.0] * channels for _ in range(width + 2 * padding)] for _ in range(height + 2 * padding)]
    for i in range(height):
        for j in range(width):
            for c in range(channels):
                padded[i + padding][j + padding][c] = float(volume[i, j, c])
    out_h = (height + 2 * padding - kh) // stride + 1
    out_w = (width + 2 * padding - kw) // stride + 1
    result = np.zeros((out_h, out_w))
    for oi in range(out_h):
        for oj in range(out_w):
            total = 0.0
            for a in range(kh):
                for b in range(kw):
                    for c in range(channels):
                        total += padded[oi * stride + a][oj * stride + b][c] * float(kernel[a, b, c])
            result[oi, oj] = total
    return result


def seed_004_example() -> dict:
    """Seed 004's example: a 5x5x3 input volume, the edge-detection filter on each channel, zero
    padding P=1, stride S=2 -> a 3x3 output.  The article shows its numbers only as images, so the
    volume here is generated (integers 0-2, seed 4); the point is that by hand == npconv.
    """
    volume = np.random.default_rng(4).integers(0, 3, size=(5, 5, 3)).astype(float)
    kernel = np.repeat(kernels.edge_detect()[:, :, None], 3, axis=2)
    npconv_result = conv(volume[None], kernel[:, :, :, None], stride=2, padding=1)[0, :, :, 0]
    return {
        "volume": volume,
        "kernel": kernel,
        "npconv": npconv_result,
        "by_hand": by_hand_conv2d(volume, kernel, padding=1, stride=2),
    }


SEED_000_INPUT = np.array([[1, 2, 3, 0, 1], [0, 1, 2, 3, 1], [1, 0, 1, 2, 2], [2, 1, 0, 1, 0]], dtype=float)
SEED_000_KERNEL = np.array([[1, 0], [0, 1]], dtype=float)
SEED_000_PRINTED = np.array([[2, 5, 5], [1, 4, 7], [3, 1, 3]], dtype=float)  # what the tutorial shows


def seed_000_example() -> np.ndarray:
    """Seed 000's tf.nn.conv2d example (4x5 input, 2x2 identity-diagonal kernel, VALID): 3x4 output."""
    return conv(SEED_000_INPUT[None, :, :, None], SEED_000_KERNEL[:, :, None, None])[0, :, :, 0]


# --------------------------------------------------------------------------- the model


def seeds_cnn(input_shape=(16, 16, 1), batch_norm: bool = False):
    """The seed tutorials' CNN (Conv2D 32 3x3 same relu, MaxPool, Conv2D 64 3x3 same relu, MaxPool,
    Flatten, Dense 128 relu, Dense 10 softmax); ``batch_norm=True`` puts a BatchNormalization between
    each convolution (then without bias and activation) and its ReLU, with ``momentum=0.9`` so that
    the moving statistics catch up within a short training.

    >>> seeds_cnn((28, 28, 1)).count_params()          # as Keras counts it
    421642
    """
    from . import layers
    from .models import Sequential

    def block(filters: int) -> list:
        if not batch_norm:
            return [layers.Conv2D(filters, (3, 3), padding="same", activation="relu")]
        return [layers.Conv2D(filters, (3, 3), padding="same", use_bias=False), layers.BatchNormalization(momentum=0.9), layers.ReLU()]

    return Sequential(
        [
            layers.Input(shape=input_shape),
            *block(32),
            layers.MaxPooling2D((2, 2)),
            *block(64),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )


class EpochLine(Callback):
    """Prints one line per epoch: loss, accuracy, validation accuracy and the epoch's time."""

    def __init__(self, indent: int = 6):
        super().__init__()
        self.indent = indent

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        values = ", ".join(f"{name} {value:.3f}" for name, value in (logs or {}).items() if name in ("loss", "accuracy", "val_accuracy"))
        print(f"{' ' * self.indent}epoch {epoch + 1}/{self.params['epochs']}: {values} ({time.perf_counter() - self.started:.1f} s)", flush=True)


# --------------------------------------------------------------------------- the tour


def _available(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


FILTERS = [  # (title, kernel, colour map): signed responses on a diverging map centred at 0
    ("Sobel x", kernels.sobel_x(), "RdBu_r"),
    ("Sobel y", kernels.sobel_y(), "RdBu_r"),
    ("Laplacian", kernels.laplacian(4), "RdBu_r"),
    ("LoG, sigma 1.4", kernels.laplacian_of_gaussian(9, 1.4), "RdBu_r"),
    ("Gaussian, sigma 2", kernels.gaussian(7, 2.0), "gray"),
    ("motion blur 45°", kernels.motion_blur(9, 45.0), "gray"),
    ("sharpen", kernels.sharpen(), "gray"),
    ("emboss", kernels.emboss(), "gray"),
    ("Gabor 0°", kernels.gabor(21, theta=0.0), "RdBu_r"),
    ("Gabor 90°", kernels.gabor(21, theta=math.pi / 2), "RdBu_r"),
]


class Tour:
    """The demo's state: output folder, clock, step counter, files written and extras missing."""

    def __init__(self, out: Path, steps: int, dpi: int = 100):
        self.out, self.steps, self.step_index, self.dpi = out, steps, 0, dpi
        self.started = time.perf_counter()
        self.written: list[Path] = []
        self.plots = _available("matplotlib")
        self.skipped = [] if self.plots else ['figures (matplotlib is not installed: pip install "npconv[plot]")']
        if not _available("PIL"):
            self.skipped.append('PNG images and the GIF (Pillow is not installed: pip install "npconv[image]"); images are PGM')

    def step(self, title: str) -> None:
        self.step_index += 1
        print(f"\n[{self.step_index}/{self.steps}] {title}  ({time.perf_counter() - self.started:.1f} s)", flush=True)

    def wrote(self, path: Path) -> Path:
        self.written.append(path)
        print(f"      wrote {path}", flush=True)
        return path

    def save(self, figure, name: str) -> None:
        self.wrote(save_figure(figure, self.out / name, self.dpi))

    def text(self, name: str, content: str) -> None:
        self.wrote(atomic_write(self.out / name, lambda temporary: temporary.write_text(content + "\n")))


def _filters_figure(image: np.ndarray, responses: dict):
    """The input and every filter response ``{title: (values, colour map, kernel shape)}``, each with
    its colour map (signed ones centred at 0)."""
    from .plot import _panels

    panels = {"input (generated)": (image, "gray"), **{f"{title} ({shape[0]}x{shape[1]})": (values, cmap) for title, (values, cmap, shape) in responses.items()}}
    figure, axes = _panels(len(panels), 4, 2.6)
    for ax, (title, (values, cmap)) in zip(axes, panels.items()):
        bound = float(np.abs(values).max()) or 1.0
        limits = {"vmin": -bound, "vmax": bound} if cmap == "RdBu_r" else {}
        ax.imshow(values, cmap=cmap, **limits)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    figure.suptitle("Classic kernels (npconv.kernels) on a generated image: image.filter2d, reflect borders; blue < 0 < red")
    return figure


def _filter_image(tour: Tour, size: int) -> None:
    tour.step(f"Filtering a generated {size}x{size} image with the classic kernels")
    image = synthetic_image(size)
    responses = {title: (nc_image.filter2d(image, kernel), cmap, kernel.shape) for title, kernel, cmap in FILTERS}
    magnitude, _ = nc_image.gradient(image, "sobel")
    responses["Sobel gradient magnitude"] = (magnitude, "magma", (3, 3))
    y, x = np.unravel_index(magnitude.argmax(), magnitude.shape)
    print(f"      {len(FILTERS)} kernels; strongest Sobel edge {magnitude.max():.2f} at pixel ({y}, {x})")
    if tour.plots:
        from .plot import plot_kernels

        tour.save(_filters_figure(image, responses), "filters.png")
        figure = plot_kernels({title: kernel for title, kernel, _ in FILTERS}, ncols=4)
        figure.suptitle("The kernels (npconv.kernels), each on its own scale: red > 0 > blue")
        tour.save(figure, "kernels.png")
        return
    folder = tour.out / "filters"
    folder.mkdir(exist_ok=True)
    tour.wrote(write_grayscale(folder / "input", image))
    for title, (values, _, _) in responses.items():
        name = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")  # "LoG, sigma 1.4" -> log_sigma_1_4
        tour.wrote(write_grayscale(folder / name, values))


def _load_data(tour: Tour, quick: bool):
    from .datasets import digits

    try:
        (x_train, y_train), (x_test, y_test) = digits.load_data(size=16)
        names = [str(d) for d in range(10)]
        print(f"      scikit-learn's handwritten digits, 8x8 upsampled to 16x16: {len(x_train)} training, {len(x_test)} test images")
    except ImportError:
        tour.skipped.append("the digits (scikit-learn is not installed: pip install \"npconv[data]\"); trained on generated shapes")
        (x_train, y_train), (x_test, y_test) = load_shapes(16)
        names = list(SHAPES)
        print(f"      scikit-learn is not installed: generated shapes ({', '.join(SHAPES)}), 16x16: {len(x_train)} training, {len(x_test)} test images")
    if quick:
        x_train, y_train, x_test, y_test = x_train[:320], y_train[:320], x_test[:100], y_test[:100]
        print(f"      --quick: {len(x_train)} training and {len(x_test)} test images")
    return (x_train[..., None] / 255, y_train), (x_test[..., None] / 255, y_test), names


def _train(model, data, epochs: int, learning_rate: float = 2e-3, indent: int = 6):
    (x_train, y_train), (x_test, y_test), _ = data
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    decay = LearningRateScheduler(lambda epoch: learning_rate * 0.5**epoch)
    return model.fit(x_train, y_train, epochs=epochs, batch_size=32, validation_data=(x_test, y_test), callbacks=[decay, EpochLine(indent)], verbose=0)


def _accuracy(model, x, y) -> float:
    return float((model.predict(x, verbose=0).argmax(axis=1) == y).mean())


def _look_inside(tour: Tour, model, data) -> None:
    (_, _), (x_test, y_test), names = data
    predicted = model.predict(x_test[:1], verbose=0).argmax(axis=1)[0]
    label = f"test image 0: {names[y_test[0]]}, predicted {names[predicted]}"
    print(f"      {label}")
    if not tour.plots:
        tour.wrote(write_grayscale(tour.out / "test_image", x_test[0, :, :, 0]))
        return
    from .plot import plot_kernels, plot_model_feature_maps

    from .layers import Conv2D

    conv1, conv2 = [layer for layer in model.layers if isinstance(layer, Conv2D)]
    figure = plot_kernels(conv1.kernel.data, ncols=8, annotate=False)
    figure.suptitle(f"{conv1.name}: the 32 learned 3x3 kernels (red > 0 > blue)")
    tour.save(figure, "learned_kernels.png")
    for layer, name in ((None, "test_image.png"), (conv1, "feature_maps_conv1.png"), (conv2, "feature_maps_conv2.png")):
        if layer is None:
            figure = _single_image(x_test[0, :, :, 0], label)
        else:
            figure = plot_model_feature_maps(model, x_test, layer, cmap="viridis", ncols=8)
            figure.suptitle(f"{figure.texts[0].get_text()} (after ReLU) for {label}; each map on its own colour scale", fontsize=10)
        tour.save(figure, name)


def _single_image(values: np.ndarray, title: str):
    from ._extras import new_figure

    figure = new_figure(figsize=(3.2, 3.5), layout="constrained")
    ax = figure.subplots()
    ax.imshow(values, cmap="gray_r")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return figure


def _explain_layers(model, batch_size: int) -> None:
    from .layers import Conv2D
    from .layers._args import SPATIAL_FIRST_KERNEL
    from .tools._graph import layer_calls

    for node in layer_calls(model):
        layer = node.layer
        if not isinstance(layer, Conv2D):
            continue
        x_shape = (batch_size, *node.inputs[0].shape[1:])
        report = explain(
            x_shape, layer.kernel.shape, stride=layer.strides, padding=layer.padding, dilation=layer.dilation_rate,
            groups=layer.groups, data_format=layer.data_format, kernel_format=SPATIAL_FIRST_KERNEL[layer.rank],
        )  # fmt: skip
        print(f"      {layer.name} (forward, a training batch of {batch_size}):")
        print("\n".join("        " + line for line in str(report).splitlines()))


def _fuse_and_prune(tour: Tour, model, data, epochs: int) -> None:
    from .tools import fuse_model, prune_channels

    (x_train, y_train), (x_test, y_test), _ = data
    print("      a) BatchNormalization folded into the convolutions (for inference)")
    variant = seeds_cnn(batch_norm=True)
    _train(variant, data, epochs, indent=9)
    fused, report = fuse_model(variant)
    print("\n".join("         " + line for line in str(report).splitlines()))
    timings = []
    for candidate in (variant, fused):
        started = time.perf_counter()
        probabilities = candidate.predict(x_test, verbose=0)
        timings.append((time.perf_counter() - started, probabilities))
    difference = float(np.abs(timings[0][1] - timings[1][1]).max())
    print(f"         {len(variant.layers)} -> {len(fused.layers)} layers, {variant.count_params():,} -> {fused.count_params():,} parameters; "
          f"largest difference of the predicted probabilities {difference:.1e}")  # fmt: skip
    print(f"         test accuracy {_accuracy(variant, x_test, y_test):.3f} -> {_accuracy(fused, x_test, y_test):.3f}; "
          f"predict {timings[0][0] * 1e3:.0f} ms -> {timings[1][0] * 1e3:.0f} ms")  # fmt: skip

    print("      b) pruning half of each convolution's channels (lowest L1 norm first), then one epoch of fine-tuning")
    pruned, report = prune_channels(model, 0.5)
    print("\n".join("         " + line for line in str(report).splitlines()))
    before = _accuracy(pruned, x_test, y_test)
    _train(pruned, data, 1, learning_rate=1e-4, indent=9)
    print(f"         test accuracy {_accuracy(model, x_test, y_test):.3f} -> {before:.3f} pruned -> {_accuracy(pruned, x_test, y_test):.3f} fine-tuned")
    tour.text("pruning.txt", str(report))


def _seed_examples(tour: Tour) -> None:
    example = seed_004_example()
    print("      Seed 004: 5x5x3 volume (generated), edge-detection filter per channel, P=1, S=2")
    for c in range(3):
        print(f"        input channel {c}:\n" + _indent(example["volume"][:, :, c], 10))
    print("        by hand (plain loops):\n" + _indent(example["by_hand"], 10))
    print("        npconv:\n" + _indent(example["npconv"], 10))
    print(f"        identical: {np.array_equal(example['by_hand'], example['npconv'])}")
    if tour.plots and _available("PIL"):
        from .steps import conv_steps

        steps = conv_steps(example["volume"], example["kernel"], stride=2, padding=1)
        tour.wrote(steps.save_gif(tour.out / "seed004_steps.gif", dpi=tour.dpi * 4 // 5))
    seed_000 = seed_000_example()
    print("      Seed 000: tf.nn.conv2d of its 4x5 input with [[1,0],[0,1]], VALID")
    print("        npconv (3x4, as TF gives):\n" + _indent(seed_000, 10))
    print("        the tutorial printed a 3x3 map, which is wrong (a 2x2 VALID window fits 3x4 times):\n" + _indent(SEED_000_PRINTED, 10))


def run(out_dir: str | Path = "npconv-demo", size: int = 128, quick: bool = False) -> Path:
    """Run the tour, printing as it goes; returns the output folder.  ``quick`` trains on a few
    hundred images for one epoch and draws at half resolution (for tests); the full tour takes well
    under two minutes."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tour = Tour(out, 8, dpi=50 if quick else 100)
    epochs = 1 if quick else 4
    with np.printoptions(precision=3, suppress=True):
        print(f"npconv demo: writing into {out.resolve()}" + ("" if not tour.skipped else "; skipping " + "; ".join(tour.skipped)))
        _filter_image(tour, size)

        tour.step("Loading the data")
        data = _load_data(tour, quick)

        tour.step(f"Training the seed tutorials' CNN for {epochs} epoch(s), batch 32, Adam")
        set_random_seed(0)
        model = seeds_cnn()
        history = _train(model, data, epochs)
        (_, _), (x_test, y_test), _ = data
        print(f"      {model.count_params():,} parameters; test accuracy {_accuracy(model, x_test, y_test):.3f}")
        if tour.plots:
            from .plot import plot_history

            tour.save(plot_history(history, title="The seeds' CNN: training and test (validation) curves"), "history.png")

        tour.step("What the layers see: learned kernels and feature maps of a test image")
        _look_inside(tour, model, data)

        tour.step("nc.explain for each convolution of the model")
        _explain_layers(model, batch_size=32)

        tour.step("Receptive field of each layer: nc.receptive_field(model, input_size=(16, 16))")
        from .shapes import receptive_field

        table = str(receptive_field(model, input_size=(16, 16)))
        print("\n".join("      " + line for line in table.splitlines()))
        tour.text("receptive_field.txt", table)

        tour.step("Conv-BatchNorm fusion and channel pruning (npconv.tools)")
        _fuse_and_prune(tour, model, data, epochs=1 if quick else 2)

        tour.step("The seed tutorials' worked examples, recomputed")
        _seed_examples(tour)

    print(f"\nDone in {time.perf_counter() - tour.started:.1f} s: {len(tour.written)} files in {out.resolve()}")
    for skipped in tour.skipped:
        print(f"  skipped: {skipped}")
    return out


def _indent(array: np.ndarray, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in str(array).splitlines())
