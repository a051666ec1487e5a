"""Stream relay: what does the tutor's websocket path add between a model's token and the student's screen?

    . .venv/bin/activate && nice python benchmarks/stream_relay.py --sessions 1,10,50,100 --tokens 100 --rate 50

A server process is started on 127.0.0.1: the real ASGI application (`tutor.asgi`, served by uvicorn:
AllowedHostsOriginValidator, session auth, the `SessionConsumer`, `tutor.llm`'s fallback wrapper, the
worker thread that iterates the backend) over a throwaway SQLite database with the demo course. Its model
is a paced backend registered only in that process: `--tokens` chunks at `--rate` tokens/s per stream,
each stamped with the system-wide monotonic clock when it is yielded. N students, already past their
guess, connect at once; each one's explanation starts streaming on connect. The client reads the stamp
back out of every websocket frame: arrival minus stamp is the latency the relay added (thread to event
loop, the fallback's queue, the consumer, uvicorn, loopback TCP, the client's own event loop).

Per level it prints tokens delivered / sent, relay-added latency p50/p99/max, the aggregate token rate,
and the seconds from opening the socket to the first token (p50/p99): what a student waits, which grows
when streams queue for worker threads even though each token, once produced, is relayed quickly.
Everything is bounded by timeouts and stays on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

_STAMP = re.compile(r"\[t=(\d+\.\d+)\]")
DONE_MARKER = 'id="start-practice"'  # tutor/partials/explanation_done.html: the stream is over


# --- the server process -------------------------------------------------------------------------------


class PacedBackend:
    """Emits `tokens` chunks at `rate` per second, each carrying the monotonic time it was yielded."""

    name = "paced"

    def __init__(self, tokens: int, rate: float) -> None:
        self.tokens, self.interval = tokens, 1.0 / rate

    def stream(self, request) -> Iterator[str]:  # type: ignore[no-untyped-def]
        start = time.monotonic()
        for k in range(self.tokens):
            # Sleep to the schedule, not by a fixed amount, so that a late wake-up does not slow the rate.
            delay = start + k * self.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if request.cancelled():
                return
            yield f"[t={time.monotonic():.6f}] "

    def health(self) -> bool:
        return True


def serve(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.core.management import call_command

    from courses.format import load_course
    from courses.services import course_import
    from inference.registry import BACKENDS
    from tutor import services

    call_command("migrate", verbosity=0)
    course = course_import(spec=load_course(REPO / "courses" / "demo" / "derivatives"))
    course.settings = {**course.settings, "placement_questions": 0}
    course.save(update_fields=["settings"])
    BACKENDS["paced"] = lambda **_: PacedBackend(args.tokens, args.rate)

    from importlib import import_module

    store = import_module(settings.SESSION_ENGINE).SessionStore
    cookies = []
    for number in range(args.users):
        user = get_user_model().objects.create_user(username=f"student{number}", password="relay-benchmark-pw-1")
        services.enrollment_create(user=user, course=course)
        services.guess_record(user=user, course=course, client_id=uuid.uuid4(), text="a guess")
        session = store()
        session[SESSION_KEY], session[BACKEND_SESSION_KEY] = str(user.pk), "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        cookies.append(session.session_key)

    import uvicorn

    from tutor.asgi import application

    config = uvicorn.Config(application, host="127.0.0.1", port=args.port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)

    async def run() -> None:
        if args.stream_threads:
            # The consumer iterates the backend in the loop's default executor (min(32, cpus + 4) threads):
            # one thread per live stream. This shows what a bigger pool changes.
            from concurrent.futures import ThreadPoolExecutor

            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=args.stream_threads))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        Path(args.ready).write_text(json.dumps({"course": course.slug, "cookies": cookies,
                                                "cookie_name": settings.SESSION_COOKIE_NAME}))
        await task

    asyncio.run(run())


# --- the client ---------------------------------------------------------------------------------------


async def one_student(url: str, origin: str, cookie: str, timeout_s: float) -> tuple[int, list[float], float]:
    """(tokens received, relay latency of each, seconds from connecting to the first token)."""
    import websockets

    latencies: list[float] = []
    first: float | None = None
    connecting = time.monotonic()
    async with websockets.connect(url, origin=origin, additional_headers={"Cookie": cookie},  # type: ignore[arg-type]
                                  open_timeout=timeout_s, max_size=None) as socket_:
        deadline = time.monotonic() + timeout_s
        while True:
            frame = await asyncio.wait_for(socket_.recv(), timeout=max(0.1, deadline - time.monotonic()))
            arrived = time.monotonic()
            if isinstance(frame, bytes):
                frame = frame.decode()
            if 'id="explanation-stream"' in frame and "hx-swap-oob" in frame:
                latencies.extend(arrived - float(m) for m in _STAMP.findall(frame))
                first = first if first is not None else arrived - connecting
            elif DONE_MARKER in frame:
                return len(latencies), latencies, first if first is not None else math.nan


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def run_levels(args: argparse.Namespace, port: int, ready: dict) -> int:
    url = f"ws://127.0.0.1:{port}/ws/learn/{ready['course']}/"
    origin = f"http://127.0.0.1:{port}"
    cookies = iter(ready["cookies"])
    print(f"{args.tokens} tokens per stream at {args.rate:g} tokens/s (a stream lasts {args.tokens / args.rate:.1f} s)")
    print(f"{'sessions':>8} {'sent':>7} {'delivered':>9} {'ratio':>6} {'p50_ms':>7} {'p99_ms':>7} {'max_ms':>7} "
          f"{'tok/s':>8} {'wall_s':>7} {'first50_s':>9} {'first99_s':>9} {'errors':>6}")
    failures = 0
    for n in args.sessions:
        students = [f"{ready['cookie_name']}={next(cookies)}" for _ in range(n)]
        started = time.monotonic()
        results = await asyncio.gather(*(one_student(url, origin, c, args.timeout) for c in students),
                                       return_exceptions=True)
        wall = time.monotonic() - started
        errors = [r for r in results if isinstance(r, BaseException)]
        ok = [r for r in results if not isinstance(r, BaseException)]
        delivered = sum(count for count, _, _ in ok)
        latencies = [x for _, lat, _ in ok for x in lat]
        firsts = [f for _, _, f in ok if not math.isnan(f)]
        sent = n * args.tokens
        if errors:
            print(f"  {len(errors)} sessions failed, first: {type(errors[0]).__name__}: {errors[0]}", file=sys.stderr)
        if not latencies:
            print(f"{n:>8} {sent:>7} {0:>9}   no tokens arrived")
            failures += 1
            continue
        print(f"{n:>8} {sent:>7} {delivered:>9} {delivered / sent:6.3f} {percentile(latencies, 0.5) * 1000:7.2f} "
              f"{percentile(latencies, 0.99) * 1000:7.2f} {max(latencies) * 1000:7.2f} {delivered / wall:8.0f} "
              f"{wall:7.2f} {percentile(firsts, 0.5):9.2f} {percentile(firsts, 0.99):9.2f} {len(errors):>6}", flush=True)
        failures += delivered != sent
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=lambda s: [int(x) for x in s.split(",")], default=[1, 10, 50, 100])
    parser.add_argument("--tokens", type=int, default=100, help="tokens per stream")
    parser.add_argument("--rate", type=float, default=50.0, help="tokens per second per stream")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a session may take")
    parser.add_argument("--stream-threads", type=int, default=0,
                        help="size of the server loop's default executor (0: asyncio's default, min(32, cpus + 4))")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--users", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--ready", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return 0

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = Path(tempfile.mkdtemp(prefix="stream-relay-"))
    ready_file = workdir / "ready.json"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tutor.settings", "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
           "TUTOR_LLM": "paced", "TUTOR_LLM_URL": "", "TUTOR_LLM_PATH": "", "TUTOR_LLM_MODEL": "",
           "TUTOR_RATELIMIT_GENERATIONS": "100000", "REDIS_URL": "", "DJANGO_ALLOWED_HOSTS": "127.0.0.1"}
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--port", str(port), "--users", str(sum(args.sessions)),
                               "--tokens", str(args.tokens), "--rate", str(args.rate), "--ready", str(ready_file),
                               "--stream-threads", str(args.stream_threads)],
                              env=env, cwd=REPO)
    try:
        deadline = time.monotonic() + 300
        while not ready_file.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not start (see its output above)")
            time.sleep(0.2)
        return asyncio.run(run_levels(args, port, json.loads(ready_file.read_text())))
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    raise SystemExit(main())
