"""output_shape and receptive_field against hand-derived tables and against brute force.

Every table below is derived by hand in its comments (k_eff = d*(k-1)+1; size' = (size + lo + hi -
k_eff) // s + 1; jump' = jump*s; rf' = rf + (k_eff-1)*jump; start' = start + ((k_eff-1)/2 - lo)*jump),
and each architecture is also checked by brute force: which input positions the input gradient of
one output unit reaches through the same stack of npconv convolutions (ones kernels).
"""

import numpy as np
import pytest

import npconv as nc
from npconv.shapes import layer_geometries, output_shape, receptive_field

# --------------------------------------------------------------------------- output_shape


@pytest.mark.parametrize(
    "args, kwargs, expected",
    [
        ((28, 3), dict(stride=2), 13),  # seed 001: (28 - 3) // 2 + 1
        ((7, 3), dict(), 5),  # seed 003: (7 + 0 - 3) // 1 + 1
        ((7, 3), dict(stride=2), 3),  # seed 003: (7 - 3) // 2 + 1
        (((28, 28), 3), dict(stride=2, padding="same"), (14, 14)),  # TF: ceil(28 / 2)
        ((224, 7), dict(stride=2, padding=3), 112),  # ResNet stem: (224 + 6 - 7) // 2 + 1
        ((64, 3), dict(dilation=4), 56),  # k_eff 9: 64 - 9 + 1
        ((10, 3), dict(dilation=2, padding="causal"), 10),  # causal keeps the length
        ((5, 3), dict(padding="full"), 7),  # 5 + 2 + 2 - 3 + 1
        (((9, 6), (3, 2)), dict(stride=(2, 1), padding=((1, 0), (0, 1))), (4, 6)),  # (9+1-3)//2+1, (6+1-2)//1+1
        ((4, 3), dict(stride=2, padding="same", transposed=True), 8),  # Keras: n * s
        ((4, 3), dict(stride=2, padding="valid", transposed=True), 9),  # Keras: (n-1)*s + max(k, s)
        ((4, 4), dict(stride=2, padding=1, transposed=True), 8),  # PyTorch: (4-1)*2 - 2 + 4
        ((4, 3), dict(stride=2, padding=1, output_padding=1, transposed=True), 8),  # (4-1)*2 - 2 + 3 + 1
    ],
)
def test_output_shape_hand_values(args, kwargs, expected):
    assert output_shape(*args, **kwargs) == expected


