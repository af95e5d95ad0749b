"""Image filtering with npconv: grayscale and colour images, every padding mode, correlation or true
convolution, gradients, Pillow I/O (the ``image`` extra) and tiles for large images.

Images are ``(H, W)`` (grayscale) or ``(H, W, C)`` (channels last: RGB, RGBA, ...), of any bool,
integer or float dtype; results are float32 (float64 for float64 images).  The output has the size
of the input: the kernel is centred on each pixel, at index ``k // 2`` along each axis (also for
even sizes), exactly as ``scipy.ndimage.correlate`` and OpenCV's ``filter2D`` do, and the border is
filled in ``padding_mode``:

| npconv ``padding_mode`` | border of ``a b c d`` | ``np.pad`` | ``scipy.ndimage`` ``mode`` | OpenCV ``borderType`` |
| --- | --- | --- | --- | --- |
| ``"zeros"`` | ``0 0 [a b c d] 0 0`` | ``constant`` | ``"constant"`` (``cval=0``) | ``BORDER_CONSTANT`` |
| ``"constant"`` (``pad_value=v``) | ``v v [a b c d] v v`` | ``constant`` | ``"constant"`` (``cval=v``) | ``BORDER_CONSTANT`` (value v) |
| ``"reflect"`` (default) | ``c b [a b c d] c b`` | ``reflect`` | ``"mirror"`` | ``BORDER_REFLECT_101`` (= ``BORDER_DEFAULT``) |
| ``"symmetric"`` | ``b a [a b c d] d c`` | ``symmetric`` | ``"reflect"`` | ``BORDER_REFLECT`` |
| ``"replicate"`` | ``a a [a b c d] d d`` | ``edge`` | ``"nearest"`` | ``BORDER_REPLICATE`` |
| ``"circular"`` | ``c d [a b c d] a b`` | ``wrap`` | ``"wrap"`` | ``BORDER_WRAP`` |

Beware: SciPy's ``"reflect"`` is npconv's (and NumPy's) ``"symmetric"``; OpenCV's ``filter2D`` refuses
``BORDER_WRAP`` (``copyMakeBorder`` has it).  Borders wider than the
image continue the pattern periodically, as in SciPy, so any kernel size works on any image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import kernels
from ._extras import positive_int, require
from ._files import atomic_write
from ._padding import source_index
from ._spec import as_numeric_array, parse_flip, parse_pad_value, parse_padding_mode, received
from .ops import conv

SCIPY_MODES = {
    "zeros": "constant",
    "constant": "constant",
    "reflect": "mirror",
    "symmetric": "reflect",
    "replicate": "nearest",
    "circular": "wrap",
}
"""npconv ``padding_mode`` -> the ``scipy.ndimage`` filter ``mode`` with the same border."""

OPENCV_BORDERS = {
    "zeros": "BORDER_CONSTANT",
    "constant": "BORDER_CONSTANT",
    "reflect": "BORDER_REFLECT_101",
    "symmetric": "BORDER_REFLECT",
    "replicate": "BORDER_REPLICATE",
    "circular": "BORDER_WRAP",
}
"""npconv ``padding_mode`` -> the OpenCV ``borderType`` with the same border."""

GRADIENT_OPERATORS = {
    "sobel": (kernels.sobel_x, kernels.sobel_y),
    "scharr": (kernels.scharr_x, kernels.scharr_y),
    "prewitt": (kernels.prewitt_x, kernels.prewitt_y),
}

LUMA_WEIGHTS = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights of R, G, B (Pillow's ``convert("L")``, OpenCV's ``COLOR_RGB2GRAY``)."""


# --------------------------------------------------------------------------- validation


def _image_array(image, name: str = "image") -> np.ndarray:
    image = as_numeric_array(image, name)
    if image.ndim not in (2, 3) or 0 in image.shape:
        raise ValueError(
            f"Invalid `{name}`: expected a non-empty (H, W) grayscale or (H, W, C) channels-last image. "
            f"Received: {name}.shape={image.shape}"
        )
    return image


