"""``npconv._threads.run_split``: shares of a range on Python threads."""

import threading

import numpy as np
import pytest

from npconv import _threads


@pytest.mark.parametrize("pieces", [0, 1, 2, 3, 17])
def test_shares_cover_the_range_once_in_contiguous_blocks(pieces, monkeypatch):
    monkeypatch.setattr(_threads, "numba_threads", lambda flops: 3)
    counts = np.zeros(pieces, int)
    shares = []

    def kernel(start, stop, counts):
        shares.append((start, stop, threading.current_thread().name))
        counts[start:stop] += 1

    _threads.run_split(kernel, 1e9, pieces, counts)
    assert (counts == 1).all()
    assert len(shares) == max(1, min(3, pieces))
    sizes = sorted(stop - start for start, stop, _ in shares)
    assert sizes[-1] - sizes[0] <= 1
    assert any(name == threading.current_thread().name for _, _, name in shares)  # the caller takes a share


def test_a_failing_share_raises_in_the_caller(monkeypatch):
    monkeypatch.setattr(_threads, "numba_threads", lambda flops: 2)

    def kernel(start, stop):
        if start > 0:
            raise ValueError(f"share {start}")

    with pytest.raises(ValueError, match="share 5"):
        _threads.run_split(kernel, 1e9, 10)
