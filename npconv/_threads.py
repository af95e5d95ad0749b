"""npconv's own threads, and how they share the cores with BLAS's.

npconv's threads (a shared pool of Python threads that poll briefly, then sleep when idle) run its
Numba kernels and share its own products.  Their count is :func:`get_num_threads`: set by
:func:`set_num_threads`, else by ``NPCONV_NUM_THREADS`` (or ``NUMBA_NUM_THREADS``) in the
environment, else the cores this process may use; a small convolution runs on one.  Where they
call BLAS (Winograd's blocks, ``gemm``'s products, the dense layers) it runs on one thread each,
inside :func:`blas_on_one_thread`, so that no BLAS worker spins beside them.
The Numba kernels and Winograd's blocks split work into pieces whose results do not depend on
the thread count.  ``fft`` uses at most ``min(2, available_cores())`` threads and plans its tiles
from the core count, so on a one-core machine its results may differ in the last bits.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from contextlib import contextmanager

import numpy as np

from ._numba import ENABLED as NUMBA_ENABLED
from ._numba import load_numba
from ._spec import received


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _threads_from_environment() -> int:
    for variable in ("NPCONV_NUM_THREADS", "NUMBA_NUM_THREADS"):
        value = os.environ.get(variable, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return available_cores()


_num_threads = _threads_from_environment()


def get_num_threads() -> int:
    """Threads npconv's own parallel code uses (see :func:`set_num_threads`).

    >>> import npconv as nc
    >>> nc.get_num_threads() >= 1
    True
    """
    return _num_threads


def set_num_threads(threads: int) -> None:
    """Set the number of threads npconv's own parallel code uses, for the whole process.

    The default is ``NPCONV_NUM_THREADS`` (or ``NUMBA_NUM_THREADS``) from the environment, else the
    cores this process may use (``os.sched_getaffinity``).  npconv's threads call BLAS on one thread
    each, so this is the number of cores an npconv call keeps busy; ``fft``'s transforms use at most
    two.

    Parameters
    ----------
    threads : int
        At least 1.

    Raises
    ------
    ValueError
        If ``threads`` is not a positive integer.

    Examples
    --------
    >>> import npconv as nc
    >>> before = nc.get_num_threads()
    >>> nc.set_num_threads(1); nc.get_num_threads()
    1
    >>> nc.set_num_threads(before)
    """
    global _num_threads
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be a positive integer. {received(threads=threads)}")
    _num_threads = int(threads)


PARALLEL_FLOPS = 4e6  # smaller convolutions run on one thread: waking another costs more than it saves


def threads_for(flops: float) -> int:
    """Threads npconv shares work of ``flops`` among: :func:`get_num_threads`, or 1 for small work."""
    return _num_threads if flops >= PARALLEL_FLOPS else 1


def run_split(kernel, flops: float, pieces: int, *args) -> None:
    """``kernel(start, stop, *args)`` over ``[0, pieces)`` in :func:`threads_for` contiguous shares.

    ``kernel`` releases the GIL (a serial Numba function compiled with ``nogil=True``, or NumPy's
    BLAS); the shares beyond the first run on Python threads of a shared pool, the first on the
    calling thread.  An idle pool thread polls for about a millisecond, yielding its core at each
    round, then sleeps (:class:`_Pool`); Numba's ``prange`` pools (OpenMP's workers) spin for
    longer without yielding, and beside OpenBLAS's spinning worker on two cores they slowed every
    BLAS call between these kernels (a training step of the seeds' CNN ran at 2/3 of its speed
    with a ``prange`` kernel in it).  The converse remains: right after a multi-threaded BLAS
    call, OpenBLAS's spinning worker competes with the second share.  npconv's own products in a
    training step therefore run BLAS on one thread (:func:`blas_on_one_thread`), so that its
    worker sleeps.
    """
    threads = max(1, min(threads_for(flops), pieces))
    bounds = [pieces * share // threads for share in range(threads + 1)]
    run_together([(kernel, bounds[i], bounds[i + 1], *args) for i in range(threads)])


def run_claimed(worker, flops: float, pieces: int, *args) -> None:
    """``worker(indices, *args)`` on :func:`threads_for` threads at once, each iterating its
    ``indices`` over the pieces ``[0, pieces)`` that it claims first, one at a time, from a shared
    counter, so that every piece is claimed once.

    For pieces whose results do not depend on which thread computes them, and whose times
    differ (Winograd's blocks: a last, smaller one; tiles on the border take longer): a thread
    slowed down, by such pieces or by another program on its core, claims fewer instead of
    holding the others up.  ``worker`` allocates its buffers once and reuses them for all its
    pieces.
    """
    threads = max(1, min(threads_for(flops), pieces))
    counter = itertools.count()  # next() on it is atomic: the GIL
    run_together([(worker, _claims(counter, pieces), *args) for _ in range(threads)])


def run_claimed_products(worker, flops: float, pieces: int, *args) -> None:
    """:func:`run_claimed` for workers that call BLAS: inside :func:`blas_on_one_thread`, so that each
    npconv thread's products run on its own core."""
    with blas_on_one_thread():
        run_claimed(worker, flops, pieces, *args)


def _claims(counter, pieces: int):
    for index in counter:
        if index >= pieces:
            return
        yield index


def run_together(calls: list[tuple]) -> list:
    """Each ``(function, *args)`` of ``calls`` at once: the first on the calling thread, the others
    on the shared pool; returns their results, in order, when all have run, raising the first
    failure.

    >>> run_together([(sum, [1, 2]), (max, [3, 4])])
    [3, 4]
    """
    global _pool
    if len(calls) > 1 and _pool is None:
        _pool = _Pool(available_cores())
    others = [_pool.submit(*call) for call in calls[1:]]
    try:
        first = calls[0][0](*calls[0][1:])
    finally:
        for task in others:  # nothing outlives the call, even when the caller's own part fails
            task.finished.acquire()
    for task in others:
        if task.failure is not None:
            raise task.failure
    return [first, *(task.result for task in others)]


SPIN_ROUNDS = 2000  # sched_yield calls (~0.65 us each on the 2-core VMs here) before an idle pool thread sleeps


class _Pool:
    """Python threads that run submitted calls; an idle one first polls for new work for about a
    millisecond (:data:`SPIN_ROUNDS`), without the GIL and yielding its core at each round, then
    sleeps on the queue.

    On the 2-core virtual machines here, waking a thread that sleeps took 0.7-2.2 ms after an idle
    pause (against 20 us back to back), longer than a whole small convolution's share: a call
    right after another found its helper asleep (grouped 8x128x28x28 -> 128, timed after a pause
    and one untimed call: median 3.9 -> 2.8 ms).  PyTorch's OpenMP threads poll for ~10 ms after
    a call, OpenBLAS's worker for up to ~0.1 s (see :func:`blas_on_one_thread`).  With Numba
    absent, nothing polls."""

    def __init__(self, size: int):
        self._poll = _compile_poll()
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._posted = np.zeros(1, np.int64)  # calls submitted so far: what the polling threads watch
        for index in range(size):
            threading.Thread(target=self._serve, name=f"npconv-{index}", daemon=True).start()

    def submit(self, function, *args) -> _Task:
        """Queue ``function(*args)``; its task's ``finished`` is released when it has run."""
        task = _Task(function, args)
        self._calls.put(task)
        self._posted[0] += 1
        return task

    def _serve(self) -> None:
        while True:
            seen = int(self._posted[0])  # read before looking: a call posted meanwhile changes it
            try:
                task = self._calls.get_nowait()
            except queue.Empty:
                if self._poll is not None:
                    self._poll(self._posted, seen, SPIN_ROUNDS)
                task = self._calls.get()
            try:
                task.result = task.function(*task.args)
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                task.failure = error
            finally:
                task.finished.release()
            del task  # an idle thread holds no result: it is the caller's


class _Task:
    """A call submitted to the pool: ``finished`` (a lock, held until it has run), then its
    ``result`` or ``failure``."""

    __slots__ = ("function", "args", "finished", "result", "failure")

    def __init__(self, function, args: tuple):
        self.function, self.args, self.result, self.failure = function, args, None, None
        self.finished = threading.Lock()
        self.finished.acquire()


_pool: _Pool | None = None


def _forget_pool() -> None:
    global _pool
    _pool = None  # a forked child has none of the parent's threads: it starts its own


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_pool)


