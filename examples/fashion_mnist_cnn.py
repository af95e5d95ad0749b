"""The seeds' Keras CNN on Fashion-MNIST, with npconv instead of Keras: only the import changed.

    python examples/fashion_mnist_cnn.py                      # files in ~/.keras/datasets/fashion-mnist
    python examples/fashion_mnist_cnn.py --data DIR           # or in DIR (or NPCONV_DATA=ROOT)
    python examples/fashion_mnist_cnn.py --digits             # offline: scikit-learn's digits at 28x28

Fashion-MNIST is the four IDX files ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz`` (github.com/zalandoresearch/fashion-mnist);
npconv never downloads.  Trains 5 epochs (batch 64, Adam), prints the test accuracy and saves the
weights (``--save``, an ``.npz`` that ``model.load_weights`` reads back).
"""

from __future__ import annotations

import argparse
import sys
import time

import npconv as keras  # was: import keras
from npconv import layers  # was: from keras import layers


def build_model():
    model = keras.Sequential(
        [
            layers.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, (3, 3), padding="same", activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(64, (3, 3), padding="same", activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def load(args):
    if args.digits:
        return keras.datasets.digits.load_data(size=28)
    return keras.datasets.fashion_mnist.load_data(path=args.data)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="directory holding the four IDX files")
    parser.add_argument("--digits", action="store_true", help="use scikit-learn's digits instead (offline)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training and test images")
    parser.add_argument(
        "--save", default="fashion_mnist_cnn.weights.npz", help="where to save the weights ('' to skip)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    try:
        (x_train, y_train), (x_test, y_test) = load(args)
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 1
    x_train = x_train[: args.limit, ..., None].astype("float32") / 255.0
    x_test = x_test[: args.limit, ..., None].astype("float32") / 255.0
    y_train, y_test = y_train[: args.limit], y_test[: args.limit]

    keras.set_random_seed(args.seed)
    model = build_model()
    model.summary()
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, validation_split=0.1)
    seconds = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(
        f"test accuracy {accuracy:.4f} (loss {loss:.4f}); training {seconds:.1f} s, "
        f"{args.epochs * len(x_train) * 0.9 / seconds:.0f} samples/s"
    )
    if args.save:
        model.save_weights(args.save)
        print(f"weights saved to {args.save}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
