"""npconv is a guest in its user's process: after any call returns (normally, by an exception, by a
KeyboardInterrupt, from many threads at once, or in a forked child), every process-wide setting is
what it was before."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import npconv as nc
from npconv import _threads

SIGNALS = [signal.SIGINT, signal.SIGTERM] + [getattr(signal, name) for name in ("SIGCHLD", "SIGALRM", "SIGUSR1") if hasattr(signal, name)]


try:
    from threadpoolctl import ThreadpoolController, threadpool_info
except ImportError:  # an install without it: npconv leaves BLAS alone, and its settings cannot be read
    ThreadpoolController = threadpool_info = None

needs_threadpoolctl = pytest.mark.skipif(threadpool_info is None, reason="reading BLAS's thread count needs threadpoolctl")


def process_settings() -> dict:
    """What a library could change behind its user's back."""
    settings = {
        "thread pools": sorted((pool["filepath"], pool["num_threads"]) for pool in threadpool_info()) if threadpool_info else None,
        "environment": dict(os.environ),
        "signal handlers": {number: signal.getsignal(number) for number in SIGNALS},
        "numpy errors": np.geterr(),
        "npconv threads": nc.get_num_threads(),
        "switch interval": sys.getswitchinterval(),
    }
    if "numba" in sys.modules:
        settings["numba SLP vectorizer"] = sys.modules["numba"].config.SLP_VECTORIZE
    return settings


def blas_thread_counts() -> list[int]:
    return [library.num_threads for library in ThreadpoolController().select(user_api="blas").lib_controllers]


RNG = np.random.default_rng(0)
X = RNG.standard_normal((8, 24, 24, 16)).astype(np.float32)
W3 = RNG.standard_normal((3, 3, 16, 32)).astype(np.float32)
DY = RNG.standard_normal((8, 24, 24, 32)).astype(np.float32)


def calls():
    """One call of each kind that changes a setting while it runs (BLAS on one thread)."""
    return [
        lambda: nc.conv(X, W3, padding="same", algorithm="gemm"),
        lambda: nc.conv(X, W3, padding="same", algorithm="winograd"),
        lambda: nc.conv_backprop_filter(X, DY, W3.shape, padding="same", algorithm="gemm"),
        lambda: nc.conv_backprop_input(DY, W3, X.shape, padding="same", algorithm="winograd"),
    ]


@pytest.fixture(scope="module", autouse=True)
def warm():
    for call in calls():  # compile and load everything first: that may import modules
        call()


@needs_threadpoolctl
def test_blas_has_several_threads_to_restore():
    assert blas_thread_counts(), "threadpoolctl sees NumPy's BLAS"  # else every check here is vacuous
    if max(blas_thread_counts()) == 1:
        pytest.skip("BLAS runs on one thread here: a restored count could not be told from a leaked one")


def test_settings_unchanged_after_calls_and_failures():
    before = process_settings()
    for call in calls():
        call()
    with pytest.raises(ValueError):
        nc.conv(X, W3, padding="same", algorithm="gemm", stride=0)
    assert process_settings() == before


def test_settings_restored_after_concurrent_calls_from_many_threads():
    before = process_settings()
    failures = []

    def work(seed):
        rng = np.random.default_rng(seed)
        try:
            for index in rng.integers(0, len(calls()), 12):
                time.sleep(rng.random() * 1e-3)
                calls()[index]()
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)

    workers = [threading.Thread(target=work, args=(seed,)) for seed in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not failures
    assert process_settings() == before
    assert _threads._blas_saved is None and not _threads._blas_scopes


INTERRUPTS = textwrap.dedent(
    """
    import _thread, sys, threading, time
    sys.path.insert(0, {tests!r})
    import test_process_settings as t

    for call in t.calls():
        call()
    before = t.process_settings()
    start = time.perf_counter()
    for call in t.calls():
        call()
    duration = time.perf_counter() - start
    interrupted = 0
    for attempt in range(40):
        timer = threading.Timer(duration * (attempt + 1) / 41, _thread.interrupt_main)
        try:
            timer.start()
            for call in t.calls():
                call()
            timer.join()
            time.sleep(0.01)  # an interrupt that came after the calls lands here
        except KeyboardInterrupt:
            interrupted += 1
        timer.join()
        assert t.process_settings() == before, attempt
    print("interrupted", interrupted)
    """
)


def test_settings_restored_after_interrupts_at_any_moment():
    """A KeyboardInterrupt (Ctrl-C) sent to the main thread of a fresh process at 40 moments spread
    over the calls lands in their setup, their threads' work and their restore; each time, once it
    has propagated, the settings are the ones from before."""
    script = INTERRUPTS.format(tests=str(Path(__file__).parent))
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert int(run.stdout.split()[-1]) >= 30


@needs_threadpoolctl
def test_an_interrupt_during_the_restore_completes_it_first(monkeypatch):
    """The worst moment: a KeyboardInterrupt raised while the BLAS setting is being restored."""
    before = blas_thread_counts()
    original = _threads._set_blas_threads
    raised = []

    def set_blas_threads(library, threads):
        if threads != 1 and not raised:  # the restore: interrupted once, half-way
            raised.append(threads)
            raise KeyboardInterrupt
        original(library, threads)

    monkeypatch.setattr(_threads, "_set_blas_threads", set_blas_threads)
    with pytest.raises(KeyboardInterrupt):
        with _threads.blas_on_one_thread():
            assert max(blas_thread_counts()) == 1
    monkeypatch.undo()
    assert raised and blas_thread_counts() == before
    assert _threads._blas_saved is None and not _threads._blas_scopes


@needs_threadpoolctl
@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
@pytest.mark.filterwarnings("ignore:.*fork:DeprecationWarning")  # Python 3.12+: fork with threads
def test_a_child_forked_during_a_call_starts_with_the_settings_from_before():
    before = blas_thread_counts()
    entered, release = threading.Event(), threading.Event()

    def hold_a_scope():
        with _threads.blas_on_one_thread():
            entered.set()
            release.wait(10)

    holder = threading.Thread(target=hold_a_scope)
    holder.start()
    entered.wait(10)
    assert max(blas_thread_counts()) == 1  # the parent is inside a call
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        signal.alarm(30)  # a child left waiting on its parent's threads is killed, not left hanging
        ok = blas_thread_counts() == before
        nc.conv(X, W3, padding="same", algorithm="gemm")  # its own threads and scopes work
        ok = ok and blas_thread_counts() == before and not _threads._blas_scopes
        os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    release.set()
    holder.join()
    assert os.waitstatus_to_exitcode(status) == 0
    assert blas_thread_counts() == before


def _cpu_ticks(native_id: int) -> int:
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="per-thread CPU times from Linux's /proc")
def test_idle_npconv_threads_use_no_cpu():
    """After a parallel call, npconv's pool threads poll for about a millisecond, then sleep."""
    nc.conv(X, W3, padding="same", algorithm="gemm")
    pool = [thread.native_id for thread in threading.enumerate() if thread.name.startswith("npconv-")]
    assert pool
    time.sleep(0.01)
    before = [_cpu_ticks(native_id) for native_id in pool]
    time.sleep(0.5)
    used = sum(_cpu_ticks(native_id) for native_id in pool) - sum(before)
    assert used <= 2  # clock ticks (10 ms) in 0.5 s: a poll that outlasts the sleep on a busy machine
