"""Bounded evaluation: untrusted maths runs in worker processes that can be killed, never in the caller.

    from inference import sandbox
    value = sandbox.run(some_module.function, arg, ...)   # fn(*args) in a worker; raises OverBudget

Students' answers, authors' templates and models' generated items are maths of any size: sympy will spend
minutes (holding the interpreter lock, so every thread of the process waits) on `1e999999` or `9^9^9`, and a
thread cannot be stopped. So each call goes to one of a few worker processes, and the caller waits on a pipe
with a deadline. Past it the worker is killed (SIGKILL) and the call raises `OverBudget`; a new worker is
forked from the forkserver on the next call. The deadline counts the call's CPU time in its worker (with a
wall-clock backstop a few times longer), so that a loaded machine slows fair calls down without refusing them.
Three more limits hold inside each worker, set by the kernel, so they hold even if the calling process is gone:
an address-space limit (RLIMIT_AS: a MemoryError, then the worker is replaced), a CPU-time limit per call
(RLIMIT_CPU, reset before each call: SIGXCPU ends a worker whose caller died mid-call), and after `slow_s` of CPU
a call's worker is reniced to 19 so that a long evaluation takes only the CPU nobody else wants (its priority is
restored when the call ends, or, where the process may not raise a priority again, the worker is retired).

Like any user of the forkserver (or spawn) start method, a script that uses the sandbox needs the
`if __name__ == "__main__":` guard: workers import the main module.

Callers are threads (the ASGI server's database threads, Celery tasks, tests): each call checks out a worker
for itself, so there is no thread of the sandbox's own in the caller, nothing that can keep the process from
exiting. Workers are daemonic: multiprocessing terminates them when the process exits, and `close()` runs at
exit too. Workers start by forkserver, never by forking the caller: the web process has threads and torch,
and a fork of a threaded process can inherit a lock held by another thread forever. The forkserver imports
the modules named by `preload()` once; each worker is a fork of it and starts in milliseconds.

A call made inside a worker (bounded code calling other bounded code) runs inline: it is under the budget
already. No Django, no app imports: `courses/` and `inference/` both use this.
"""

from __future__ import annotations

import atexit
import importlib
import math
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.process
import os
import resource
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar, cast

T = TypeVar("T")


@dataclass(frozen=True)
class Budget:
    # CPU seconds one call may use in its worker before it is killed. CPU, not wall-clock: on a busy machine a fair
    # answer waits for a core, and a wall-clock limit turned it away as "too large to check" (chaos, CI run 46).
    timeout_s: float = 3.0
    wall_factor: float = 4.0  # and at most this many times `timeout_s` of wall-clock time, whatever the CPU
    memory_mb: int = 1024  # address space of each worker (RLIMIT_AS); sympy itself needs ~60 MB
    workers: int = 4  # most worker processes per calling process; more concurrent calls wait for one
    slow_s: float = 0.25  # a call that has used this much CPU is reniced to 19 until it ends
    wait_s: float = 10.0  # longest wait for a free worker before `Busy`


class OverBudget(ValueError):
    """The call ran past its time or memory budget, or crashed its worker. `reason`: time, memory, crash."""

    def __init__(self, reason: str, message: str = "") -> None:
        self.reason = reason
        super().__init__(message or f"over budget ({reason})")


class Busy(RuntimeError):
    """Every worker stayed busy for `Budget.wait_s`: the caller may try again; nothing was evaluated."""


_in_worker = False
_preload: list[str] = ["__main__", "inference.sandbox"]
_warm_ups: list[str] = []  # "module:function", run by each worker before it takes its first call


def in_worker() -> bool:
    """True inside a sandbox worker (where calls run inline, already under a budget)."""
    return _in_worker


def warm_up(*functions: str) -> None:
    """Functions ("module:function") each new worker runs before its first call, outside any call's budget:
    sympy's first simplification in a process costs many times a later one (caches, the assumptions system), and a
    fair first answer must not look slow."""
    for name in functions:
        if name not in _warm_ups:
            _warm_ups.append(name)


def preload(*modules: str) -> None:
    """Modules the forkserver imports once, before it forks any worker (e.g. sympy and the module of the
    functions that will be run): each worker starts with them loaded instead of importing them itself.
    Names added after the forkserver has started take effect only if it is restarted."""
    for name in modules:
        if name not in _preload:
            _preload.append(name)


# --- the worker ----------------------------------------------------------------------------------------


