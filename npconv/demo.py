"""``npconv demo``: a short tour that runs anywhere (no downloads, only generated data).

1. Filters a generated test image with Sobel and Laplacian kernels and writes the results.
2. Prints ``nc.explain`` for that convolution.
3. Recomputes the worked examples of the seed tutorials, by hand and with npconv, and says where a
   tutorial's printed result is wrong.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import kernels
from .explain import explain
from .ops import conv


def synthetic_image(size: int = 128) -> np.ndarray:
    """A grayscale test image in [0, 1]: a soft horizontal ramp, a disc, a square and a diagonal bar.

    >>> img = synthetic_image(64)
    >>> img.shape, float(img.min()) >= 0.0, float(img.max()) <= 1.0
    ((64, 64), True, True)
    """
    rows, cols = np.mgrid[0:size, 0:size] / size
    image = 0.25 * cols
    image[(rows - 0.35) ** 2 + (cols - 0.3) ** 2 < 0.18**2] = 0.9
    image[(rows > 0.55) & (rows < 0.85) & (cols > 0.55) & (cols < 0.85)] = 0.6
    image[np.abs(rows - cols) < 0.03] = 1.0
    return image


def write_grayscale(path: Path, image: np.ndarray) -> Path:
    """Save ``image`` scaled to 0-255: PNG through Pillow when installed, else binary PGM."""
    low, high = float(image.min()), float(image.max())
    pixels = np.zeros(image.shape, np.uint8) if high == low else ((image - low) / (high - low) * 255).round().astype(np.uint8)
    try:
        from PIL import Image
    except ImportError:
        path = path.with_suffix(".pgm")
        path.write_bytes(b"P5 %d %d 255\n" % (pixels.shape[1], pixels.shape[0]) + pixels.tobytes())
        return path
    path = path.with_suffix(".png")
    Image.fromarray(pixels).save(path)
    return path


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


def run(out_dir: str | Path = "npconv-demo", size: int = 128) -> Path:
    """Run the demo, printing as it goes; returns the output folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    np.set_printoptions(precision=3, suppress=True)

    print(f"[1/3] Filtering a generated {size}x{size} test image with classic kernels")
    image = synthetic_image(size)
    x = image[None, :, :, None]
    written = [write_grayscale(out / "input", image)]
    responses = {}
    for name, kernel in [("sobel_x", kernels.sobel_x()), ("sobel_y", kernels.sobel_y()), ("laplacian", kernels.laplacian(4))]:
        responses[name] = conv(x, kernel[:, :, None, None], padding="same", padding_mode="reflect")[0, :, :, 0]
        written.append(write_grayscale(out / name, responses[name]))
    magnitude = np.hypot(responses["sobel_x"], responses["sobel_y"])
    written.append(write_grayscale(out / "gradient_magnitude", magnitude))
    for path in written:
        print(f"      wrote {path}")
    print(f"      strongest edge response {magnitude.max():.3f} at pixel {tuple(int(i) for i in np.unravel_index(magnitude.argmax(), magnitude.shape))}")

    print("\n[2/3] nc.explain for the Sobel convolution:")
    print(explain(x.shape, (3, 3, 1, 1), padding="same", padding_mode="reflect", dtype=x.dtype))

    print("\n[3/3] The seed tutorials' worked examples, recomputed")
    example = seed_004_example()
    print("  Seed 004: 5x5x3 volume (generated), edge-detection filter per channel, P=1, S=2")
    for c in range(3):
        print(f"    input channel {c}:\n" + _indent(example["volume"][:, :, c], 6))
    print("    by hand (plain loops):\n" + _indent(example["by_hand"], 6))
    print("    npconv:\n" + _indent(example["npconv"], 6))
    print(f"    identical: {np.array_equal(example['by_hand'], example['npconv'])}")
    seed_000 = seed_000_example()
    print("  Seed 000: tf.nn.conv2d of its 4x5 input with [[1,0],[0,1]], VALID")
    print("    npconv (3x4, as TF gives):\n" + _indent(seed_000, 6))
    print("    the tutorial printed a 3x3 map, which is wrong (a 2x2 VALID window fits 3x4 times):\n" + _indent(SEED_000_PRINTED, 6))

    print(f"\nDone in {time.perf_counter() - started:.1f} s. Output folder: {out.resolve()}")
    return out


def _indent(array: np.ndarray, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in str(array).splitlines())
