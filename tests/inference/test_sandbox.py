"""The sandbox runs untrusted maths in worker processes: an overrun is killed, the caller and everyone else go on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from inference import sandbox
from inference.sandbox import Budget, OverBudget, Sandbox

REPO = Path(__file__).resolve().parents[2]


def spin() -> None:
    while True:
        pass


def hold_the_interpreter() -> str:
    return str(3 ** (10**8) & 1)  # one C call, minutes of CPU with the interpreter lock held


def nap(seconds: float) -> str:
    time.sleep(seconds)
    return "awake"


def allocate(mb: int) -> int:
    return len(bytearray(mb * 1024 * 1024))


def add(a: int, b: int) -> int:
    return a + b


def fail() -> None:
    raise ValueError("bad input, said politely")


def nested(a: int) -> int:
    return sandbox.run(add, a, 1)  # inside a worker: runs inline


def segfault() -> None:
    import ctypes

    ctypes.string_at(0)


@pytest.fixture
def pool():
    box = Sandbox(Budget(timeout_s=3.0, memory_mb=400, workers=2, slow_s=0.5, wait_s=10.0))
    yield box
    box.close()


def test_an_overrunning_call_is_killed_and_the_next_call_gets_a_fresh_worker(pool):
    started = time.monotonic()
    with pytest.raises(OverBudget) as caught:
        pool.run(hold_the_interpreter)
    assert caught.value.reason == "time"
    assert time.monotonic() - started < 3.0 * pool.budget.wall_factor + 2  # 3 s of CPU; sooner on a quiet machine
    assert pool.run(add, 2, 3) == 5


def test_a_call_that_waits_past_its_cpu_budget_without_using_it_is_not_refused():
    # On a busy machine a fair answer waits for a core: the budget counts its CPU time, not the wall clock...
    box = Sandbox(Budget(timeout_s=0.5, memory_mb=400, workers=1, slow_s=0.25, wall_factor=4.0))
    try:
        assert box.run(nap, 1.0) == "awake"
        # ...up to a wall-clock backstop, a few times the budget
        started = time.monotonic()
        with pytest.raises(OverBudget) as caught:
            box.run(nap, 30)
        assert caught.value.reason == "time"
        assert time.monotonic() - started < 0.5 * 4.0 + 2
    finally:
        box.close()


def test_a_call_over_the_memory_limit_is_refused_and_the_worker_replaced(pool):
    with pytest.raises(OverBudget) as caught:
        pool.run(allocate, 2000)
    assert caught.value.reason == "memory"
    assert pool.run(allocate, 10) == 10 * 1024 * 1024


def test_a_worker_that_crashes_is_replaced(pool):
    with pytest.raises(OverBudget) as caught:
        pool.run(segfault)
    assert caught.value.reason == "crash"
    assert pool.run(add, 1, 1) == 2


def test_the_functions_own_exception_reaches_the_caller(pool):
    with pytest.raises(ValueError, match="said politely"):
        pool.run(fail)
    assert pool.run(add, 1, 2) == 3  # the worker survives an ordinary exception


def test_a_call_inside_a_worker_runs_inline(pool):
    assert pool.run(nested, 41) == 42


def test_other_threads_are_answered_while_one_call_overruns(pool):
    """Two workers: one is stuck on a bomb, the other serves everybody else meanwhile."""
    results: list[int] = []
    bomb = threading.Thread(target=lambda: pytest.raises(OverBudget, pool.run, spin))
    bomb.start()
    time.sleep(0.2)
    started = time.monotonic()
    threads = [threading.Thread(target=lambda i=i: results.append(pool.run(add, i, 0))) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    bomb.join(timeout=10)
    assert sorted(results) == list(range(20))
    assert time.monotonic() - started < 8


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.add(int(entry.name))
    return found


def _descendants(pid: int) -> set[int]:
    out, todo = set(), [pid]
    while todo:
        kids = _children(todo.pop())
        out |= kids
        todo.extend(kids)
    return out


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


CALLER = textwrap.dedent("""
    import signal, sys, threading, time
    sys.path.insert(0, {tests!r})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # as servers do: exit, running the atexit hooks
    from inference import sandbox
    from test_sandbox import spin
    sandbox.configure(timeout_s=4, workers=2)
    sandbox.warm()
    threading.Thread(target=sandbox.run, args=(spin,), daemon=True).start()
    time.sleep(1.0)
    print("ready", flush=True)
    time.sleep(600)
""")


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_a_caller_that_dies_mid_call_leaves_no_worker_behind(how):
    """SIGTERM: the process exits at once and its exit hooks stop the workers; SIGKILL: nothing runs in the
    caller, and its workers end at the closed pipe or, mid-call, on the kernel's CPU limit for the call."""
    proc = subprocess.Popen([sys.executable, "-c", CALLER.format(tests=str(Path(__file__).parent))], cwd=REPO,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        family = _descendants(proc.pid)
        assert family, "the caller started no worker"
        started = time.monotonic()
        proc.send_signal(how)
        proc.wait(timeout=10)
        assert time.monotonic() - started < 10
        deadline = time.monotonic() + (5 if how == signal.SIGTERM else 15)
        while _alive(family) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(family), f"left behind: {_alive(family)}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _forked_child(queue) -> None:
    queue.put(sandbox.run(add, 2, 3))


def test_a_process_forked_after_using_the_sandbox_starts_its_own():
    """Celery's prefork pool forks its children from a process that may have used the sandbox: a child must not
    share the parent's pipes or wait on the parent's forkserver."""
    import multiprocessing

    assert sandbox.run(add, 1, 1) == 2
    fork = multiprocessing.get_context("fork")
    queue = fork.Queue()
    child = fork.Process(target=_forked_child, args=(queue,))
    child.start()
    assert queue.get(timeout=60) == 5
    child.join(timeout=30)
    assert child.exitcode == 0
    assert sandbox.run(add, 3, 3) == 6  # the parent's own sandbox goes on
