"""``model.summary()``: the table Keras 3 prints, character for character (without colours).

Keras renders its summary with ``rich``; this module reproduces that layout: column widths from
Keras' ``positions`` of the line length (``min(88 or 108, terminal columns - 4)``), widened by
rich's one-space cell padding and shrunk back with rich's ``ratio_reduce``, heavy header borders,
a rule between rows, cells wrapped at spaces and over-long words cut with an ellipsis.
"""

from __future__ import annotations

import shutil
import sys
import textwrap

import numpy as np


def readable_memory_size(size: float) -> str:
    """Keras' byte formatting: ``1.61 MB``, ``0.00 B``."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def _ratio_reduce(total: int, values: list[int]) -> list[int]:
    """rich's ``ratio_reduce`` with equal ratios: take ``total`` off ``values`` as evenly as possible."""
    result, remaining, ratio_left = [], total, len(values)
    for value in values:
        taken = min(value, round(remaining / ratio_left))
        result.append(value - taken)
        remaining -= taken
        ratio_left -= 1
    return result


def column_widths(line_length: int, positions) -> list[int]:
    """Cell widths (padding included) of a table ``line_length`` wide split at ``positions``."""
    widths, current = [], 0
    for position in positions:
        width = int(position * line_length) - current
        if width < 4:
            raise ValueError("Insufficient console width to print summary.")
        widths.append(width + 2)
        current += width
    excess = sum(widths) - (line_length - len(widths) - 1)
    return _ratio_reduce(excess, widths) if excess > 0 else widths


def _wrap(text: str, width: int) -> list[str]:
    """rich's wrapping: greedy at spaces; a word wider than the cell is cut with an ellipsis."""
    lines = textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]
    return [line if len(line) <= width else line[: width - 1] + "…" for line in lines]


def render_table(header: list[str], rows: list[list[str]], widths: list[int], right_aligned: set[int]) -> list[str]:
    """Box-drawn table lines: heavy header, a light rule between body rows."""

    def border(left, fill, middle, right):
        return left + middle.join(fill * w for w in widths) + right

    def cells(values, bar):
        wrapped = [_wrap(v, w - 2) for v, w in zip(values, widths)]
        lines = []
        for i in range(max(len(c) for c in wrapped)):
            parts = []
            for column, (chunks, w) in enumerate(zip(wrapped, widths)):
                text = chunks[i] if i < len(chunks) else ""
                parts.append(" " + (text.rjust(w - 2) if column in right_aligned else text.ljust(w - 2)) + " ")
            lines.append(bar + bar.join(parts) + bar)
        return lines

    lines = [border("┏", "━", "┳", "┓"), *cells(header, "┃"), border("┡", "━", "╇", "┩")]
    for i, row in enumerate(rows):
        if i:
            lines.append(border("├", "─", "┼", "┤"))
        lines.extend(cells(row, "│"))
    lines.append(border("└", "─", "┴", "┘"))
    return lines


def _memory(arrays) -> int:
    return sum(np.asarray(a).nbytes for a in arrays)


def summary_text(model, line_length=None, positions=None) -> str:
    """The text of ``model.summary()``."""
    rows, sequential_like = model._summary_rows()
    if sequential_like:
        default_length, default_positions = 88, [0.45, 0.80, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #"]
    else:
        default_length, default_positions = 108, [0.3, 0.56, 0.74, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
    line_length = line_length or min(default_length, shutil.get_terminal_size().columns - 4)
    widths = column_widths(line_length, positions or default_positions)
    table = render_table(header, rows, widths, right_aligned={2})

    trainable = [w.data for w in model.trainable_weights]
    frozen = [w.data for w in model.non_trainable_weights]
    optimizer = getattr(model, "optimizer", None)
    optimizer_arrays = optimizer.variables if optimizer is not None and optimizer.built else []
    counts = [sum(a.size for a in group) for group in (trainable, frozen, optimizer_arrays)]
    sizes = [_memory(group) for group in (trainable, frozen, optimizer_arrays)]
    lines = [f'Model: "{model.name}"', *table]
    lines.append(f" Total params: {sum(counts):,} ({readable_memory_size(sum(sizes))})")
    lines.append(f" Trainable params: {counts[0]:,} ({readable_memory_size(sizes[0])})")
    lines.append(f" Non-trainable params: {counts[1]:,} ({readable_memory_size(sizes[1])})")
    if optimizer_arrays:
        lines.append(f" Optimizer params: {counts[2]:,} ({readable_memory_size(sizes[2])})")
    return "\n".join(lines) + "\n"


def print_summary(model, line_length=None, positions=None, print_fn=None) -> None:
    text = summary_text(model, line_length, positions)
    if print_fn is None:
        sys.stdout.write(text)
    else:
        print_fn(text)