def _compile_poll():
    """``poll(posted, seen, rounds)``: whether ``posted[0]`` changes from ``seen`` within ``rounds``
    calls of libc's ``sched_yield``, run without the GIL (the call is opaque to the compiler, so
    the value is read again each round); None without Numba or ``sched_yield``.  Compiled (or
    loaded from Numba's cache) when the pool starts."""
    if not NUMBA_ENABLED:
        return None
    numba = load_numba()
    sched_yield = numba.types.ExternalFunction("sched_yield", numba.types.intc())

    def poll(posted, seen, rounds):
        for _ in range(rounds):
            if posted[0] != seen:
                return True
            sched_yield()
        return False

    try:
        return numba.njit("boolean(int64[::1], int64, int64)", nogil=True, cache=True)(poll)
    except Exception:  # pragma: no cover - no sched_yield to link (not a POSIX libc)
        return None


_blas_lock = threading.Lock()
_blas_controllers = None  # threadpoolctl's controllers of the BLAS libraries loaded (found once)
_blas_scopes: set = set()  # a token per open blas_on_one_thread scope, on any thread
_blas_saved: list[int] | None = None  # the thread counts to restore, while BLAS is limited


@contextmanager
def blas_on_one_thread():
    """BLAS on one thread while the block runs (through threadpoolctl; without it, nothing changes).

    npconv's own threads then share the work, each calling BLAS on its own core.  A
    multi-threaded BLAS product wakes OpenBLAS's workers, which then spin for up to ~0.1 s: beside
    npconv's threads they halved a training step's speed, and with another busy process on the
    machine a worker waiting for a descheduled partner made calls tens of times slower.

    The setting is the process's (OpenBLAS has no per-thread count): other threads' BLAS calls
    made meanwhile also run on one thread.  Whatever happens, it is restored when the last open
    scope ends: scopes nest and overlap across threads; a ``KeyboardInterrupt`` raised while the
    setting is being changed or restored does not leave it half-done (the restore completes, then
    the interrupt is raised); a child forked meanwhile starts with the setting restored.
    """
    token = object()
    try:
        _limit_blas(token)
        yield
    finally:
        _complete_despite_interrupts(_release_blas, token)