def _padding_mode(padding_mode) -> str:
    foreign = {scipy: npconv for npconv, scipy in SCIPY_MODES.items() if scipy not in SCIPY_MODES}
    foreign.update({cv: npconv for npconv, cv in OPENCV_BORDERS.items()})
    if isinstance(padding_mode, str) and padding_mode in foreign:
        raise ValueError(
            f"Invalid value for argument `padding_mode`: {padding_mode!r} is a SciPy/OpenCV name; npconv "
            f"calls that border {foreign[padding_mode]!r}. {received(padding_mode=padding_mode)}"
        )
    return parse_padding_mode(padding_mode)


def _output_shape(image: np.ndarray, kernel: np.ndarray) -> tuple[int, ...]:
    """``(H, W[, C or F])`` of :func:`filter2d`, after checking the kernel against the image."""
    height, width = image.shape[:2]
    channels = image.shape[2] if image.ndim == 3 else 1
    if kernel.ndim == 2:
        return image.shape
    if kernel.ndim in (3, 4) and kernel.shape[2] == channels:
        return (height, width) if kernel.ndim == 3 else (height, width, kernel.shape[3])
    raise ValueError(
        "Invalid `kernel`: expected (kh, kw) (applied to each channel), (kh, kw, C) (summed across the "
        f"image's {channels} channel(s)) or (kh, kw, C, F) (F output maps). "
        f"Received: kernel.shape={kernel.shape}, image.shape={image.shape}"
    )


