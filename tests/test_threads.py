"""``npconv._threads``: shares of a range and claimed pieces on Python threads; BLAS on one thread."""

import os
import signal
import threading
import time
import weakref

import numpy as np
import pytest

from npconv import _threads


@pytest.mark.parametrize("pieces", [0, 1, 2, 3, 17])
def test_shares_cover_the_range_once_in_contiguous_blocks(pieces, monkeypatch):
    monkeypatch.setattr(_threads, "threads_for", lambda flops: 3)
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
    monkeypatch.setattr(_threads, "threads_for", lambda flops: 2)

    def kernel(start, stop):
        if start > 0:
            raise ValueError(f"share {start}")

    with pytest.raises(ValueError, match="share 5"):
        _threads.run_split(kernel, 1e9, 10)


@pytest.mark.parametrize("pieces", [0, 1, 2, 17])
def test_claimed_pieces_are_each_taken_once(pieces, monkeypatch):
    monkeypatch.setattr(_threads, "threads_for", lambda flops: 3)
    counts = np.zeros(pieces, int)
    workers = []

    def worker(indices, counts):
        workers.append(threading.current_thread().name)
        for index in indices:
            counts[index] += 1

    _threads.run_claimed(worker, 1e9, pieces, counts)
    assert (counts == 1).all()
    assert len(workers) == max(1, min(3, pieces))
    assert threading.current_thread().name in workers  # the caller works too


def test_a_failing_claim_raises_in_the_caller(monkeypatch):
    monkeypatch.setattr(_threads, "threads_for", lambda flops: 2)

    def worker(indices):
        for index in indices:
            if index == 7:
                raise ValueError(f"piece {index}")

    with pytest.raises(ValueError, match="piece 7"):
        _threads.run_claimed(worker, 1e9, 10)


def _pool_share_names(monkeypatch) -> set[str]:
    """The names of the threads that ran the two shares of a small ``run_split``."""
    monkeypatch.setattr(_threads, "threads_for", lambda flops: 2)
    names = set()
    _threads.run_split(lambda start, stop: names.add(threading.current_thread().name), 1e9, 2)
    return names


def test_pool_threads_take_calls_while_polling_and_after_sleeping(monkeypatch):
    assert any(name.startswith("npconv") for name in _pool_share_names(monkeypatch))
    assert any(name.startswith("npconv") for name in _pool_share_names(monkeypatch))  # right after: polling
    time.sleep(0.05)  # well past the polling: asleep on the queue
    assert any(name.startswith("npconv") for name in _pool_share_names(monkeypatch))


def test_callers_on_several_threads_share_the_pool(monkeypatch):
    monkeypatch.setattr(_threads, "threads_for", lambda flops: 2)
    counts = np.zeros((4, 50, 9), int)

    def worker(indices, counts):
        for index in indices:
            counts[index] += 1

    def caller(row):
        for call in range(50):
            _threads.run_claimed(worker, 1e9, 9, counts[row, call])

    callers = [threading.Thread(target=caller, args=(row,)) for row in range(4)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    assert (counts == 1).all()


def test_results_come_back_in_order_and_the_pool_keeps_none():
    first, second = _threads.run_together([(np.full, 2, 1.0), (np.full, 3, 2.0)])
    assert first.tolist() == [1.0, 1.0] and second.tolist() == [2.0, 2.0, 2.0]
    returned = weakref.ref(second)
    del second
    deadline = time.monotonic() + 1  # the pool thread drops its reference right after handing it over
    while returned() is not None and time.monotonic() < deadline:
        time.sleep(0.001)
    assert returned() is None  # the pool thread that made it holds no reference while it idles


@pytest.mark.skipif(not _threads.NUMBA_ENABLED, reason="polling needs numba")
def test_poll_returns_when_the_count_changes_or_after_its_rounds():
    poll = _threads._compile_poll()
    assert poll(np.array([1], np.int64), 0, 10**9) is True
    assert poll(np.array([0], np.int64), 0, 10) is False


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
@pytest.mark.filterwarnings("ignore:.*fork:DeprecationWarning")  # Python 3.12+: fork with threads
def test_a_forked_child_runs_on_threads_of_its_own(monkeypatch):
    _pool_share_names(monkeypatch)  # the parent's pool exists
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        signal.alarm(20)  # a child waiting on threads it lacks is killed, not left hanging
        os._exit(0 if len(_pool_share_names(monkeypatch)) == 2 else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_blas_runs_on_one_thread_inside_the_scope_and_as_before_after():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    controller = threadpoolctl.ThreadpoolController()
    before = [library.num_threads for library in controller.select(user_api="blas").lib_controllers]
    assert before, "threadpoolctl sees NumPy's BLAS"  # else the checks below would hold vacuously
    with _threads.blas_on_one_thread():
        with _threads.blas_on_one_thread():  # nested: the outer scope restores
            pass
        inside = [library.num_threads for library in controller.select(user_api="blas").lib_controllers]
    after = [library.num_threads for library in controller.select(user_api="blas").lib_controllers]
    assert all(threads == 1 for threads in inside)
    assert after == before


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_matmul_shares_rows_and_matches_numpy(threads, monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setattr(_threads, "threads_for", lambda flops: threads)
    rng = np.random.default_rng(threads)
    a, b = rng.standard_normal((37, 50)), rng.standard_normal((50, 9))
    np.testing.assert_allclose(_threads.matmul(a, b), a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_threads.matmul(a[:, :7].T, a[:, 7:9]), a[:, :7].T @ a[:, 7:9], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
def test_several_products_side_by_side(threads, monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setattr(_threads, "threads_for", lambda flops: threads)
    rng = np.random.default_rng(7)
    pairs = [(rng.standard_normal((5, 6)), rng.standard_normal((6, 3))), (rng.standard_normal((4, 2)).T, rng.standard_normal((4, 9)))]
    for got, (a, b) in zip(_threads.matmuls(*pairs), pairs):
        np.testing.assert_allclose(got, a @ b, rtol=1e-12, atol=1e-12)