def _limit_blas(token) -> None:
    global _blas_controllers, _blas_saved
    with _blas_lock:
        _blas_scopes.add(token)
        if _blas_saved is None:
            if _blas_controllers is None:
                _blas_controllers = _find_blas_controllers()
            _blas_saved = [library.num_threads for library in _blas_controllers]
            for library in _blas_controllers:
                _set_blas_threads(library, 1)


def _release_blas(token) -> None:
    """Close ``token``'s scope and restore BLAS's settings if it was the last; idempotent, so that it
    can be run again after an interrupt."""
    with _blas_lock:
        _blas_scopes.discard(token)
        if not _blas_scopes:
            _restore_blas()


def _restore_blas() -> None:
    """BLAS's saved thread counts back, if limited (idempotent; the caller holds the lock)."""
    global _blas_saved
    if _blas_saved is not None:
        for library, threads in zip(_blas_controllers, _blas_saved):
            _set_blas_threads(library, threads)
        _blas_saved = None


def _complete_despite_interrupts(function, *args) -> None:
    """``function(*args)`` (idempotent) until it completes, then re-raise any ``KeyboardInterrupt``
    that arrived meanwhile."""
    interruption = None
    while True:
        try:
            function(*args)
            break
        except KeyboardInterrupt as error:
            interruption = error
    if interruption is not None:
        raise interruption