def _serve(conn: Connection, memory_mb: int, warm_ups: list[str]) -> None:
    """A worker's loop: one call at a time, from the pipe, until the pipe closes (the caller is gone)."""
    global _in_worker
    _in_worker = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the caller decides
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for name in warm_ups:
        module, _, function = name.partition(":")
        getattr(importlib.import_module(module), function)()
    conn.send(("ready", None))
    while True:
        try:
            fn, args, kwargs, cpu_s = conn.recv()
        except (EOFError, OSError):
            return
        used = resource.getrusage(resource.RUSAGE_SELF)
        soft = math.ceil(used.ru_utime + used.ru_stime + cpu_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))
        try:
            reply: tuple[str, Any] = ("ok", fn(*args, **kwargs))
        except MemoryError:
            reply = ("memory", None)
        except RecursionError:
            reply = ("crash", None)
        except Exception as exc:  # the caller gets the function's own exception, raised again there
            reply = ("raised", exc)
        try:
            conn.send(reply)
        except (TypeError, AttributeError, ValueError) as exc:  # pickling a result or an exception failed
            conn.send(("raised", RuntimeError(f"sandbox: could not return {reply[0]}: {exc}")))
        except (BrokenPipeError, OSError):
            return
        if reply[0] == "memory":
            return  # a MemoryError may leave the interpreter in a poor state: a fresh worker takes over


READY_TIMEOUT_S = 60.0  # a new worker's warm-up, on a machine as busy as it gets
_start_lock = threading.Lock()


class _Worker:
    def __init__(self, ctx: Any, memory_mb: int) -> None:
        self.conn, child = ctx.Pipe()
        with _start_lock:
            # Celery's prefork children run as daemonic processes, which multiprocessing forbids to have children
            # (so that none is orphaned): a worker here never outlives its caller, it exits at the closed pipe or,
            # mid-call, on its CPU limit. Their key is billiard's, which refuses to be pickled for the forkserver:
            # the same bytes, as multiprocessing's own type, while the worker starts.
            current = multiprocessing.current_process()
            config = dict(current._config)  # type: ignore[attr-defined]
            current._config["daemon"] = False  # type: ignore[attr-defined]
            current._config["authkey"] = multiprocessing.process.AuthenticationString(bytes(current.authkey))  # type: ignore[attr-defined]
            try:
                self.process = ctx.Process(target=_serve, args=(child, memory_mb, list(_warm_ups)), daemon=True,
                                           name="maths-sandbox")
                self.process.start()
            finally:
                current._config.update(config)  # type: ignore[attr-defined]
        child.close()  # only the worker holds its end: when the worker dies, recv() here sees EOF
        try:
            if not self.conn.poll(READY_TIMEOUT_S) or self.conn.recv()[0] != "ready":
                raise OSError("no ready message")
        except (EOFError, OSError) as exc:
            self.stop()
            raise Busy(f"a sandbox worker did not start: {exc}") from None
        self.nice: int | None = None  # the priority it had before a slow call reniced it

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=2)
        self.conn.close()


# --- the pool ------------------------------------------------------------------------------------------


