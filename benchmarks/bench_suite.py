"""The convolution benchmark suite: npconv vs PyTorch 2.13 CPU (and SciPy), interleaved in one process.

    python benchmarks/bench_suite.py [case ...] [--repeats 7] [--threads 2] [--markdown]

Same as ``npconv bench``; see :mod:`npconv.bench` for what is timed and how.  PyTorch is optional
(``pip install torch==2.13.0``).
"""

import sys

from npconv.bench import main

if __name__ == "__main__":
    sys.exit(main())