@pytest.mark.parametrize("n, k, s, d", [(9, 3, 1, 1), (10, 4, 3, 1), (11, 3, 2, 2), (16, 5, 4, 3), (7, 2, 2, 1)])
@pytest.mark.parametrize("padding", ["valid", "same", "full", 1, [(2, 0)]])
def test_output_shape_equals_npconv(n, k, s, d, padding):
    y = nc.conv1d(np.zeros((1, n, 1)), np.zeros((k, 1, 1)), stride=s, dilation=d, padding=padding)
    assert output_shape(n, k, stride=s, dilation=d, padding=padding) == y.shape[1]
    t = nc.conv_transpose(np.zeros((1, n, 1)), np.zeros((k, 1, 1)), stride=s, dilation=d, padding=padding)
    assert output_shape(n, k, stride=s, dilation=d, padding=padding, transposed=True) == t.shape[1]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: output_shape(5, 7), "The output would be empty"),
        (lambda: output_shape(5, 3, stride=0), "Received: stride=0"),
        (lambda: output_shape(-5, 3), r"Received: input_size=-5"),
        (lambda: output_shape((5, 5), (3, 3, 3)), r"Received: kernel_size=\(3, 3, 3\)"),
        (lambda: output_shape(5, 3, output_padding=1), "only for transposed"),
        (lambda: output_shape(5, 3, stride=2, output_padding=2, transposed=True), "Received: output_padding=2"),
        (lambda: output_shape(5, 3, padding="middle"), "Received: padding='middle'"),
    ],
)
def test_output_shape_errors(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


# --------------------------------------------------------------------------- receptive_field

# (layers, input size, expected rows after the input: (size, jump, start, rf)), all derived by hand.
ARCHITECTURES = {
    # Seed 003's VGG-style stack (conv3, conv3, pool2/2, conv3, conv3, pool2/2; no padding) on 32:
    # rf 1+2=3, +2=5, +1=6 (j 2), +4=10, +4=14, +2=16 (j 4); start 1, 2, 2.5, 4.5, 6.5, 7.5.
    "vgg_seed": (
        [{"kernel_size": 3, "stride": 1}, {"kernel_size": 3, "stride": 1}, {"kernel_size": 2, "stride": 2},
         {"kernel_size": 3, "stride": 1}, {"kernel_size": 3, "stride": 1}, {"kernel_size": 2, "stride": 2}],
        32,
        [(30, 1, 1, 3), (28, 1, 2, 5), (14, 2, 2.5, 6), (12, 2, 4.5, 10), (10, 2, 6.5, 14), (5, 4, 7.5, 16)],
    ),
    # ResNet stem and a strided conv, explicit padding, on 224: conv7/2 p3 -> (224+6-7)//2+1 = 112,
    # pool3/2 p1 -> (112+2-3)//2+1 = 56, conv3/2 p1 -> (56+2-3)//2+1 = 28; rf 7, 7+2*2 = 11,
    # 11+2*4 = 19; every layer pads (k-1)/2, so start stays 0.
    "strided": (
        [("conv", 7, 2, 3), ("pool", 3, 2, 1), ("conv", 3, 2, 1)],
        224,
        [(112, 2, 0, 7), (56, 4, 0, 11), (28, 8, 0, 19)],
    ),
    # TensorFlow "same" at stride 2 on 28: total padding (14-1)*2+3-28 = 1 -> (0, 1); 14; then on 14:
    # (7-1)*2+3-14 = 1 -> (0, 1); 7.  start 0 + (1 - 0)*1 = 1, then 1 + (1 - 0)*2 = 3; rf 3, 3+2*2 = 7.
    "same_stride2": (["conv:3,s=2,p=same", "conv:3,s=2,p=same"], 28, [(14, 2, 1, 3), (7, 4, 3, 7)]),
    # Dilated 3x3 stack, "same": k_eff 3, 5, 9 -> rf 3, 7, 15, symmetric padding keeps start 0.
    "dilated": (["conv:3,d=1,p=same", "conv:3,d=2,p=same", "conv:3,d=4,p=same"], 64, [(64, 1, 0, 3), (64, 1, 0, 7), (64, 1, 0, 15)]),
    # The same without padding: sizes 62, 58, 50; start 1, 1+2 = 3, 3+4 = 7.
    "dilated_valid": (["conv:3,d=1", "conv:3,d=2", "conv:3,d=4"], 64, [(62, 1, 1, 3), (58, 1, 3, 7), (50, 1, 7, 15)]),
    # LeNet-5 on 32: conv5 28, pool2 14, conv5 10, pool2 5; rf 5, 6, 6+4*2 = 14, 14+1*2 = 16 (the
    # second pool still sees jump 2); start 2, 2.5, 2.5+2*2 = 6.5, 6.5+0.5*2 = 7.5.
    "lenet_pooling": (["conv:5", "pool:2", "conv:5", "pool:2"], 32, [(28, 1, 2, 5), (14, 2, 2.5, 6), (10, 2, 6.5, 14), (5, 4, 7.5, 16)]),
    # AlexNet on 227, overlapping 3/2 pools: conv11/4 -> 55 (rf 11, start 5), pool3/2 -> 27 (19, 9),
    # conv5 p2 -> 27 (19+4*8 = 51), pool -> 13 (67, 9+1*8 = 17), 3x conv3 p1 (99, 131, 163),
    # pool -> 6 (163+2*16 = 195, 17+16 = 33).
    "alexnet": (
        ["conv:11,s=4", "pool:3,s=2", "conv:5,p=2", "pool:3,s=2", "conv:3,p=1", "conv:3,p=1", "conv:3,p=1", "pool:3,s=2"],
        227,
        [(55, 4, 5, 11), (27, 8, 9, 19), (27, 8, 9, 51), (13, 16, 17, 67), (13, 16, 17, 99), (13, 16, 17, 131), (13, 16, 17, 163), (6, 32, 33, 195)],
    ),
    # 1-D causal (WaveNet): k=2, dilations 1, 2, 4, 8; causal pads (k_eff-1, 0) so the size stays 100;
    # rf 2, 4, 8, 16; start moves by -(k_eff-1)/2: -0.5, -1.5, -3.5, -7.5 (output i sees i-15 .. i).
    "causal_1d": (["conv:2,p=causal,d=1", "conv:2,p=causal,d=2", "conv:2,p=causal,d=4", "conv:2,p=causal,d=8"], 100,
                  [(100, 1, -0.5, 2), (100, 1, -1.5, 4), (100, 1, -3.5, 8), (100, 1, -7.5, 16)]),
}  # fmt: skip

# VGG16 on 224 (3x3 convs with padding 1, 2x2 pools): a conv adds 2*jump to the field, a pool 1*jump
# and doubles the jump; padding 1 keeps start, a pool adds 0.5*jump.  Block ends: 6, 16, 44, 100, 212.
ARCHITECTURES["vgg16"] = (
    [layer for b, n in enumerate([2, 2, 3, 3, 3], 1) for layer in [f"conv:3,p=1,name=conv{b}_{i}" for i in range(1, n + 1)] + [f"pool:2,name=pool{b}"]],
    224,
    [(224, 1, 0, 3), (224, 1, 0, 5), (112, 2, 0.5, 6),
     (112, 2, 0.5, 10), (112, 2, 0.5, 14), (56, 4, 1.5, 16),
     (56, 4, 1.5, 24), (56, 4, 1.5, 32), (56, 4, 1.5, 40), (28, 8, 3.5, 44),
     (28, 8, 3.5, 60), (28, 8, 3.5, 76), (28, 8, 3.5, 92), (14, 16, 7.5, 100),
     (14, 16, 7.5, 132), (14, 16, 7.5, 164), (14, 16, 7.5, 196), (7, 32, 15.5, 212)],
)  # fmt: skip


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_receptive_field_tables_equal_hand_derived_values(name):
    layers, size, expected = ARCHITECTURES[name]
    table = receptive_field(layers, size)
    assert [(r.size[0], r.jump[0], r.start[0], r.receptive_field[0]) for r in table.rows[1:]] == expected
    assert table.rows[0].size == (size,) and table.rows[0].receptive_field == (1,)


def one_dim_chain(table):
    """(kernel, stride, padding, dilation) per layer, for nc.conv1d; a padding layer is a 1-tap conv."""
    return [(r.kernel[0] if r.kernel else 1, r.stride[0] if r.stride else 1, [r.padding[0]], r.dilation[0] if r.dilation else 1) for r in table.rows[1:]]


def reached_inputs(chain, n, index):
    """Input positions the gradient of output ``index`` reaches through the chain (ones kernels)."""
    shapes, x = [], np.zeros((1, n, 1))
    for k, s, p, d in chain:
        shapes.append(x.shape)
        x = nc.conv1d(x, np.ones((k, 1, 1)), stride=s, padding=p, dilation=d)
    grad = np.zeros(x.shape)
    grad[0, index, 0] = 1.0
    for (k, s, p, d), shape in reversed(list(zip(chain, shapes))):
        grad = nc.conv_backprop_input(grad, np.ones((k, 1, 1)), shape, stride=s, padding=p, dilation=d)
    return np.flatnonzero(grad[0, :, 0] > 0.5)  # ones kernels: every path adds 1 (FFT leaves 1e-17 elsewhere)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_receptive_field_equals_brute_force(name):
    layers, size, _ = ARCHITECTURES[name]
    table = receptive_field(layers, size)
    rf, jump, start = table.receptive_field[0], table.jump[0], table.start[0]
    # an output unit whose field lies inside the input (so padding does not clip it)
    index = next(i for i in range(table.size[0]) if start + i * jump - (rf - 1) / 2 >= 0)
    reached = reached_inputs(one_dim_chain(table), size, index)
    assert reached.min() == start + index * jump - (rf - 1) / 2
    assert reached.max() == start + index * jump + (rf - 1) / 2
    assert len(reached) == rf  # no holes in these stacks


def test_seed_003_vgg_example_is_reproduced():
    # The seed's compute_receptive_field(vgg_layers) prints "Receptive field: 16, Stride: 4".
    table = receptive_field(ARCHITECTURES["vgg_seed"][0])
    assert table.receptive_field == (16,) and table.jump == (4,)
    assert [row.name for row in table.rows] == ["input", "conv1", "conv2", "conv3", "conv4", "conv5", "conv6"]
    assert table.size is None and table.start == (7.5,)  # start needs no input size here


def test_two_dims_spec_forms_and_table_text():
    table = receptive_field([("conv", (3, 5), (1, 2), ((1, 1), (2, 2))), {"pool_size": 2}, "pad:1x0"], input_size=(10, 12))
    # conv: (10+2-3)//1+1 = 10, (12+4-5)//2+1 = 6; pool 2: 5, 3; pad 1x0: 7, 3.
    assert [row.size for row in table.rows] == [(10, 12), (10, 6), (5, 3), (7, 3)]
    assert table.receptive_field == (4, 7) and table.jump == (2, 4)
    # start: conv (1-1)*1 = 0, (2-2)*1 = 0; pool +0.5*j: 0.5, 0.5*2 = 1; pad -1*j: 0.5-2, 1-0
    assert table.start == (-1.5, 1.0)
    text = str(table).splitlines()
    assert text[0].split() == ["layer", "kind", "kernel", "stride", "dilation", "padding", "size", "jump", "start", "rf"]
    assert text[1].split() == ["input", "input", "-", "-", "-", "-", "10x12", "1", "0", "1"]
    assert text[2].split() == ["conv1", "conv", "3x5", "1x2", "1", "1+1/2+2", "10x6", "1x2", "0", "3x5"]
    assert text[4].split() == ["pad1", "pad", "-", "-", "-", "1+1/0+0", "7x3", "2x4", "-1.5x1", "4x7"]
    assert table.to_dicts()[1]["receptive_field"] == (3, 5)


def test_unknown_size_leaves_same_padding_at_stride_2_open():
    table = receptive_field(["conv:3,p=same", "conv:3,s=2,p=same", "conv:3"])
    assert table.rows[1].padding == ((1, 1),) and table.rows[1].start == (0.0,)
    assert table.rows[2].padding is None and table.rows[2].start is None and table.rows[3].start is None
    assert table.receptive_field == (9,) and table.jump == (2,)  # 3, 3 + 2*1, 5 + 2*2
    assert str(table).splitlines()[3].split()[5:] == ["?", "?", "2", "?", "5"]


class FakeConv:  # the attribute names of Keras / npconv layers
    def __init__(self, k, s=1, padding="valid", d=1, name="conv"):
        self.kernel_size, self.strides, self.padding, self.dilation_rate, self.name = (k, k), (s, s), padding, (d, d), name


class FakePool:
    def __init__(self, k, name="pool"):
        self.pool_size, self.strides, self.padding, self.name = (k, k), (k, k), "valid", name


class FakeActivation:
    name = "relu"


class FakeTranspose(FakeConv):
    output_padding = None


class FakeModel:
    def __init__(self, layers):
        self.layers = layers


def test_models_are_walked_through_their_layers():
    model = FakeModel([FakeConv(3, name="c1"), FakeActivation(), FakePool(2, name="p1"), FakeConv(3, d=2, padding="same", name="c2")])
    table = receptive_field(model, (32, 32))
    assert [row.name for row in table.rows] == ["input", "c1", "p1", "c2"]  # the activation has no window
    # c1: 30, rf 3, start 1; p1: 15, rf 4, j 2, start 1.5; c2 (k_eff 5, same): 15, rf 4+4*2 = 12.
    assert table.size == (15, 15) and table.receptive_field == (12, 12) and table.start == (1.5, 1.5)
    with pytest.raises(ValueError, match="index 1: transposed convolutions"):
        receptive_field(FakeModel([FakeConv(3), FakeTranspose(3)]))


def test_npconv_models_when_available():
    layers = pytest.importorskip("npconv.layers")
    model = pytest.importorskip("npconv.models").Sequential(
        [layers.Input((32, 32, 3)), layers.Conv2D(4, 3), layers.MaxPooling2D(), layers.ZeroPadding2D(1),
         layers.Conv2D(4, 3, strides=2, dilation_rate=1, padding="same"), layers.Flatten(), layers.Dense(2)]
    )  # fmt: skip
    table = receptive_field(model, (32, 32))
    # conv 30 (rf 3, start 1); pool 15 (rf 4, j 2, start 1.5); pad 17 (start 1.5-2 = -0.5);
    # conv 3/2 same on 17: ceil(17/2) = 9, total (9-1)*2+3-17 = 2 -> (1, 1), start -0.5+0 = -0.5, rf 4+2*2 = 8.
    assert [r.kind for r in table.rows] == ["input", "conv", "pool", "pad", "conv"]
    assert table.size == (9, 9) and table.receptive_field == (8, 8) and table.jump == (4, 4) and table.start == (-0.5, -0.5)
    assert model(np.zeros((1, 32, 32, 3))).shape == (1, 2)


@pytest.mark.parametrize(
    "layers, message",
    [
        (["conv:3", "foo:2"], "index 1: unknown kind 'foo'"),
        (["conv:3,s=0"], r"index 0: .*Received: stride=0"),
        (["conv:3,q=2"], "index 0: unknown key 'q'"),
        (["conv:3,1,valid,1,9"], "too many values"),
        ([{"kernel_size": 3, "strides": 2, "size": 4}], r"unknown keys \['size'\]"),
        ([("pool",)], "needs its kernel size"),
        (["conv:3,p=causal", "conv:3x3"], "'causal' padding is only defined for 1-D"),
        ([("conv", 3.5)], r"index 0: .*kernel_size"),
    ],
)
def test_bad_layer_specs_name_the_layer(layers, message):
    with pytest.raises(ValueError, match=message):
        receptive_field(layers)


def test_bad_arguments_and_inputs_not_modified():
    with pytest.raises(ValueError, match=r"does not fit its input.*Received: input_size=4"):
        receptive_field(["conv:3", "conv:3"], input_size=4)
    with pytest.raises(TypeError, match="Received: layers='conv:3'"):
        receptive_field("conv:3")
    specs = [{"kernel_size": 3}, ["pool", 2]]
    receptive_field(specs, 8)
    assert specs == [{"kernel_size": 3}, ["pool", 2]]
    assert [g.kind for g in layer_geometries(specs)] == ["conv", "pool"]


@pytest.mark.parametrize(
    "layers, shown",
    [
        ([(3, 1), (3, 2)], r"layers\[0\]=\(3, 1\) is not a layer spec.*Received: layers=\[\(3, 1\), \(3, 2\)\]"),
        ([3, 3], r"layers\[0\]=3 is not a layer spec.*Received: layers=\[3, 3\]"),
        ([None], r"layers\[0\]=None is not a layer spec.*Received: layers=\[None\]"),
        (["conv:3", None], r"layers\[1\]=None is not a layer spec.*Received: layers=\['conv:3', None\]"),
        ([3.0], r"layers\[0\]=3.0 .*Received: layers=\[3.0\]"),
        ([True], r"layers\[0\]=True .*Received: layers=\[True\]"),
        ([[3, 3]], r"layers\[0\]=\[3, 3\] .*Received: layers=\[\[3, 3\]\]"),
        ([()], r"layers\[0\]=\(\) .*Received: layers=\[\(\)\]"),
        ([b"conv:3"], r"layers\[0\]=b'conv:3' .*Received: layers=\[b'conv:3'\]"),
        ([{3}], r"layers\[0\]=\{3\} .*Received: layers="),
        ([np.array([3, 1])], r"layers\[0\]=array\(\[3, 1\]\) .*Received: layers="),
        ([FakeConv], r"layers\[0\]=<class .*FakeConv'> .*Received: layers="),  # the class, not an instance
        ([object()], r"layers\[0\]=<object object .*Received: layers="),
        (FakeModel([FakeConv(3), 5]), r"layers\[1\]=5 is not a layer spec.*Received: layers=<"),
    ],
)
def test_values_that_are_no_layer_spec_raise_instead_of_a_field_of_1(layers, shown):
    # Regression: these returned receptive field 1 (every non-spec was skipped as a window-less layer).
    with pytest.raises(TypeError, match=r"Invalid type for argument `layers`: " + shown):
        receptive_field(layers)
    with pytest.raises(TypeError, match="argument `layers`"):
        layer_geometries(layers)


def test_long_layers_lists_are_shortened_in_the_message():
    with pytest.raises(TypeError) as error:
        receptive_field(["conv:3"] * 200 + [None])
    assert "layers[200]=None" in str(error.value) and len(str(error.value)) < 700


def test_window_less_layer_objects_and_an_empty_stack_are_still_accepted():
    assert receptive_field([FakeActivation(), "conv:3"]).receptive_field == (3,)
    assert receptive_field([]).receptive_field == (1,)  # an empty stack: the input itself
    assert receptive_field(FakeModel([FakeActivation()]), 8).size == (8,)


class StrideLessConv:  # a conv-like object without `strides` / `dilation_rate` / `padding`
    kernel_size, name = (3,), "c"


class StrideLessPool:
    pool_size, name = (2,), "p"


def test_layer_objects_missing_optional_attributes_take_the_defaults():
    # Was an AttributeError (neither ValueError nor TypeError); now conv stride 1, pool stride = size.
    table = receptive_field([StrideLessConv(), StrideLessPool()], 10)
    assert [row.size for row in table.rows] == [(10,), (8,), (4,)]
    assert table.receptive_field == (4,) and table.jump == (2,)


@pytest.mark.parametrize("empty", [(), []])
def test_empty_input_size_is_refused(empty):
    # Regression: an empty input_size reached min() of an empty table ("min() arg is an empty sequence").
    with pytest.raises(ValueError, match=r"Invalid value for argument `input_size`.*Received: input_size="):
        receptive_field([], input_size=empty)
    with pytest.raises(ValueError, match=r"Invalid value for argument `input_size`.*Received: input_size="):
        output_shape(empty, 3)


def test_a_model_among_the_layers_is_walked_in_place():
    # Was silently skipped (no window attributes): a Keras model holding a Sequential lost its layers.
    inner = FakeModel([FakeConv(3, name="inner1"), FakePool(2, name="inner_pool")])
    table = receptive_field(FakeModel([FakeConv(3, name="c0"), inner, FakeConv(3, name="c2")]), (16, 16))
    assert [row.name for row in table.rows] == ["input", "c0", "inner1", "inner_pool", "c2"]
    assert table.receptive_field == (10, 10)  # 3, 5, 6 (jump 2), 6 + 2*2
    with pytest.raises(TypeError, match=r"layers\[1\]\.layers\[0\]=None is not a layer spec"):
        receptive_field([FakeConv(3), FakeModel([None])])