class Sandbox:
    """A pool of at most `budget.workers` worker processes, started on demand and replaced when killed."""

    def __init__(self, budget: Budget | None = None) -> None:
        self.budget = budget or Budget()
        self._ctx = multiprocessing.get_context("forkserver")
        self._idle: list[_Worker] = []
        self._count = 0  # workers alive, idle or checked out
        self._cond = threading.Condition()
        self._closed = False

    def run(self, fn: Callable[..., T], *args: Any, timeout_s: float | None = None, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` in a worker. `fn`, the arguments and the result are pickled (a module-level
        function, plain data). Raises OverBudget past the budget, Busy if no worker frees up in time, and
        whatever `fn` raised."""
        if _in_worker:
            return fn(*args, **kwargs)
        timeout = self.budget.timeout_s if timeout_s is None else timeout_s
        worker = self._checkout()
        healthy = False
        try:
            worker.conn.send((fn, args, kwargs, timeout))
            status, value = self._wait(worker, timeout)
            healthy = status in ("ok", "raised") and _restore_priority(worker)
        finally:
            self._checkin(worker, healthy)
        if status == "ok":
            return cast(T, value)
        if status == "raised":
            raise value
        raise OverBudget(status)

    def _wait(self, worker: _Worker, timeout: float) -> tuple[str, Any]:
        """The worker's reply, or "time" once the call has used `timeout` CPU seconds (the wall clock where the
        worker's CPU time cannot be read) or `wall_factor` times that in wall-clock time."""
        started, cpu_before = time.monotonic(), _cpu_seconds(worker)
        by_cpu = math.isfinite(cpu_before)
        wall_limit = timeout * (self.budget.wall_factor if by_cpu else 1.0)
        try:
            while not worker.conn.poll(min(self.budget.slow_s, max(0.0, started + wall_limit - time.monotonic()))):
                # slow by its own CPU time, not by the wall clock: on a busy machine every call waits for a core,
                # and a fair answer reniced or stopped there would be one that merely waited
                used = _cpu_seconds(worker) - cpu_before if by_cpu else time.monotonic() - started
                if used >= timeout or time.monotonic() - started >= wall_limit:
                    return "time", None
                if worker.nice is None and not used < self.budget.slow_s:
                    _renice(worker)
            reply: tuple[str, Any] = worker.conn.recv()
            return reply
        except (EOFError, OSError):  # the worker died: the memory limit, SIGXCPU, a crash in C
            worker.process.join(timeout=1)
            return ("time" if worker.process.exitcode == -signal.SIGXCPU else "crash"), None

    def _checkout(self) -> _Worker:
        deadline = time.monotonic() + self.budget.wait_s
        with self._cond:
            while True:
                if self._closed:
                    raise Busy("the sandbox is closed")
                if self._idle:
                    return self._idle.pop()
                if self._count < self.budget.workers:
                    self._count += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    raise Busy(f"all {self.budget.workers} sandbox workers stayed busy for {self.budget.wait_s:g} s")
        try:
            return _Worker(self._ctx, self.budget.memory_mb)  # outside the lock: a start takes milliseconds
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _checkin(self, worker: _Worker, healthy: bool) -> None:
        with self._cond:
            if healthy and not self._closed:
                self._idle.append(worker)
                self._cond.notify()
                return
        worker.stop()
        # The caller whose call overran (or crashed its worker) starts the replacement and waits for its warm-up,
        # not whoever asks for a worker next: that would be a fair answer made to wait for someone else's.
        replacement = None
        if not self._closed:
            try:
                replacement = _Worker(self._ctx, self.budget.memory_mb)
            except Busy:
                pass
        with self._cond:
            if replacement is not None and not self._closed:
                self._idle.append(replacement)
            else:
                self._count -= 1
                if replacement is not None:
                    replacement.stop()
            self._cond.notify()

    def warm(self) -> None:
        """Start one worker now (and the forkserver, which imports the preloaded modules), not on the first call."""
        self._checkin(self._checkout(), True)

    def close(self) -> None:
        """Stop the idle workers; workers still in a call are stopped when it returns."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for worker in idle:
            worker.stop()

    def pids(self) -> list[int]:
        """The idle workers' process ids (for tests and benchmarks)."""
        with self._cond:
            return [w.process.pid for w in self._idle if w.process.pid is not None]


def _cpu_seconds(worker: _Worker) -> float:
    """CPU time the worker has used (Linux /proc; elsewhere infinite, so that slow calls are reniced by wall time)."""
    try:
        fields = Path(f"/proc/{worker.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return math.inf
    return (int(fields[11]) + int(fields[12])) / _TICKS


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _renice(worker: _Worker) -> None:
    """A long call yields the CPU to everything else."""
    try:
        pid = worker.process.pid or 0
        worker.nice = os.getpriority(os.PRIO_PROCESS, pid)
        os.setpriority(os.PRIO_PROCESS, pid, 19)
    except OSError:  # the worker already exited: the next poll sees that
        pass


def _restore_priority(worker: _Worker) -> bool:
    """Back to its priority after a reniced call; False where this process may not raise it (retire it)."""
    if worker.nice is None:
        return True
    try:
        os.setpriority(os.PRIO_PROCESS, worker.process.pid or 0, worker.nice)
    except OSError:
        return False
    worker.nice = None
    return True


# --- the process's default sandbox -------------------------------------------------------------------

_budget = Budget()
_default: Sandbox | None = None
_default_lock = threading.Lock()


def configure(**budget: Any) -> Budget:
    """Change the default sandbox's budget (fields of `Budget`); workers started under the old one are stopped."""
    global _budget, _default
    with _default_lock:
        _budget = replace(_budget, **budget)
        old, _default = _default, None
    if old is not None:
        old.close()
    return _budget


def default() -> Sandbox:
    global _default
    with _default_lock:
        if _default is None:
            multiprocessing.get_context("forkserver").set_forkserver_preload(list(_preload))
            _default = Sandbox(_budget)
        return _default


def run(fn: Callable[..., T], *args: Any, timeout_s: float | None = None, **kwargs: Any) -> T:
    """`Sandbox.run` on the process's default sandbox (started on first use)."""
    return default().run(fn, *args, timeout_s=timeout_s, **kwargs)


def warm() -> None:
    """Start the default sandbox's forkserver and first worker now (e.g. when a server process starts)."""
    default().warm()


def close() -> None:
    global _default
    with _default_lock:
        old, _default = _default, None
    if old is not None:
        old.close()


def _forget_after_fork() -> None:
    """A process forked from one that had a sandbox (Celery's prefork pool) must not share its pipes or its
    forkserver (not its child: multiprocessing would wait on it and fail); it starts its own when it first needs
    one. The parent's workers are left to the parent."""
    global _default, _default_lock
    _default, _default_lock = None, threading.Lock()
    server = multiprocessing.forkserver._forkserver  # the process-wide instance the "forkserver" context uses
    if server._forkserver_pid is not None:  # type: ignore[attr-defined]
        os.close(server._forkserver_alive_fd)  # type: ignore[attr-defined]
        server._forkserver_pid = server._forkserver_address = server._forkserver_alive_fd = None  # type: ignore[attr-defined]
        server._lock = threading.Lock()  # type: ignore[attr-defined]


atexit.register(close)
os.register_at_fork(after_in_child=_forget_after_fork)