def _border_indices(n: int, before: int, after: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """For padded positions ``-before .. n + after - 1``: the image index each copies, and which ones
    lie outside the image (those get the constant in zeros/constant mode)."""
    positions = range(-before, n + after)
    copy_mode = "replicate" if mode in ("zeros", "constant") else mode
    index = np.fromiter((source_index(i, n, copy_mode) for i in positions), np.intp, n + before + after)
    outside = np.fromiter((not 0 <= i < n for i in positions), bool, n + before + after)
    return index, outside


# --------------------------------------------------------------------------- filtering


def filter2d(
    image,
    kernel,
    *,
    padding_mode: str = "reflect",
    pad_value: float = 0.0,
    flip: bool = False,
    tile_size: int = 512,
    out: np.ndarray | None = None,
    algorithm: str = "auto",
) -> np.ndarray:
    """Filter an image with a kernel; the output has the input's height and width.

    ``flip=False`` computes the cross-correlation (``scipy.ndimage.correlate``, OpenCV ``filter2D``)::

        out[i, j] = sum_{a, b} padded[i + a, j + b] * kernel[a, b]     (padded: kh // 2 rows before)

    ``flip=True`` the true convolution (``scipy.ndimage.convolve``, ``scipy.signal.convolve2d(...,
    "same")`` for odd kernels): ``out[i, j] = sum_{a, b} image[i + kh // 2 - a, j + kw // 2 - b] *
    kernel[a, b]``.  The kernel's shape says how channels are treated:

    - ``(kh, kw)``: each channel filtered on its own, output ``(H, W)`` or ``(H, W, C)``;
    - ``(kh, kw, C)``: across channels, summed into one map ``(H, W)`` (a conv layer's single filter);
    - ``(kh, kw, C, F)`` (HWIO): ``F`` maps, ``(H, W, F)``.

    (``flip=True`` rotates each channel's kernel in its spatial dims, not the channel order.)

    The image is processed in tiles of ``tile_size x tile_size`` output pixels, each read with its
    border (``kh - 1`` rows, ``kw - 1`` columns) from the image or from ``padding_mode``: the memory
    used besides the output is about ``(tile_size + kh - 1) * (tile_size + kw - 1) * C`` values
    whatever the image size.  ``out`` (e.g. a ``np.memmap``) receives the result; with a memory-mapped
    input the whole filtering then runs in bounded memory.  ``algorithm`` is passed to :func:`npconv.conv`.

    >>> import numpy as np
    >>> from npconv import kernels
    >>> image = np.array([[0, 0, 1, 1]] * 3, dtype=np.uint8)
    >>> filter2d(image, kernels.sobel_x())
    array([[0., 4., 4., 0.],
           [0., 4., 4., 0.],
           [0., 4., 4., 0.]], dtype=float32)
    >>> impulse, ramp = np.array([[0, 0, 1, 0, 0]]), np.array([[1.0, 2.0, 3.0]])
    >>> filter2d(impulse, ramp)[0], filter2d(impulse, ramp, flip=True)[0]  # correlation mirrors the kernel
    (array([0., 3., 2., 1., 0.], dtype=float32), array([0., 1., 2., 3., 0.], dtype=float32))
    """
    image = _image_array(image)
    kernel = as_numeric_array(kernel, "kernel")
    shape = _output_shape(image, kernel)
    padding_mode = _padding_mode(padding_mode)
    pad_value = parse_pad_value(pad_value)
    flip = parse_flip(flip)
    tile_size = positive_int(tile_size, "tile_size")
    dtype = np.dtype(np.float64 if image.dtype == np.float64 else np.float32)
    if out is None:
        out = np.empty(shape, dtype)
    elif not isinstance(out, np.ndarray) or out.shape != shape or out.dtype.kind != "f" or not out.flags.writeable or np.may_share_memory(out, image):
        raise ValueError(
            f"Invalid `out`: expected a writeable float array of shape {shape}, not sharing memory with the image. "
            f"Received: out={type(out).__name__}{getattr(out, 'shape', '')}"
        )

    kh, kw = kernel.shape[:2]
    # Correlation centres the kernel at k // 2; conv flips it, which moves that centre to (k - 1) // 2.
    (rows, rows_out), (cols, cols_out) = (
        _border_indices(n, (k - 1) // 2 if flip else k // 2, k // 2 if flip else (k - 1) // 2, padding_mode)
        for n, k in zip(image.shape[:2], (kh, kw))
    )
    per_channel = kernel.ndim == 2
    weights = np.asarray(kernel, dtype).reshape(kh, kw, 1 if per_channel else kernel.shape[2], -1)  # HWIO
    channels_last = image if image.ndim == 3 else image[:, :, None]
    result = out if out.ndim == 3 else out[:, :, None]
    height, width = image.shape[:2]
    for top in range(0, height, tile_size):
        bottom = min(top + tile_size, height)
        row_index = rows[top : bottom + kh - 1]
        for left in range(0, width, tile_size):
            right = min(left + tile_size, width)
            col_index = cols[left : right + kw - 1]
            block = channels_last[np.ix_(row_index, col_index)].astype(dtype, copy=False)
            if padding_mode in ("zeros", "constant"):
                block[rows_out[top : bottom + kh - 1]] = pad_value
                block[:, cols_out[left : right + kw - 1]] = pad_value
            if per_channel:  # channels as the batch: (C, h, w, 1)
                filtered = conv(np.moveaxis(block, -1, 0)[..., None], weights, flip=flip, algorithm=algorithm)
                result[top:bottom, left:right] = np.moveaxis(filtered[..., 0], 0, -1)
            else:
                result[top:bottom, left:right] = conv(block[None], weights, flip=flip, algorithm=algorithm)[0]
    return out


def gradient(image, operator: str = "sobel", *, padding_mode: str = "reflect", pad_value: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Gradient magnitude and direction from a derivative pair (``"sobel"``, ``"scharr"``, ``"prewitt"``)::

        gx = filter2d(image, <operator>_x),  gy = filter2d(image, <operator>_y)
        magnitude = sqrt(gx^2 + gy^2),        direction = arctan2(gy, gx)

    ``direction`` is in radians in ``[-pi, pi]``: 0 where intensity increases to the right, ``pi/2``
    where it increases downwards (rows point down).  Colour images give one pair per channel.

    >>> import numpy as np
    >>> magnitude, direction = gradient(np.array([[0, 0, 1, 1]] * 3, dtype=float))
    >>> magnitude[1], direction[1]
    (array([0., 4., 4., 0.]), array([0., 0., 0., 0.]))
    """
    if operator not in GRADIENT_OPERATORS:
        raise ValueError(f"Invalid value for argument `operator`: expected one of {sorted(GRADIENT_OPERATORS)}. {received(operator=operator)}")
    kx, ky = GRADIENT_OPERATORS[operator]
    gx = filter2d(image, kx(), padding_mode=padding_mode, pad_value=pad_value)
    gy = filter2d(image, ky(), padding_mode=padding_mode, pad_value=pad_value)
    return np.hypot(gx, gy), np.arctan2(gy, gx)


def to_gray(image) -> np.ndarray:
    """Luma of an RGB(A) image (alpha ignored), ``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601, as
    Pillow's ``convert("L")`` before its rounding); a grayscale image comes back as floats unchanged.

    >>> to_gray(np.array([[[255, 0, 0], [0, 0, 255]]], dtype=np.uint8))
    array([[76.245, 29.07 ]], dtype=float32)
    """
    image = _image_array(image)
    dtype = np.float64 if image.dtype == np.float64 else np.float32
    if image.ndim == 2:
        return image.astype(dtype)
    if image.shape[2] not in (3, 4):
        raise ValueError(f"Invalid `image`: to_gray needs 3 (RGB) or 4 (RGBA) channels. Received: image.shape={image.shape}")
    return (image[:, :, :3].astype(np.float64) @ np.asarray(LUMA_WEIGHTS)).astype(dtype)


# --------------------------------------------------------------------------- files (Pillow)


def to_uint8(image, value_range=None) -> np.ndarray:
    """Pixels for display or saving: uint8 images unchanged, anything else mapped linearly from
    ``value_range = (low, high)`` (default: the image's finite min and max, a contrast stretch) to
    0-255, clipped and rounded.  A constant image with no range gives zeros.

    >>> to_uint8(np.array([-1.0, 0.0, 1.0]))
    array([  0, 128, 255], dtype=uint8)
    >>> to_uint8(np.array([0.5, 2.0]), value_range=(0, 1))
    array([128, 255], dtype=uint8)
    """
    image = as_numeric_array(image, "image")
    if image.dtype == np.uint8:
        return image
    values = image.astype(np.float64)
    if value_range is None:
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    else:
        ok = isinstance(value_range, (tuple, list)) and len(value_range) == 2
        low, high = (float(v) for v in value_range) if ok else (0.0, 0.0)
        if not (ok and np.isfinite([low, high]).all() and low < high):
            raise ValueError(f"Invalid value for argument `value_range`: expected (low, high) with low < high. {received(value_range=value_range)}")
    if high == low:
        return np.zeros(image.shape, np.uint8)
    scaled = (np.nan_to_num(values, nan=low) - low) * (255.0 / (high - low))
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def read_image(path, mode: str | None = None) -> np.ndarray:
    """Read an image file with Pillow into a NumPy array: ``(H, W)`` for grayscale, ``(H, W, C)``
    otherwise, in the file's dtype (uint8 for most PNG/JPEG).  ``mode`` converts first (``"L"``:
    grayscale, ``"RGB"``, ``"RGBA"``); palette and 1-bit images are expanded to RGB(A) / L.
    Needs the ``image`` extra (``pip install "npconv[image]"``).

    >>> rgb = read_image("photo.png")          # doctest: +SKIP
    >>> rgb.shape, rgb.dtype                   # doctest: +SKIP
    ((480, 640, 3), dtype('uint8'))
    """
    pil = require("PIL.Image", "npconv.image.read_image")
    with pil.open(Path(path)) as picture:
        if mode is None and picture.mode in ("P", "PA"):
            mode = "RGBA" if picture.mode == "PA" or "transparency" in picture.info else "RGB"
        elif mode is None and picture.mode not in ("L", "LA", "RGB", "RGBA", "I", "I;16", "F"):
            mode = "L" if picture.mode == "1" else "RGB"
        return np.array(picture.convert(mode) if mode else picture)


def write_image(path, image, value_range=None) -> Path:
    """Write ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` pixels with Pillow (format from
    the file extension), converted by :func:`to_uint8` (uint8 unchanged, otherwise stretched from
    ``value_range``, default min..max).  Returns the path.  Needs the ``image`` extra.  The file is
    written atomically: if writing fails, an existing file at ``path`` is left as it was.

    >>> write_image("edges.png", filter2d(rgb, kernels.sobel_x()))   # doctest: +SKIP
    PosixPath('edges.png')
    """
    image = _image_array(image)
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise ValueError(f"Invalid `image`: can write 1, 3 or 4 channels. Received: image.shape={image.shape}")
    pil = require("PIL.Image", "npconv.image.write_image")
    pixels = to_uint8(image, value_range)
    path = Path(path)
    picture = pil.fromarray(pixels[:, :, 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels)
    atomic_write(path, picture.save)
    return path
