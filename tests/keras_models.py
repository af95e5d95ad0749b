"""Model definitions written once and built twice: by ``fixtures/make_keras_golden.py`` with Keras
(``layers = keras.layers``) and by the tests with npconv (``layers = npconv.layers``).

This is what a user does: paste Keras code and change the import.  Each function takes the layers
module and the model class(es), and imports nothing itself.
"""


def seeds_cnn(layers, Sequential, input_shape=(28, 28, 1)):
    """The seeds' Fashion-MNIST CNN (421,642 parameters for 28x28x1)."""
    return Sequential(
        [
            layers.Input(shape=input_shape),
            layers.Conv2D(32, (3, 3), padding="same", activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(64, (3, 3), padding="same", activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )


def parity_2d(layers, Model):
    """Every 2-D layer kind of the contract in one functional graph (with a residual Add and a
    Concatenate): strided/dilated convs, BatchNormalization, depthwise x2, separable, transposed."""
    inputs = layers.Input(shape=(16, 16, 3))
    x = layers.Conv2D(12, 3, strides=2, padding="same")(inputs)  # 8x8
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    d = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu")(x)  # 24 channels
    s = layers.SeparableConv2D(24, 3, padding="same", activation="relu")(d)
    x = layers.Add()([d, s])
    x = layers.Conv2D(16, 3, dilation_rate=2, padding="same", activation="relu")(x)
    x = layers.ZeroPadding2D(1)(x)  # 10x10
    x = layers.Conv2D(8, 1, activation="relu")(x)  # 1x1
    x = layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(x)  # 20x20
    a = layers.MaxPooling2D(3, strides=2, padding="same")(x)  # 10x10
    b = layers.AveragePooling2D(2)(x)  # 10x10
    x = layers.Concatenate()([a, b])
    x = layers.Conv2D(16, 3, padding="valid", activation="elu")(x)  # 8x8
    g = layers.GlobalAveragePooling2D()(x)
    m = layers.GlobalMaxPooling2D()(x)
    x = layers.Concatenate()([g, layers.Flatten()(layers.AveragePooling2D(4)(x)), m])
    x = layers.Dense(32, activation="tanh")(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return Model(inputs, outputs)


def parity_1d(layers, Sequential):
    """Conv1D with causal padding and dilation (a WaveNet-like stack), strides, pooling."""
    return Sequential(
        [
            layers.Input(shape=(40, 4)),
            layers.Conv1D(8, 3, padding="causal", dilation_rate=1, activation="relu"),
            layers.Conv1D(8, 3, padding="causal", dilation_rate=2, activation="relu"),
            layers.Conv1D(8, 3, padding="causal", dilation_rate=4, activation="relu"),
            layers.MaxPooling1D(2),
            layers.Conv1D(16, 5, strides=2, padding="same", activation="relu"),
            layers.BatchNormalization(),
            layers.AveragePooling1D(3, strides=1, padding="same"),
            layers.GlobalAveragePooling1D(),
            layers.Dense(3, activation="softmax"),
        ]
    )


def parity_3d(layers, Sequential):
    """Conv3D with strides and both paddings, 3-D pooling, BatchNormalization."""
    return Sequential(
        [
            layers.Input(shape=(10, 10, 10, 2)),
            layers.Conv3D(4, 3, padding="same", activation="relu"),
            layers.MaxPooling3D(2),
            layers.Conv3D(8, 3, strides=2, padding="same"),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.Conv3D(8, (2, 2, 1), padding="valid", activation="relu"),
            layers.AveragePooling3D((2, 2, 1)),
            layers.GlobalAveragePooling3D(),
            layers.Dense(5, activation="softmax"),
        ]
    )


def small_trainable(layers, Sequential):
    """A small model for optimizer/loss parity: a few steps of fit from the same weights."""
    return Sequential(
        [
            layers.Input(shape=(8, 8, 2)),
            layers.Conv2D(4, 3, padding="same", activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(3, activation="softmax"),
        ]
    )
