"""Shape calculators: a convolution's output size, and the receptive-field table of a stack of layers.

Per spatial dim, with input size ``n``, kernel ``k``, stride ``s``, dilation ``d``, padding
``(before, after)`` and the effective kernel ``k_eff = d * (k - 1) + 1``, each layer maps the table
row of its input (size, jump, start, receptive field; the input image is ``(n, 1, 0, 1)``) to::

    size_out  = (size + before + after - k_eff) // s + 1
    jump_out  = jump * s                              distance in input pixels between neighbouring outputs
    rf_out    = rf + (k_eff - 1) * jump               input pixels that can reach one output
    start_out = start + ((k_eff - 1) / 2 - before) * jump     centre of output 0's field, in input pixels

(Dang Ha The Hien, "A guide to receptive field arithmetic for CNNs", with pixel centres at
``0 .. n - 1``).  Output ``i`` of a layer sees the input pixels ``start + i * jump +- (rf - 1) / 2``;
a padding layer only moves ``start`` by ``-before * jump``.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass

import numpy as np

from ._spec import _explicit_padding, normalize_ints, output_size, received, resolve_padding
from .ops import transpose_output_size

# --------------------------------------------------------------------------- output_shape


def _sizes(value, name: str, rank: int | None = None, minimum: int = 1) -> tuple[int, ...]:
    """An int or a tuple of ints (one per spatial dim), each ``>= minimum``."""
    if rank is None:
        rank = len(value) if isinstance(value, (tuple, list)) else 1
        if rank == 0:
            raise ValueError(f"Invalid value for argument `{name}`: expected an int or one int per spatial dim, not an empty sequence. {received(**{name: value})}")
    return normalize_ints(value, rank, name, minimum=minimum)


def output_shape(input_size, kernel_size, *, stride=1, padding="valid", dilation=1, transposed=False, output_padding=None):
    """Spatial output size of a convolution or pooling window, or of a transposed convolution.

    ``input_size`` is an int (returns an int) or one int per spatial dim (returns a tuple);
    ``kernel_size``, ``stride``, ``dilation`` an int or one per dim; ``padding`` anything
    :func:`npconv.conv` accepts (``"valid"``, ``"same"`` with TensorFlow's rule, ``"full"``,
    ``"causal"``, ints, ``(before, after)`` pairs)::

        out = (n + before + after - dilation * (k - 1) - 1) // stride + 1

    ``transposed=True`` gives :func:`npconv.conv_transpose`'s size: Keras' for string padding
    (``"same"``: ``n * stride``, ``"valid"``: ``(n - 1) * stride + max(k_eff, stride)``), PyTorch's for
    explicit padding (``(n - 1) * stride - before - after + k_eff + output_padding``).

    >>> output_shape(28, 3, stride=2)                       # seed 001: 13
    13
    >>> output_shape((28, 28), 3, stride=2, padding="same")  # TensorFlow: ceil(28 / 2)
    (14, 14)
    >>> output_shape(4, 4, stride=2, padding=1, transposed=True)  # PyTorch ConvTranspose2d
    8
    """
    sizes = _sizes(input_size, "input_size")
    rank = len(sizes)
    kernel = normalize_ints(kernel_size, rank, "kernel_size")
    strides = normalize_ints(stride, rank, "stride")
    dilations = normalize_ints(dilation, rank, "dilation")
    if transposed:
        extras = (None,) * rank if output_padding is None else normalize_ints(output_padding, rank, "output_padding", minimum=0)
        if any(p is not None and p >= max(s, d) for p, s, d in zip(extras, strides, dilations)):
            raise ValueError(f"Invalid value for argument `output_padding`: must be smaller than the stride or the dilation. {received(output_padding=output_padding)}")
        pads = (padding,) * rank if isinstance(padding, str) else _explicit_padding(padding, rank)
        result = tuple(transpose_output_size(*args)[0] for args in zip(sizes, kernel, strides, dilations, pads, extras))
    else:
        if output_padding is not None:
            raise ValueError(f"Invalid argument: `output_padding` is only for transposed=True. {received(output_padding=output_padding)}")
        pairs = resolve_padding(padding, sizes, kernel, strides, dilations)
        result = tuple(output_size(n, lo, hi, k, s, d) for n, (lo, hi), k, s, d in zip(sizes, pairs, kernel, strides, dilations))
    if min(result) < 1:
        raise ValueError(
            f"The output would be empty ({result}): the kernel does not fit the padded input. "
            f"{received(input_size=input_size, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)}"
        )
    return result if isinstance(input_size, (tuple, list)) else result[0]


# --------------------------------------------------------------------------- layer specs


@dataclass(frozen=True)
class LayerGeometry:
    """The spatial geometry of one layer: ``kind`` is ``"conv"``, ``"pool"`` or ``"pad"``."""

    name: str
    kind: str
    kernel: tuple[int, ...] | None  # None for "pad"
    stride: tuple[int, ...] | None
    dilation: tuple[int, ...] | None
    padding: object  # a padding string, or one (before, after) pair per dim


_KEYS = {  # accepted dict keys -> field
    "kind": "kind", "type": "kind", "name": "name",
    "kernel_size": "kernel", "kernel": "kernel", "pool_size": "kernel", "k": "kernel",
    "stride": "stride", "strides": "stride", "s": "stride",
    "dilation": "dilation", "dilation_rate": "dilation", "d": "dilation",
    "padding": "padding", "p": "padding",
}  # fmt: skip
_POSITIONAL = {"conv": ("kernel", "stride", "padding", "dilation"), "pool": ("kernel", "stride", "padding"), "pad": ("padding",)}


def _parse_value(text: str, key: str):
    """'3' -> 3, '3x5' -> (3, 5); padding strings stay strings."""
    if key == "padding" and text.isalpha():
        return text
    parts = text.split("x")
    if not all(part.strip().isdigit() for part in parts):
        raise ValueError(f"expected an int or ints joined by 'x' (e.g. 3x3) for {key}, got {text!r}")
    values = tuple(int(part) for part in parts)
    return values[0] if len(values) == 1 else values


def _fields_from_string(text: str) -> dict:
    """'conv:3,s=2,p=same,d=1,name=c1' -> fields."""
    kind, _, rest = (part.strip() for part in text.partition(":"))
    if kind not in _POSITIONAL:
        raise ValueError(f"unknown kind {kind!r}; expected 'conv', 'pool' or 'pad'")
    fields = {"kind": kind}
    positional = iter(_POSITIONAL[kind])
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, equals, value = (part.strip() for part in item.partition("="))
        if not equals:
            key, value = next(positional, None), item
            if key is None:
                raise ValueError(f"too many values for a {kind!r} layer (expected {', '.join(_POSITIONAL[kind])})")
        elif key not in _KEYS:
            raise ValueError(f"unknown key {key!r}; use k, s, p, d or name")
        field = _KEYS.get(key, key)
        fields[field] = value if field == "name" else _parse_value(value, field)
    return fields


_SPEC_FORMS = (
    "a string such as 'conv:3,s=2', a tuple such as ('conv', 3, 2) or ('pool', 2), "
    "a dict such as {'kernel_size': 3, 'stride': 2}, or a layer object"
)


def _is_spec(spec) -> bool:
    """Whether ``spec`` has one of the forms :func:`layer_geometries` documents (its fields are
    checked later): a string, a dict, a tuple/list whose first item is the kind string, or a layer
    object (an instance with a window's attributes, or with a ``name`` like every Keras/npconv
    layer).  Numbers, None, bare tuples of ints, arrays, bytes, sets and classes are not specs."""
    if isinstance(spec, (str, dict)):
        return True
    if isinstance(spec, (tuple, list)):
        return bool(spec) and isinstance(spec[0], str)
    if spec is None or isinstance(spec, (type, numbers.Number, bytes, bytearray, set, frozenset, np.ndarray, np.generic)):
        return False
    return any(hasattr(spec, attribute) for attribute in ("kernel_size", "pool_size", "padding", "name"))


def _fields(spec) -> dict | None:
    """The raw fields of any accepted layer spec; None for a layer object without a spatial window."""
    if isinstance(spec, str):
        return _fields_from_string(spec)
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - set(_KEYS))
        if unknown:
            raise ValueError(f"unknown keys {unknown}; accepted: {sorted(_KEYS)}")
        fields = {_KEYS[key]: value for key, value in spec.items()}
        fields.setdefault("kind", "pool" if "pool_size" in spec else "conv")
        return fields
    if isinstance(spec, (tuple, list)) and spec and isinstance(spec[0], str):
        names = _POSITIONAL.get(spec[0], ())
        if len(spec) - 1 > len(names):
            raise ValueError(f"too many values for a {spec[0]!r} layer (expected {', '.join(names)})")
        return {"kind": spec[0], **dict(zip(names, spec[1:]))}
    # A layer object (npconv / Keras style), read through its attributes.
    name = getattr(spec, "name", type(spec).__name__)
    # A missing stride/padding/dilation attribute takes the default (a pool's stride: its size).
    optional = {"stride": getattr(spec, "strides", None), "padding": getattr(spec, "padding", None), "dilation": getattr(spec, "dilation_rate", None)}
    optional = {key: value for key, value in optional.items() if value is not None}
    if hasattr(spec, "kernel_size"):
        if hasattr(spec, "output_padding"):
            raise ValueError("transposed convolutions have no receptive field in this sense (they upsample)")
        return {"kind": "conv", "name": name, "kernel": spec.kernel_size, **optional}
    if hasattr(spec, "pool_size"):
        optional.pop("dilation", None)
        return {"kind": "pool", "name": name, "kernel": spec.pool_size, **optional}
    if hasattr(spec, "padding"):  # ZeroPadding
        return {"kind": "pad", "name": name, "padding": spec.padding}
    return None


def _rank_of(fields: dict) -> int:
    values = [fields.get(key) for key in ("kernel", "stride", "dilation")]
    return max((len(v) for v in values if isinstance(v, (tuple, list))), default=1)


def _geometry(fields: dict, rank: int, counts: dict) -> LayerGeometry:
    kind = fields["kind"]
    if kind not in _POSITIONAL:
        raise ValueError(f"unknown kind {kind!r}; expected 'conv', 'pool' or 'pad'")
    counts[kind] = counts.get(kind, 0) + 1
    name = str(fields.get("name") or f"{kind}{counts[kind]}")
    if kind == "pad":
        if "padding" not in fields:
            raise ValueError("a 'pad' layer needs its padding")
        pairs = _explicit_padding(fields["padding"], rank)
        if min(v for pair in pairs for v in pair) < 0:
            raise ValueError("padding must be >= 0")
        return LayerGeometry(name, kind, None, None, None, pairs)
    if "kernel" not in fields:
        raise ValueError(f"a {kind!r} layer needs its kernel size")
    kernel = normalize_ints(fields["kernel"], rank, "kernel_size")
    default_stride = kernel if kind == "pool" else 1
    stride = normalize_ints(default_stride if fields.get("stride") is None else fields["stride"], rank, "stride")
    dilation = normalize_ints(fields.get("dilation", 1), rank, "dilation")
    padding = fields.get("padding", "valid")
    if isinstance(padding, str):
        padding = padding.lower()
        resolve_padding(padding, (1,) * rank, kernel, stride, dilation)  # validates the string
    else:
        padding = resolve_padding(padding, (1,) * rank, kernel, stride, dilation)
    return LayerGeometry(name, kind, kernel, stride, dilation, padding)


def layer_geometries(layers, rank: int | None = None) -> list[LayerGeometry]:
    """Parse layer specs (or a model's ``.layers``) into :class:`LayerGeometry` records.

    Accepted specs, mixed freely (``k``: kernel size, ``s``: stride, ``p``: padding, ``d``:
    dilation; each an int or one per spatial dim):

    - strings: ``"conv:3"``, ``"conv:3,s=2,p=same,d=2,name=c1"``, ``"pool:2"`` (stride = size),
      ``"pool:3,s=2"``, ``"pad:1"``; several dims as ``3x5``;
    - tuples: ``("conv", k, s=1, p="valid", d=1)``, ``("pool", k, s=k, p="valid")``, ``("pad", p)``;
    - dicts: ``{"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 1, "kind": "conv", "name": ..}``
      (Keras' ``strides``, ``dilation_rate``, ``pool_size`` too; no ``kind`` means conv, as in seed 003);
    - layer objects with ``kernel_size``/``strides``/``padding``/``dilation_rate`` (convolutions), or
      ``pool_size``/``strides``/``padding`` (pooling), or only ``padding`` (zero padding); other layers
      (activations, normalisation, dropout, dense, flatten) have no window and are left out;
    - a model: any object with a ``.layers`` list, walked in order as a chain (a model among the
      layers, such as a Sequential inside a Keras model, is walked in place).

    Anything else in the list (a number, None, a bare tuple of ints such as ``(3, 1)``, an array, a
    class instead of an instance) raises ``TypeError`` naming ``layers``; a spec of an accepted form
    with a bad field raises ``ValueError`` naming its index.

    >>> [g.kernel for g in layer_geometries(["conv:3", ("pool", 2), {"kernel_size": 5}])]
    [(3,), (2,), (5,)]
    """
    return _parse_layers(layers, rank)[1]


def _flattened(specs, prefix: str = "", seen: frozenset = frozenset()):
    """(index text, spec) of every spec in order; a nested model (a layer object with its own
    ``.layers``, e.g. a Sequential inside a Keras model) is walked in place: ``"2].layers[0"``."""
    for index, spec in enumerate(specs):
        label = f"{prefix}{index}"
        nested = getattr(spec, "layers", None) if not isinstance(spec, (str, dict, tuple, list, type)) else None
        if isinstance(nested, (list, tuple)) and id(spec) not in seen:
            yield from _flattened(nested, f"{label}].layers[", seen | {id(spec)})
        else:
            yield label, spec


def _parse_layers(layers, rank: int | None) -> tuple[int, list[LayerGeometry]]:
    """(rank, geometries): the rank is ``rank`` or, when None, the largest any spec spells out."""
    specs = list(layers.layers) if hasattr(layers, "layers") else layers
    if isinstance(specs, (str, dict)) or not isinstance(specs, (list, tuple)):
        raise TypeError(f"Invalid type for argument `layers`: expected a list of layer specs or a model with `.layers`. {received(layers=layers)}")
    parsed = []
    for index, spec in _flattened(specs):
        if not _is_spec(spec):
            whole = received(layers=layers)
            whole = whole if len(whole) <= 300 else whole[:297] + "..."
            raise TypeError(
                f"Invalid type for argument `layers`: layers[{index}]={spec!r} is not a layer spec; expected {_SPEC_FORMS}. {whole}"
            )
        try:
            fields = _fields(spec)
        except (ValueError, TypeError) as error:
            raise ValueError(f"Invalid layer spec at index {index}: {error}. Received: layers[{index}]={spec!r}") from None
        if fields is not None:
            parsed.append((index, spec, fields))
    if rank is None:
        rank = max((_rank_of(fields) for _, _, fields in parsed), default=1)
    counts: dict = {}
    geometries = []
    for index, spec, fields in parsed:
        try:
            geometries.append(_geometry(fields, rank, counts))
        except (ValueError, TypeError) as error:
            raise ValueError(f"Invalid layer spec at index {index}: {error}. Received: layers[{index}]={spec!r}") from None
    return rank, geometries


# --------------------------------------------------------------------------- receptive_field


@dataclass(frozen=True)
class ReceptiveFieldRow:
    """One row of :func:`receptive_field`'s table; tuples have one entry per spatial dim.

    ``padding`` and ``size`` are None where they depend on an unknown input size (``"same"`` at a
    stride > 1); ``start`` is None from such a layer on.
    """

    name: str
    kind: str
    kernel: tuple[int, ...] | None
    stride: tuple[int, ...] | None
    dilation: tuple[int, ...] | None
    padding: tuple[tuple[int, int], ...] | None
    size: tuple[int, ...] | None
    jump: tuple[int, ...]
    start: tuple[float, ...] | None
    receptive_field: tuple[int, ...]


_COLUMNS = ("layer", "kind", "kernel", "stride", "dilation", "padding", "size", "jump", "start", "rf")


def _cell(values) -> str:
    """One table cell: '?' for unknown, one value when every dim agrees, else one per dim joined by
    'x' (paddings 'before+after', joined by '/')."""
    if values is None:
        return "?"
    texts = [f"{v[0]}+{v[1]}" if isinstance(v, tuple) else f"{v:g}" for v in values]
    if len(set(texts)) == 1:
        return texts[0]
    return ("/" if isinstance(values[0], tuple) else "x").join(texts)


@dataclass(frozen=True)
class ReceptiveFieldTable:
    """The per-layer receptive-field table; ``str()`` prints it, ``rows`` / ``to_dicts()`` hold it.

    The properties give the last row's values (the whole stack's).
    """

    rows: tuple[ReceptiveFieldRow, ...]

    @property
    def receptive_field(self) -> tuple[int, ...]:
        return self.rows[-1].receptive_field

    @property
    def jump(self) -> tuple[int, ...]:
        return self.rows[-1].jump

    @property
    def start(self) -> tuple[float, ...] | None:
        return self.rows[-1].start

    @property
    def size(self) -> tuple[int, ...] | None:
        return self.rows[-1].size

    def to_dicts(self) -> list[dict]:
        """One dict per row (e.g. for ``pandas.DataFrame``)."""
        return [asdict(row) for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index) -> ReceptiveFieldRow:
        return self.rows[index]

    def __str__(self) -> str:
        table = [_COLUMNS]
        for row in self.rows:
            cells = [_cell(v) if v is not None else "-" for v in (row.kernel, row.stride, row.dilation)]
            cells.append("-" if row.kind == "input" else _cell(row.padding))
            table.append((row.name, row.kind, *cells, _cell(row.size), _cell(row.jump), _cell(row.start), _cell(row.receptive_field)))
        widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
        return "\n".join(
            "  ".join(cell.ljust(width) if i < 2 else cell.rjust(width) for i, (cell, width) in enumerate(zip(line, widths))).rstrip()
            for line in table
        )

    __repr__ = __str__


def receptive_field(layers, input_size=None) -> ReceptiveFieldTable:
    """Receptive field, jump (cumulative stride), start and output size after every layer.

    ``layers`` is a list of layer specs or a model (see :func:`layer_geometries`); ``input_size``
    (an int, or one per spatial dim) adds the sizes and resolves ``"same"`` padding at stride > 1.
    The recurrences are in the module docstring.  Seed 003's VGG-style stack (conv3, conv3, pool2,
    conv3, conv3, pool2): receptive field 16, cumulative stride 4:

    >>> table = receptive_field([{"kernel_size": 3}, {"kernel_size": 3}, ("pool", 2),
    ...                          "conv:3", "conv:3", "pool:2"], input_size=32)
    >>> table.receptive_field, table.jump, table.start, table.size
    ((16,), (4,), (7.5,), (5,))
    >>> print(table)
    layer  kind   kernel  stride  dilation  padding  size  jump  start  rf
    input  input       -       -         -        -    32     1      0   1
    conv1  conv        3       1         1      0+0    30     1      1   3
    conv2  conv        3       1         1      0+0    28     1      2   5
    pool1  pool        2       2         1      0+0    14     2    2.5   6
    conv3  conv        3       1         1      0+0    12     2    4.5  10
    conv4  conv        3       1         1      0+0    10     2    6.5  14
    pool2  pool        2       2         1      0+0     5     4    7.5  16
    """
    sizes = None if input_size is None else _sizes(input_size, "input_size")
    rank, geometries = _parse_layers(layers, None if sizes is None else len(sizes))
    size, jump, start, field = sizes, (1,) * rank, (0.0,) * rank, (1,) * rank
    rows = [ReceptiveFieldRow("input", "input", None, None, None, None, size, jump, start, field)]
    for layer in geometries:
        if layer.kind == "pad":  # no window: only the size and where output 0 sits change
            pads, extents, strides = layer.padding, (1,) * rank, (1,) * rank
        elif layer.padding == "same" and size is None and max(layer.stride) > 1:
            pads, extents, strides = None, _extents(layer), layer.stride  # TensorFlow's split needs the size
        else:
            pads = resolve_padding(layer.padding, size or (1,) * rank, layer.kernel, layer.stride, layer.dilation)
            extents, strides = _extents(layer), layer.stride
        if size is not None and pads is not None:
            size = tuple((n + lo + hi - e) // s + 1 for n, (lo, hi), e, s in zip(size, pads, extents, strides))
            if min(size) < 1:
                raise ValueError(f"Layer {layer.name!r} does not fit its input: output size {size}. {received(input_size=input_size)}")
        else:
            size = None
        if start is not None and pads is not None:
            start = tuple(a + ((e - 1) / 2 - lo) * j for a, e, (lo, _), j in zip(start, extents, pads, jump))
        else:
            start = None
        field = tuple(r + (e - 1) * j for r, e, j in zip(field, extents, jump))
        jump = tuple(j * s for j, s in zip(jump, strides))
        rows.append(ReceptiveFieldRow(layer.name, layer.kind, layer.kernel, layer.stride, layer.dilation, pads, size, jump, start, field))
    return ReceptiveFieldTable(tuple(rows))


def _extents(layer: LayerGeometry) -> tuple[int, ...]:
    """Effective kernel sizes ``d * (k - 1) + 1``."""
    return tuple(d * (k - 1) + 1 for k, d in zip(layer.kernel, layer.dilation))
