"""Noisy neighbour: do other students wait while one sends answers made to stop the checker?

    . .venv/bin/activate && nice python benchmarks/noisy_neighbour.py --server daphne --db sqlite
    . .venv/bin/activate && nice python benchmarks/noisy_neighbour.py --server uvicorn --workers 2 --db postgres

A real server on loopback (daphne or uvicorn, as `make run` and production start them; SQLite or a throwaway
PostgreSQL cluster, see benchmarks/load.py), the demo course, and --students simulated students answering as in
load.py (right 75 % of the time, think time --think). Measured in alternating phases of --phase-s seconds, in this
one run: "quiet" (the students alone) and "attack" (one more student sends, as fast as the server replies, a fuzz
corpus: huge exponents, towers of powers, factorials, 100k-character strings, deep nesting, Unicode look-alikes,
LaTeX, and expressions that pass every limit on the text but keep sympy busy until the sandbox kills the worker).
Per-student answer limits are off for everyone (worst case: the attacker is not slowed by them; --limits keeps
the production limits). It prints the students' answer round trip p50/p99 per phase, the ratio of p99 attack /
quiet, failed requests (a student's action without its reply, or refused), what the attacker got back, and the
machine's load average beside each phase. Then, while a slow answer is being checked, it sends SIGTERM to the
server and prints how long the server took to exit and whether any of its processes (sandbox workers, the
forkserver) were left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import (  # noqa: E402  (benchmarks/ is not a package)
    _ITEM,
    _PHASE,
    BIN,
    REPO,
    Stack,
    Stats,
    Student,
    StudentError,
    ThrowawayPostgres,
    django_setup,
    pct,
    prepare,
    run_student,
)

SLOW = [  # each passes the limits on the text; sympy would take minutes: the sandbox's time limit ends it
    "(x^999+1)/(x^998-1)-(x^997+2)/(x^996-3)",
    "x^999*sin(x)^40*cos(x)^40*tan(x)^40-exp(x)^40*log(x)^40",
    "(x+1)^40*(x+2)^40*(x+3)^40*(x+4)^40-(x+5)^40",
]
BOMBS = ["1e999999", "9^9^9^9", "2**2**2**2**2", "99999!", "(10!)!", "factorial(factorial(9))", "x" * 100_000,
         "(" * 500 + "x" + ")" * 500, "10^(10^20)", "exp(exp(exp(exp(1000))))", "1" * 5000, "x^(10^10)",
         r"\frac{" * 300 + "1" + "}" * 300, "х^2", "ｘ²", "0,25", "7 m/s", "1/0", "999^999*998^998-997^997"]
PIECES = ["x", "2", "9", "^", "**", "!", "(", ")", "e", "1e", "999", "/", "0", ",", "=", " ", "sin(", "log(", "*",
          "-", "+", ".", "х", "²", "−", "π", "√", "\u200b", r"\frac{", "}{", "}", "$$"]


def corpus(rng: random.Random, n: int) -> list[str]:
    """`n` answers: a third made to reach the sandbox's limit (each unique, so no memo answers for it), the rest
    bombs refused by the limits on the text and random fuzz."""
    out = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            out.append(f"{rng.choice(SLOW)}+{rng.randint(1, 10**6)}")
        elif kind == 1:
            out.append(rng.choice(BOMBS))
        else:
            out.append("".join(rng.choice(PIECES) for _ in range(rng.randint(1, 40))))
    return out


class NoisyStack(Stack):
    def start_worker_prefork(self) -> subprocess.Popen:
        """A Celery worker as docker-compose runs it (prefork, two children), not load.py's solo worker."""
        proc = subprocess.Popen([str(BIN / "celery"), "-A", "tutor", "worker", "--concurrency=2", "--loglevel=WARNING",
                                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                                cwd=REPO, env=self.env(), stdout=open(self.logdir / "celery-prefork.log", "ab"),
                                stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.celery.append(proc)
        return proc


class Attacker:
    """One more student, who answers every item with the next piece of the corpus as soon as a reply comes."""

    def __init__(self, student: Student, answers: list[str]) -> None:
        self.student, self.answers = student, answers
        self.sent = self.replied = self.failed = 0
        self.notices: dict[str, int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        s = self.student
        await s.login(s.info["sessions"].get(s.username))
        stage = await s.connect()
        i = 0
        while not stop.is_set():
            phase = _PHASE.search(stage)
            item = _ITEM.search(stage)
            if not (phase and phase.group(1) in ("practice", "placement") and item):
                stage = await s.step(stage)  # feedback, explanation: go on as a student would
                continue
            text = self.answers[i % len(self.answers)]
            i += 1
            self.sent += 1
            await s.send({"action": "answer", "client_id": str(uuid.uuid4()), "item": item.group(1), "answer": text})
            try:
                frame = await s.recv(lambda f: "data-phase" in f or 'id="notice"' in f, timeout=60)
            except (TimeoutError, StudentError):
                self.failed += 1
                continue
            self.replied += 1
            if "data-phase" in frame:
                stage = frame
            else:
                message = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", frame)).strip()[:70]
                self.notices[message] = self.notices.get(message, 0) + 1


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f} (1/5 min, {os.cpu_count()} CPUs)"


async def measure(stack: Stack, info: dict, students: int, phase_s: float, rounds: int, warmup_s: float,
                  think: tuple[float, float], seed: int) -> dict:
    rng = random.Random(seed)
    current = {"stats": Stats()}
    stop = asyncio.Event()
    names = info["usernames"]
    learners = [Student(stack.base, name, info, lambda: current["stats"], think, random.Random(rng.random()),
                        api_every=0, ta_every=0) for name in names[:students]]
    tasks = [asyncio.create_task(run_student(s, stop)) for s in learners]
    await asyncio.sleep(warmup_s)  # logged in, placement mostly over
    warm = current["stats"]
    print(f"warm-up {warmup_s:.0f} s: {sum(len(v) for v in warm.rtt.values())} actions, errors "
          f"{dict(warm.errors) or 0}", flush=True)
    phases: list[dict] = []
    attacker = Attacker(Student(stack.base, names[students], info, lambda: Stats(), think, random.Random(seed)),
                        corpus(random.Random(seed), 400))
    attack_stop = asyncio.Event()
    attack_task: asyncio.Task | None = None
    for r in range(rounds):
        for name in ("quiet", "attack"):
            current["stats"] = Stats()
            if name == "attack":
                attack_stop.clear()
                attack_task = asyncio.create_task(attacker.run(attack_stop))
            await asyncio.sleep(phase_s)
            stats = current["stats"]
            rtt = stats.rtt.get("answer", []) + stats.rtt.get("placement_answer", [])
            srv = stats.server.get("answer", []) + stats.server.get("placement_answer", [])
            phases.append({"round": r, "phase": name, "answers": len(rtt), "p50": pct(rtt, 50), "p99": pct(rtt, 99),
                           "srv_p99": pct(srv, 99), "errors": sum(stats.errors.values()),
                           "error_kinds": dict(stats.errors), "load": _load(), "rtt": rtt})
            if name == "attack" and attack_task is not None:
                attack_stop.set()
                await asyncio.wait([attack_task], timeout=70)
                await attacker.student.close()
                attacker.student = Student(stack.base, names[students], info, lambda: Stats(), think,
                                           random.Random(seed + r))
    stop.set()
    await asyncio.wait(tasks, timeout=60)
    failed_tasks = sum(1 for t in tasks if not t.done())
    return {"phases": phases, "attacker": attacker, "unfinished_students": failed_tasks}


def _descendants(pid: int) -> set[int]:
    children: dict[int, set[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, set()).add(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        kids = children.get(todo.pop(), set())
        out |= kids
        todo.extend(kids)
    return out


def _sandbox_running(pid: int) -> bool:
    """A sandbox worker (forked by the forkserver) under `pid`, busy: it has used CPU in the last 0.1 s or so."""
    for child in _descendants(pid):
        try:
            if b"forkserver" in Path(f"/proc/{child}/cmdline").read_bytes() and \
                    Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0] == "R":
                return True
        except OSError:
            continue
    return False


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                alive.add(pid)
        except OSError:
            continue
    return alive


async def sigterm_while_checking(stack: Stack, info: dict, username: str, celery: bool = False) -> dict:
    """A slow answer in the sandbox, then SIGTERM to the server (its process group, as a supervisor does); with
    `celery`, the answer goes through the offline batch API to a Celery worker (prefork, as deployed), and the
    worker gets the SIGTERM."""
    student = Student(stack.base, username, info, lambda: Stats(), (0.0, 0.0), random.Random(1))
    await student.login(info["sessions"].get(username))
    slow = SLOW[0] + f"+{random.randint(1, 10**6)}"
    if celery:
        from courses.models import Item

        item = await asyncio.to_thread(
            lambda: Item.objects.filter(concept__course__slug=info["course"], kind="symbolic").first())
        worker = stack.start_worker_prefork()
        await asyncio.sleep(8.0)  # the worker is up and has imported the app
        response = await student.http.post(
            f"/api/learn/{info['course']}/answers",
            content=f'{{"answers": [{{"client_id": "{uuid.uuid4()}", "item": {item.pk}, "answer": "{slow}"}}]}}',
            headers={"Content-Type": "application/json", "X-CSRFToken": student.csrf, "Referer": stack.base + "/"})
        assert response.status_code == 202, response.status_code
    else:
        stage = await student.connect()
        while not (_ITEM.search(stage) and _PHASE.search(stage).group(1) in ("practice", "placement")):
            stage = await student.step(stage)
        await student.send({"action": "answer", "client_id": str(uuid.uuid4()), "item": _ITEM.search(stage).group(1),
                            "answer": slow})
    server = worker if celery else stack.processes[0]
    waited = time.monotonic()
    while not _sandbox_running(server.pid) and time.monotonic() - waited < 60:
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # the check is in a sandbox worker now
    family = _descendants(server.pid)
    started = time.monotonic()
    os.killpg(server.pid, signal.SIGTERM)
    while server.poll() is None and time.monotonic() - started < 30:
        await asyncio.sleep(0.05)
    exit_s = time.monotonic() - started
    left = _alive(family)
    while left and time.monotonic() - started < exit_s + 10:  # a child may still be on its way out on a busy machine
        await asyncio.sleep(0.1)
        left = _alive(family)
    gone_s = time.monotonic() - started
    try:
        await student.close()
    except Exception:  # noqa: BLE001  (the server is gone: closing its socket may fail any way)
        pass
    return {"exit_s": exit_s, "exited": server.poll() is not None, "processes": len(family), "left_behind": len(left),
            "gone_s": gone_s, "sandbox_busy": time.monotonic() - waited < 60,
            "left_cmdlines": [Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ")[:80].decode(errors="replace")
                              for p in left if Path(f"/proc/{p}/cmdline").exists()]}


def overhead(n: int) -> None:
    """The sandbox's cost per answer: typical symbolic answers (each distinct, so the memo never answers)
    checked in this process, as before the sandbox, and through a sandbox worker; and a plain number, which
    never leaves the process."""
    from courses import checking
    from inference import sandbox

    answers = [f"{a}x^{b} + {c}" for a in range(2, 9) for b in range(2, 6) for c in range(1, 9)][:n]
    sandbox.warm()
    checking.check_answer("symbolic", "3*x**2", "3x^2", variables=["x"])  # the worker has imported sympy

    def timed(fn) -> list[float]:
        out = []
        for text in answers:
            started = time.perf_counter()
            fn(text)
            out.append((time.perf_counter() - started) * 1000)
        return out

    def inline(text: str) -> None:
        sandbox._in_worker = True  # what a worker does: the check in this process
        try:
            checking._check_maths("symbolic", "3*x**2 + 1", text, None, None, ["x"], {})
        finally:
            sandbox._in_worker = False

    def bounded(text: str) -> None:
        checking._check_bounded("symbolic", "3*x**2 + 1", text, None, None, ["x"], {})

    def number(text: str) -> None:
        checking.check_answer("numeric", 4, str(len(text) / 7))

    direct, through, plain = timed(inline), timed(bounded), timed(number)
    print(f"per answer ({len(answers)} distinct symbolic answers): in process p50 {pct(direct, 50):.2f} ms, "
          f"through the sandbox p50 {pct(through, 50):.2f} ms (+{pct(through, 50) - pct(direct, 50):.2f} ms, "
          f"{pct(through, 50) / pct(direct, 50):.2f}x), p99 {pct(direct, 99):.2f} / {pct(through, 99):.2f} ms; "
          f"a plain number p50 {pct(plain, 50):.3f} ms (no worker); {_load()}")


def main() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=["daphne", "uvicorn"], default="daphne")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn processes")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--redis-url", default="", help="with --db postgres: e.g. redis://127.0.0.1:6379/9")
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--phase-s", type=float, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup-s", type=float, default=20)
    parser.add_argument("--think", default="0.5,1.5", help="seconds between a student's actions, uniform")
    parser.add_argument("--limits", action="store_true", help="keep the production per-student answer limits")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--sigterm-only", action="store_true", help="only the SIGTERM check (for tests)")
    parser.add_argument("--overhead", type=int, default=0, metavar="N",
                        help="only the sandbox's cost per answer, over N distinct answers (no server)")
    parser.add_argument("--celery", action="store_true",
                        help="the SIGTERM check on a Celery worker checking a batch answer (needs --redis-url)")
    args = parser.parse_args()
    think = tuple(float(x) for x in args.think.split(","))
    if args.overhead:
        overhead(args.overhead)
        return
    pg = ThrowawayPostgres() if args.db == "postgres" else None
    tmp = Path(tempfile.mkdtemp(prefix="tutor-noisy-"))
    url = pg.url if pg else f"sqlite:///{tmp / 'db.sqlite3'}"
    stack = None
    try:
        if pg:
            pg.init()
        django_setup(url, args.redis_url)
        info = prepare(students=args.students + 2)
        from courses.models import Course

        # load.py's simulated student knows no teach-back phase: the students practise, which is what is measured
        course = Course.objects.get(slug=info["course"])
        course.settings = {**course.settings, "teach_back": "never"}
        course.save(update_fields=["settings"])
        env = {"TUTOR_STREAM_DELAY_S": "0.0", "DJANGO_ALLOWED_HOSTS": "127.0.0.1", "TUTOR_TA_WARMUP": "0"}
        if not args.limits:
            env.update({"TUTOR_RATELIMIT_ANSWERS": "0", "TUTOR_RATELIMIT_UNCHECKED": "0"})
        stack = NoisyStack(database_url=url, redis_url=args.redis_url, workers=args.workers, server=args.server,
                      extra_env=env)
        stack.start()
        print(f"{args.server}{f' x{args.workers}' if args.server == 'uvicorn' else ''}, {args.db}"
              f"{', ' + args.redis_url if args.redis_url else ''}; {args.students} students, think {think[0]}-{think[1]} s;"
              f" per-student limits {'on' if args.limits else 'off'}; {_load()}")
        if not args.sigterm_only:
            result = asyncio.run(measure(stack, info, args.students, args.phase_s, args.rounds, args.warmup_s, think,
                                         args.seed))
            print(f"\n{'round':>5} {'phase':<7}{'answers':>8}{'p50 ms':>9}{'p99 ms':>9}{'srv p99':>9}{'failed':>7}  load")
            for p in result["phases"]:
                print(f"{p['round']:>5} {p['phase']:<7}{p['answers']:>8}{p['p50']:>9.1f}{p['p99']:>9.1f}"
                      f"{p['srv_p99']:>9.1f}{p['errors']:>7}  {p['load']}" + (f"  {p['error_kinds']}" if p["errors"] else ""))
            quiet = [x for p in result["phases"] if p["phase"] == "quiet" for x in p["rtt"]]
            attack = [x for p in result["phases"] if p["phase"] == "attack" for x in p["rtt"]]
            failed = sum(p["errors"] for p in result["phases"]) + result["unfinished_students"]
            a = result["attacker"]
            print(f"\nstudents' answers: quiet n={len(quiet)} p50 {pct(quiet, 50):.1f} p99 {pct(quiet, 99):.1f} ms; "
                  f"attack n={len(attack)} p50 {pct(attack, 50):.1f} p99 {pct(attack, 99):.1f} ms; "
                  f"mean {statistics.fmean(quiet or [0]):.1f} / {statistics.fmean(attack or [0]):.1f} ms")
            print(f"p99 ratio attack/quiet: {pct(attack, 99) / pct(quiet, 99):.2f}   failed requests: {failed}   "
                  f"{_load()}")
            print(f"attacker: {a.sent} answers sent, {a.replied} replied, {a.failed} without a reply; replies: "
                  + "; ".join(f"{n}x {m!r}" for m, n in sorted(a.notices.items(), key=lambda kv: -kv[1])[:6]))
        out = asyncio.run(sigterm_while_checking(stack, info, info["usernames"][args.students + 1], args.celery))
        print(f"SIGTERM to the {'Celery worker' if args.celery else 'server'} while a slow answer was in the sandbox: "
              f"(a sandbox worker busy: {out['sandbox_busy']}) exited={out['exited']} in {out['exit_s']:.2f} s; "
              f"{out['processes']} processes under the server before, {out['left_behind']} left "
              f"{out['gone_s']:.2f} s after the SIGTERM (waiting at most 10 s past the exit) "
              f"{out['left_cmdlines'] or ''}")
        print(f"RESULT sigterm_exit_s={out['exit_s']:.2f} exited={out['exited']} left_behind={out['left_behind']} "
              f"all_gone_s={out['gone_s']:.2f} sandbox_busy={out['sandbox_busy']}")
    finally:
        if stack is not None:
            stack.stop()
        if pg is not None:
            pg.destroy()


if __name__ == "__main__":
    main()
