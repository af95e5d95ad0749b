"""The ``npconv`` command line: ``npconv demo``, ``npconv explain``, ``npconv bench``."""

from __future__ import annotations

import argparse
import ast
import sys


def _ints(text: str) -> tuple[int, ...]:
    """'1,28,28,1' -> (1, 28, 28, 1)"""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _literal(text: str):
    """'same' -> 'same', '2' -> 2, '(1, 2)' -> (1, 2), '[(0, 1), (1, 1)]' -> pairs."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="npconv", description="NumPy-native convolution: tools and demo.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run the tour: filter a generated image, explain, seed examples")
    demo.add_argument("--out", default="npconv-demo", help="output folder (default: ./npconv-demo)")
    demo.add_argument("--size", type=int, default=128, help="side of the generated test image")

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
    commands.add_parser("bench", help="benchmark suite vs PyTorch / SciPy (npconv bench --help)", add_help=False)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        from .bench import main as bench_main

        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from .demo import run

        run(args.out, size=args.size)
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
