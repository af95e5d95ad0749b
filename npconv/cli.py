"""The ``npconv`` command line: ``npconv demo``, ``npconv explain``, ``npconv filter``, ``npconv shape``,
``npconv bench``."""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import numpy as np

from . import kernels
from ._files import atomic_write


def _ints(text: str) -> tuple[int, ...]:
    """'1,28,28,1' -> (1, 28, 28, 1)"""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _literal(text: str):
    """'same' -> 'same', '2' -> 2, '(1, 2)' -> (1, 2), '[(0, 1), (1, 1)]' -> pairs."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="npconv", description="NumPy-native convolution: tools and demo.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo",
        help="run the tour: classic kernels, train the seeds' CNN, feature maps, explain, receptive field, fusion, pruning",
        description="A tour of convolution on data that ships (a generated image; scikit-learn's digits or generated "
        "shapes), writing figures (with matplotlib) and text into one folder; about a minute on 2 cores.",
    )
    demo.add_argument("--out", default="npconv-demo", help="output folder (default: ./npconv-demo)")
    demo.add_argument("--size", type=_positive_int, default=128, help="side of the generated test image")
    demo.add_argument("--quick", action="store_true", help="train on a few hundred images for one epoch, figures at half resolution (a few seconds)")

    exp = commands.add_parser("explain", help="explain a convolution: padding, output shape, FLOPs, algorithm")
    exp.add_argument("--input", type=_ints, required=True, help="input shape, e.g. 8,56,56,64")
    exp.add_argument("--kernel", type=_ints, required=True, help="kernel shape, e.g. 3,3,64,64")
    exp.add_argument("--stride", type=_literal, default=1)
    exp.add_argument("--padding", type=_literal, default="valid")
    exp.add_argument("--dilation", type=_literal, default=1)
    exp.add_argument("--groups", type=int, default=1)
    exp.add_argument("--data-format", default="channels_last")
    exp.add_argument("--padding-mode", default="zeros")
    exp.add_argument("--dtype", default="float32")

    flt = commands.add_parser(
        "filter",
        help="filter an image file with a kernel (PNG/JPEG/... through Pillow, or .npy)",
        description="Filter an image with a named kernel, e.g. npconv filter in.png --kernel sobel-x -o out.png. "
        "Kernels: " + ", ".join(sorted(name.replace("_", "-") for name in kernels.KERNELS)) + "; parameters as gaussian:size=7,sigma=2, or a matrix "
        "'[[0,1,0],[1,-4,1],[0,1,0]]'.",
    )
    flt.add_argument("input", help="image file (needs Pillow: pip install \"npconv[image]\") or .npy array")
    flt.add_argument("-o", "--output", required=True, help="output file: an image format, or .npy for the raw float result")
    which = flt.add_mutually_exclusive_group(required=True)
    which.add_argument("--kernel", help="kernel name (sobel-x, gaussian:size=7,sigma=2, ...) or a matrix literal")
    which.add_argument("--gradient", choices=("sobel", "scharr", "prewitt"), help="write the gradient magnitude instead")
    flt.add_argument("--mode", default="reflect", help="padding mode: zeros, constant, reflect (default), symmetric, replicate, circular")
    flt.add_argument("--pad-value", type=float, default=0.0, help="border value for --mode constant")
    flt.add_argument("--flip", action="store_true", help="true convolution (kernel rotated 180 degrees) instead of correlation")
    flt.add_argument("--gray", action="store_true", help="convert a colour image to grayscale (BT.601 luma) first")
    flt.add_argument(
        "--range",
        choices=("auto", "clip", "stretch", "abs"),
        default="auto",
        help="how results become 8-bit pixels: clip to the input's range, stretch min..max, abs = |y| from 0..max; "
        "auto: clip for kernels summing to 1 (blur, sharpen), abs otherwise",
    )
    flt.add_argument("--tile", type=int, default=512, help="tile side in pixels (bounded memory for large images)")

    shp = commands.add_parser(
        "shape",
        help="output sizes and receptive field of a stack of layers",
        description="Per-layer size, jump (cumulative stride), start and receptive field, e.g. "
        "npconv shape --input 32 conv:3 conv:3 pool:2 conv:3 conv:3 pool:2. Layers: conv:K[,s=S][,p=P][,d=D][,name=N], "
        "pool:K[,s=S][,p=P], pad:P; several dims as 3x3; P is valid, same, full, causal or an int.",
    )
    shp.add_argument("layers", nargs="+", help="layer specs, first to last")
    shp.add_argument("--input", type=_ints, help="input size, one int per spatial dim (e.g. 224,224)")
    cal = commands.add_parser(
        "calibrate",
        help="fit auto's machine factors to this CPU and store them for later processes",
        description="Times every algorithm on a dozen small convolutions (a few seconds, plus the first compilation of "
        "the Numba kernels) and stores the factors auto multiplies its estimates by, per CPU, execution path and "
        "thread count, in the user's cache directory ($NPCONV_CACHE_DIR, else $XDG_CACHE_HOME/npconv or ~/.cache/npconv).",
    )
    cal.add_argument("--threads", type=_positive_int, help="npconv's thread count to calibrate for (default: npconv's current count)")
    cal.add_argument("--repeats", type=_positive_int, default=5, help="timed runs per algorithm and probe; the fastest counts")
    commands.add_parser("bench", help="benchmark suite vs PyTorch / SciPy (npconv bench --help)", add_help=False)
    return parser


def _kernel_arg(text: str) -> tuple[str, np.ndarray]:
    """'sobel-x' / 'gaussian:size=7,sigma=2' / '[[0,1,0],[1,-4,1],[0,1,0]]' -> (description, kernel)."""
    if text.lstrip().startswith("["):
        try:
            kernel = np.array(_literal(text), dtype=float)
        except ValueError:
            kernel = np.empty(0)
        if kernel.ndim != 2 or 0 in kernel.shape:
            raise ValueError(f"a kernel matrix must be a 2-D list of numbers, e.g. [[0,1,0],[1,-4,1],[0,1,0]]. Received: --kernel {text!r}")
        return "matrix", kernel
    name, _, params = text.partition(":")
    try:
        call = ast.parse(f"kernel({params})", mode="eval").body
        kwargs = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}
        if call.args or None in kwargs:
            raise ValueError
    except (SyntaxError, ValueError):
        raise ValueError(f"kernel parameters must be key=value literals, e.g. gaussian:size=7,sigma=2. Received: --kernel {text!r}") from None
    return name, kernels.get(name, **kwargs)


def _pixel_range(args, image: np.ndarray, result: np.ndarray, kernel: np.ndarray | None):
    """(array to write, value_range) for ``--range``."""
    mode = args.range
    if mode == "auto":
        mode = "clip" if kernel is not None and abs(float(kernel.sum()) - 1.0) < 1e-6 else "abs"
    if mode == "abs":
        result = np.abs(result)
        return result, (0.0, max(float(result.max()), 1e-12))
    if mode == "clip":
        info = np.iinfo(image.dtype) if image.dtype.kind in "iu" else None
        low, high = (info.min, info.max) if info else (float(image.min()), float(image.max()))
        return result, ((low, high) if high > low else None)
    return result, None


def _filter(args) -> str:
    from . import image as nc_image

    source = Path(args.input)
    picture = np.load(source) if source.suffix == ".npy" else nc_image.read_image(source)
    if args.gray and picture.ndim == 3:
        picture = nc_image.to_gray(picture)
    if args.gradient:
        kernel, what = None, f"{args.gradient} gradient magnitude"
        result = nc_image.gradient(picture, args.gradient, padding_mode=args.mode, pad_value=args.pad_value)[0]
    else:
        name, kernel = _kernel_arg(args.kernel)
        what = f"kernel {name} {kernel.shape[0]}x{kernel.shape[1]}, {'convolution' if args.flip else 'correlation'}"
        result = nc_image.filter2d(
            picture, kernel, padding_mode=args.mode, pad_value=args.pad_value, flip=args.flip, tile_size=args.tile
        )
    target = Path(args.output)
    if target.suffix == ".npy":
        atomic_write(target, lambda temporary: np.save(temporary, result))
    else:
        nc_image.write_image(target, *_pixel_range(args, picture, result, kernel))
    return f"wrote {target} ({'x'.join(map(str, result.shape))}): {what}, padding {args.mode}"


def _calibrate(args) -> str:
    from .algorithms import calibration, execution_path
    from ._threads import get_num_threads, set_num_threads

    if args.threads:
        set_num_threads(args.threads)
    fitted = calibration.calibrate(repeats=args.repeats)
    key = calibration.machine_key(execution_path(), get_num_threads())
    lines = [f"auto's factors for {key}", f"stored in {calibration.cache_directory() / 'calibration.json'}"]
    for direction, factors in fitted.items():
        lines.append(f"  {direction:16s} " + ", ".join(f"{name} {factor:.2f}" for name, factor in factors.items()))
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        from .bench import main as bench_main

        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from .demo import run

        run(args.out, size=args.size, quick=args.quick)
        return 0
    if args.command == "calibrate":
        try:
            print(_calibrate(args))
        except OSError as error:
            print(f"npconv calibrate: cannot store the factors: {error}", file=sys.stderr)
            return 2
        return 0
    if args.command in ("filter", "shape"):
        try:
            if args.command == "filter":
                print(_filter(args))
            else:
                from .shapes import receptive_field

                print(receptive_field(args.layers, args.input))
        except (ValueError, TypeError, ImportError, OSError) as error:
            print(f"npconv {args.command}: {error}", file=sys.stderr)
            return 2
        return 0
    from .explain import explain

    try:
        report = explain(
            args.input,
            args.kernel,
            stride=args.stride,
            padding=args.padding,
            dilation=args.dilation,
            groups=args.groups,
            data_format=args.data_format,
            padding_mode=args.padding_mode,
            dtype=args.dtype,
        )
    except (ValueError, TypeError) as error:
        print(f"npconv explain: {error}", file=sys.stderr)
        return 2
    print(report)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
