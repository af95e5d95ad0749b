"""Training and prediction throughput of the seeds' CNN: npconv vs PyTorch 2.13 CPU, interleaved.

    python benchmarks/bench_training.py [--threads 2] [--rounds 7] [--steps 20] [--batch 64] [--predict-batch 256]

The model is the seeds' Fashion-MNIST CNN (``tests/keras_models.py``: Conv2D 32 3x3 same relu,
MaxPooling2D, Conv2D 64 3x3 same relu, MaxPooling2D, Flatten, Dense 128 relu, Dense 10 softmax;
421,642 parameters), 28x28x1 float32 inputs, sparse categorical cross-entropy, Adam.  Both
frameworks get the same thread count and the same data, and run in the same process, alternating:
each round times ``--steps`` training steps of each (a shuffled epoch: ``model.fit`` for npconv, the
usual ``zero_grad / forward / loss / backward / step`` loop over shuffled batches for PyTorch),
then predicting the same number of samples (``model.predict`` vs ``torch.no_grad`` batches), each
after a pause of ``npconv.bench.SETTLE_SECONDS``: OpenBLAS's and PyTorch's OpenMP worker threads
spin for a while after their last call, and without the pause whichever library ran second paid
for the other's (npconv's training measured 1800-2000 samples/s right after PyTorch, 2700-2900
alone).
Reported: the median over rounds of samples per second, and the ratio npconv / PyTorch (above 1:
npconv is faster).  PyTorch is optional (``pip install torch==2.13.0``); without it only npconv's
figures are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import npconv as nc
from npconv.bench import SETTLE_SECONDS, cpu_name, limit_threads

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import keras_models  # noqa: E402  (the model definition shared with the tests)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch_seeds_cnn(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(3136, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def npconv_runs(x, y, batch, predict_batch):
    model = keras_models.seeds_cnn(nc.layers, nc.Sequential)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return (
        lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0),
        lambda: model.predict(x, batch_size=predict_batch, verbose=0),
    )


def torch_runs(torch, x, y, batch, predict_batch):
    model = torch_seeds_cnn(torch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_function = torch.nn.CrossEntropyLoss()  # log-softmax + NLL on the logits
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    yt = torch.from_numpy(y.astype(np.int64))

    def train():
        model.train()
        order = torch.randperm(len(xt))
        for start in range(0, len(xt), batch):
            index = order[start : start + batch]
            optimizer.zero_grad()
            loss_function(model(xt[index]), yt[index]).backward()
            optimizer.step()

    def predict():
        model.eval()
        with torch.no_grad():
            return torch.cat(
                [torch.softmax(model(xt[s : s + predict_batch]), dim=1) for s in range(0, len(xt), predict_batch)]
            )

    return train, predict


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20, help="training steps per round")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--predict-batch", type=int, default=256)
    args = parser.parse_args(argv)

    torch = _torch()
    limits = limit_threads(args.threads, torch)
    print(
        f"CPU: {cpu_name()}; threads: {args.threads}; numpy {np.__version__}; "
        f"torch {torch.__version__ if torch else 'not installed'}; {limits}"
    )
    rng = np.random.default_rng(0)
    count = args.steps * args.batch
    x = rng.random((count, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, count)
    nc.set_random_seed(0)
    runs = {"npconv": npconv_runs(x, y, args.batch, args.predict_batch)}
    if torch is not None:
        torch.manual_seed(0)
        runs["torch"] = torch_runs(torch, x, y, args.batch, args.predict_batch)

    rates = {(name, task): [] for name in runs for task in ("train", "predict")}
    for round_index in range(args.rounds + 1):  # round 0 warms up
        for name, (train, predict) in runs.items():
            for task, function in (("train", train), ("predict", predict)):
                time.sleep(SETTLE_SECONDS)  # let the other library's spinning threads go to sleep
                start = time.perf_counter()
                function()
                if round_index:
                    rates[(name, task)].append(count / (time.perf_counter() - start))
    print(
        f"seeds' CNN, 28x28x1, Adam; training batch {args.batch}, predict batch {args.predict_batch}; "
        f"median of {args.rounds} rounds of {count} samples"
    )
    for task in ("train", "predict"):
        line = f"{task:8s} npconv {statistics.median(rates[('npconv', task)]):8.0f} samples/s"
        if torch is not None:
            ours, theirs = (statistics.median(rates[(n, task)]) for n in ("npconv", "torch"))
            line += f" | torch {theirs:8.0f} samples/s | npconv/torch {ours / theirs:.2f}x"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