def _set_blas_threads(library, threads: int) -> None:
    """Set ``library``'s thread count from any thread.  threadpoolctl's ``set_num_threads`` lets only
    one thread (the first to call it, until ``threadpool_limits`` clears it) change a process-wide
    OpenBLAS and silently ignores the others; npconv's scopes open and close on whichever threads
    call it, so they set the count directly (``_real_set_num_threads``) and leave that ownership,
    which belongs to the user's own ``threadpool_limits``, untouched."""
    getattr(library, "_real_set_num_threads", library.set_num_threads)(threads)


def _find_blas_controllers() -> list:
    """threadpoolctl's controllers of the BLAS libraries loaded; none without threadpoolctl (a
    dependency, but an install without it still runs, with BLAS's own threads)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return []
    return ThreadpoolController().select(user_api="blas").lib_controllers


def _blas_after_fork_in_child() -> None:
    """The forked child has none of the threads that held scopes: it starts with a free lock and,
    if the parent was inside a scope, with BLAS's settings restored."""
    global _blas_lock
    _blas_lock = threading.Lock()
    _blas_scopes.clear()
    _restore_blas()


if hasattr(os, "register_at_fork"):  # POSIX: no fork while another thread changes the setting
    os.register_at_fork(
        before=lambda: _blas_lock.acquire(),
        after_in_parent=lambda: _blas_lock.release(),
        after_in_child=_blas_after_fork_in_child,
    )


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D operands, with BLAS on one thread (:func:`blas_on_one_thread`) and, for
    large products, the rows of ``a`` in one share per npconv thread (:func:`run_split`: more,
    smaller shares each packed ``b`` again, 2x slower).

    >>> matmul(np.eye(2), np.arange(4.0).reshape(2, 2)).tolist()
    [[0.0, 1.0], [2.0, 3.0]]
    """
    with blas_on_one_thread():
        out = np.empty((a.shape[0], b.shape[1]), np.result_type(a, b))
        run_split(_matmul_rows, 2.0 * a.shape[0] * a.shape[1] * b.shape[1], a.shape[0], a, b, out)
        return out


def matmuls(*pairs: tuple[np.ndarray, np.ndarray]) -> list[np.ndarray]:
    """``[a @ b for a, b in pairs]`` (2-D operands): one product as :func:`matmul`; several at once,
    one per npconv thread, each with BLAS on one thread (a dense layer's two gradient products:
    one wake of the threads instead of two, and no product split).

    >>> [p.tolist() for p in matmuls((np.eye(2), np.ones((2, 1))), (np.ones((1, 2)), np.eye(2)))]
    [[[1.0], [1.0]], [[1.0, 1.0]]]
    """
    if len(pairs) == 1:
        return [matmul(a, b) for a, b in pairs]
    outs = [np.empty((a.shape[0], b.shape[1]), np.result_type(a, b)) for a, b in pairs]
    flops = sum(2.0 * a.shape[0] * a.shape[1] * b.shape[1] for a, b in pairs)
    run_claimed_products(_products, flops, len(pairs), pairs, outs)
    return outs


def matmul_stacked(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``np.matmul(a, b, out=out)`` for stacks of matrices, the stack (axis 0) in one share per npconv
    thread, each with BLAS on one thread.  Not from inside npconv's threads' own shares.

    >>> out = np.empty((3, 2, 2)); matmul_stacked(np.ones((3, 2, 4)), np.ones((3, 4, 2)), out); out[2].tolist()
    [[4.0, 4.0], [4.0, 4.0]]
    """
    with blas_on_one_thread():
        run_split(_matmul_stack, 2.0 * a.size * b.shape[-1], a.shape[0], a, b, out)


def _matmul_stack(start: int, stop: int, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    np.matmul(a[start:stop], b[start:stop], out=out[start:stop])


def _products(indices, pairs, outs) -> None:
    for index in indices:
        np.matmul(*pairs[index], out=outs[index])


def _matmul_rows(start: int, stop: int, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    np.matmul(a[start:stop], b, out=out[start:stop])
