"""Load: simulated students drive the real stack through the browser's own calls, ramping up concurrency.

    . .venv/bin/activate && nice python benchmarks/load.py --levels 25,50,100,200,300,400 --stage-s 30 --profile-at 50

The stack is started here, on loopback only: a throwaway PostgreSQL cluster (initdb under /tmp), Redis (a
database number of the local server, or --redis-port to start one), the ASGI server (uvicorn, --workers
processes) and a Celery worker. Each student logs in (GET + POST /accounts/login/), opens the session socket,
commits a guess, receives the streamed explanation (tokens delivered are counted against tokens sent), starts
practice, answers (right 75% of the time), asks for the next item, and every fifth answer also syncs through
the offline batch API (`POST /api/learn/<course>/answers`, recorded by the Celery worker), and every
--ta-every-th answer asks the TA-bot a question over its socket (`ws/learn/<course>/ask/`). Think time between
actions is uniform in --think. Per concurrency level it prints p50/p95/p99 of the client round trip and of
the server-side time (the `server-timing` comment the consumer adds when a message asks for it; API: the
Server-Timing header), errors and throughput, and stops ramping once the answer round trip p99 passes 1 s.
--profile-at N samples one server process with py-spy during level N and prints where the time goes. By default a
level's figures include its new students' arrival (logins, page loads, placement); --warmup-s S measures each level
only once they have arrived (steady state at N students) and reports the arrival window on its own.

Bounded: every level lasts --stage-s seconds, every wait has a timeout, nothing leaves 127.0.0.1.
The pieces (`ThrowawayPostgres`, `Stack`, `Student`) are reused by benchmarks/chaos.py and tests/chaos/.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import html
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PASSWORD = "load-test-password-1"
PG_BIN = Path("/usr/lib/postgresql") if Path("/usr/lib/postgresql").is_dir() else None
_PIECES = re.compile(r"\S+\s*|\s+")  # the authored backend's chunking (inference/authored.py)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_tool(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}")) if PG_BIN else []
    return str(found[-1]) if found else shutil.which(name) or name


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class ThrowawayPostgres:
    """A PostgreSQL cluster of our own under /tmp, on its own port, that we may stop and restart at will."""

    def __init__(self, port: int | None = None, statements: bool = False, settings: list[str] | None = None) -> None:
        self.port = port or free_port()
        self.statements = statements  # load pg_stat_statements: where PostgreSQL's time goes, per statement
        self.settings = settings or []  # extra postgresql.conf lines, "name = value"
        self.dir = Path(tempfile.mkdtemp(prefix=f"tutor-pg-{self.port}-"))
        os.chmod(self.dir, 0o777)
        self.data = self.dir / "data"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/tutor"

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        subprocess.run(_as_postgres([_pg_tool("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                                     "--no-sync"]), check=True, capture_output=True, timeout=120)
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.dir}'\n"
                       "max_connections = 300\nshared_buffers = 128MB\n")
            conf.writelines(f"{line}\n" for line in self.settings)
            if self.statements:
                conf.write("shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track_planning = on\n")
        self.start()
        subprocess.run(_as_postgres([_pg_tool("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                                     "tutor"]), check=True, capture_output=True, timeout=60)
        if self.statements:
            self.sql("CREATE EXTENSION pg_stat_statements")

    def sql(self, query: str) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(query)
            return cursor.fetchall() if cursor.description else []

    def statements_report(self, actions: float, top: int = 14) -> None:
        """PostgreSQL's own time per statement since the last `statements_reset` (planning + execution, as
        pg_stat_statements measures it), per student action."""
        rows = self.sql("SELECT calls, total_plan_time, total_exec_time, query FROM pg_stat_statements "
                        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'tutor') "
                        "ORDER BY total_plan_time + total_exec_time DESC")
        total = sum(plan + exe for _, plan, exe, _ in rows) or 1.0
        print(f"\nPostgreSQL, per statement (pg_stat_statements): {total / max(1, actions):.2f} ms of planning and "
              f"execution per action, {sum(r[0] for r in rows) / max(1, actions):.1f} statements per action")
        print(f"{'share':>6} {'calls/action':>12} {'plan ms':>8} {'exec ms':>8}  statement")
        for calls, plan, exe, query in rows[:top]:
            text = " ".join(query.split())
            print(f"{100 * (plan + exe) / total:5.1f}% {calls / max(1, actions):12.2f} {plan / calls:8.3f} "
                  f"{exe / calls:8.3f}  {text[:110]}")

    def statements_reset(self) -> None:
        self.sql("SELECT pg_stat_statements_reset()")

    def start(self) -> None:
        subprocess.run(_as_postgres([_pg_tool("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-w",
                                     "-t", "60", "start"]), check=True, capture_output=True, timeout=90)

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(_as_postgres([_pg_tool("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60",
                                     "stop"]), capture_output=True, timeout=90)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Stack:
    """The ASGI server and Celery worker(s) as separate processes, configured by environment like production."""

    database_url: str
    redis_url: str
    workers: int = 2
    server: str = "uvicorn"
    extra_env: dict[str, str] = field(default_factory=dict)
    ws_deflate: bool = False  # as deployed (Dockerfile); uvicorn's own default compresses every websocket frame
    port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen] = field(default_factory=list)
    celery: list[subprocess.Popen] = field(default_factory=list)
    logdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tutor-stack-")))

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TUTOR_", "DATABASE_", "REDIS_"))}
        env.update({"DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url, "TUTOR_LOG_LEVEL": "WARNING",
                    "DJANGO_SETTINGS_MODULE": "tutor.settings", "PYTHONPATH": str(REPO)})
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        log = open(self.logdir / "server.log", "ab")
        if self.server == "uvicorn":
            cmd = [str(BIN / "uvicorn"), "tutor.asgi:application", "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", str(self.workers), "--log-level", "warning", "--no-access-log",
                   "--timeout-graceful-shutdown", "3", "--ws-per-message-deflate", str(self.ws_deflate).lower()]
        else:
            cmd = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(self.port), "tutor.asgi:application"]
        self.processes.append(subprocess.Popen(cmd, cwd=REPO, env=self.env(), stdout=log, stderr=log,
                                               start_new_session=True))
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/accounts/login/", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        log = (self.logdir / "server.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"server did not come up; its log ends:\n{log}")

    def start_worker(self, name: str = "w") -> subprocess.Popen:
        log = open(self.logdir / f"celery-{name}.log", "ab")
        proc = subprocess.Popen([str(BIN / "celery"), "-A", "tutor", "worker", "-P", "solo", "-n", f"{name}@%h",
                                 "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                                cwd=REPO, env=self.env(), stdout=log, stderr=log, start_new_session=True)
        self.celery.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.processes + self.celery:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes + self.celery:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if os.environ.get("BENCH_KEEP_LOGS"):
            print(f"server and worker logs kept in {self.logdir}", file=sys.stderr)
        else:
            shutil.rmtree(self.logdir, ignore_errors=True)


def django_setup(database_url: str, redis_url: str) -> None:
    """Point this process's Django at the stack's database (for preparing data and checking results)."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = redis_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def prepare(*, students: int, course_dir: Path | None = None, prefix: str = "s", offline: bool = False,
            ta_index: bool = False) -> dict:
    """Migrate, import the course, create and enrol the students. Returns what the simulated students need.

    `ta_index`: announce the import as `manage.py import_course` does, so that the TA-bot's index is queued for the
    Celery worker (`ta_index_wait` waits for it).

    `offline`: each student also gets a partner account, `<name>-offline`, an offline client's student who is not
    online, and the student's batches go out under it (`Student._api_sync`). Sent from the online student's own
    account, a batch of answers to the item just answered that was still queued when that item came back on
    screen was recorded as the answer to it (`attempt_ingest`, by design), and the student's own answer was
    then refused ("no longer on screen"): no real client answers the same item online and offline at once."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command

    from courses.format import load_course
    from courses.models import Item
    from courses.services import course_import
    from tutor import services

    call_command("migrate", verbosity=0)
    course = course_import(spec=load_course(course_dir or REPO / "courses" / "demo" / "derivatives"))
    if ta_index:
        from courses.signals import course_imported

        course_imported.send(sender=prepare, course=course)
    users = get_user_model()
    hashed = make_password(PASSWORD)  # one hash for all: creating hundreds of PBKDF2 hashes is not the test
    existing = set(users.objects.filter(username__startswith=f"{prefix}-").values_list("username", flat=True))
    names = [f"{prefix}-{i:04d}" for i in range(students)]
    names += [f"{name}-offline" for name in names] if offline else []
    users.objects.bulk_create([users(username=name, password=hashed) for name in names if name not in existing])
    for user in users.objects.filter(username__startswith=f"{prefix}-"):
        services.enrollment_create(user=user, course=course)
    # Every tenth student logs in with a password (measured); the rest arrive with a session from earlier:
    # PBKDF2 at Django's default cost is ~0.5 s of CPU per login, which would make the ramp a login storm.
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    sessions = {}
    online = [u for u in users.objects.filter(username__startswith=f"{prefix}-").order_by("username")
              if not u.username.endswith("-offline")]
    offline_devices = users.objects.filter(username__startswith=f"{prefix}-", username__endswith="-offline")
    for i, user in [*enumerate(online), *((1, u) for u in offline_devices)]:
        if i % 10:
            store = SessionStore()
            store[SESSION_KEY], store[BACKEND_SESSION_KEY] = str(user.pk), "django.contrib.auth.backends.ModelBackend"
            store[HASH_SESSION_KEY] = user.get_session_auth_hash()
            store.create()
            sessions[user.username] = store.session_key
    answers = {}
    for item in Item.objects.filter(concept__course=course):
        answers[item.pk] = item.answer if item.kind != "multiple_choice" else str(item.answer)
    explanations = {c.slug: c.explanation or c.lesson for c in course.concepts.all()}
    titles = {c.title: c.slug for c in course.concepts.all()}
    return {"course": course.slug, "answers": answers, "explanations": explanations, "titles": titles,
            "usernames": [f"{prefix}-{i:04d}" for i in range(students)], "sessions": sessions,
            "sent": set()}  # client_ids of every answer sent (socket and API), to count losses afterwards


def ta_index_wait(course_slug: str, timeout_s: float = 600) -> float:
    """Seconds until the Celery worker has stored the course's TA index (the import queued it)."""
    from tutor.models import TAIndex

    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        state = TAIndex.objects.filter(course__slug=course_slug).first()
        if state is not None and state.status == TAIndex.Status.DONE:
            return time.monotonic() - started
        if state is not None and state.status == TAIndex.Status.FAILED:
            raise RuntimeError(f"the TA index failed to build: {state.message}")
        time.sleep(1)
    raise RuntimeError(f"the TA index was not built within {timeout_s:.0f} s")


# --- the simulated student ---------------------------------------------------------------------------

TA_QUESTIONS = ["What does the derivative mean?", "Why is the limit of a sum the sum of the limits?",
                "How do I use the power rule?", "What is a secant line?", "Is every continuous function smooth?"]
_PHASE = re.compile(r'data-phase="(\w+)"')
_STEP = re.compile(r'name="step" value="([0-9a-f-]{36})"')
_ITEM = re.compile(r'name="item" value="(\d+)"')
_TIMING = re.compile(r"server-timing: app;dur=([\d.]+)")
_TITLE = re.compile(r"<h1[^>]*>(.*?)</h1>", re.S)
_STREAMED = re.compile(r'<div id="explanation-stream" hx-swap-oob="beforeend">(.*?)</div>', re.S)


def _common_prefix(got: list[str], expected: list[str]) -> int:
    return next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), min(len(got), len(expected)))


class Stats:
    def __init__(self) -> None:
        self.rtt: dict[str, list[float]] = collections.defaultdict(list)  # ms, client round trip
        self.server: dict[str, list[float]] = collections.defaultdict(list)  # ms, as the server measured
        self.errors: collections.Counter = collections.Counter()
        self.tokens_sent = 0
        self.tokens_delivered = 0
        self.streams_mismatched = 0
        self.stream_frames = 0  # websocket frames that carried the streamed explanations
        self.finished = 0  # students who completed the course and left

    def add(self, step: str, rtt_s: float, server_ms: float | None = None) -> None:
        self.rtt[step].append(rtt_s * 1000)
        if server_ms is not None:
            self.server[step].append(server_ms)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class StudentError(Exception):
    pass


class StudentFinished(Exception):
    """The student finished the course (the tutor shows "Course complete"): they leave; not an error."""


def _text(frame: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", frame)).strip()


class Student:
    """One browser: an HTTP client with the session cookie, and the session websocket."""

    def __init__(self, base: str, username: str, info: dict, stats_for, think: tuple[float, float],
                 rng: random.Random, api_every: int = 5, ta_every: int = 0) -> None:
        self.base, self.username, self.info = base, username, info
        self.stats_for = stats_for  # () -> the Stats of the current level
        self.think, self.rng, self.api_every = think, rng, api_every
        self.ws = None
        self.http = None
        self.csrf = ""
        self.answered = 0
        self.last_frame = ""
        self.last_sent = ""  # the action of the last message on the socket
        self.stream_timeout = 120.0  # seconds to wait for a whole explanation
        self.ta_ws = None
        self.ta_every = ta_every  # every n-th answer, a question to the TA-bot (0 = never)
        self.offline_http = None  # the partner account's client, when `prepare(offline=True)` made one
        self.offline_csrf = ""
        self.arrived = False  # logged in, page loaded, placement over: what --warmup-s waits for
        self.answer_srv_ms: float | None = None  # the server time of the answer whose "next" is still to come

    async def login(self, session_key: str | None = None) -> None:
        import httpx

        self.http = httpx.AsyncClient(base_url=self.base, timeout=30, follow_redirects=False)
        if session_key:  # already logged in (a cookie from an earlier visit)
            self.http.cookies.set("sessionid", session_key, domain="127.0.0.1")
            page = await self.http.get("/")
            self.csrf = page.cookies.get("csrftoken") or self.http.cookies.get("csrftoken", "")
            if page.status_code != 200:
                raise StudentError(f"home {page.status_code}")
            return
        started = time.perf_counter()
        page = await self.http.get("/accounts/login/")
        self.csrf = page.cookies.get("csrftoken") or self.http.cookies.get("csrftoken", "")
        response = await self.http.post("/accounts/login/", data={
            "username": self.username, "password": PASSWORD, "csrfmiddlewaretoken": self.csrf},
            headers={"Referer": self.base + "/accounts/login/"})
        if response.status_code != 302:
            raise StudentError(f"login {response.status_code}")
        self.csrf = self.http.cookies.get("csrftoken", self.csrf)
        self.stats_for().add("login", time.perf_counter() - started)

    async def connect(self) -> str:
        import websockets

        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        started = time.perf_counter()
        self.ws = await websockets.connect(
            self.base.replace("http", "ws", 1) + f"/ws/learn/{self.info['course']}/",
            additional_headers={"Cookie": cookie, "Origin": self.base}, open_timeout=30, max_size=2**22)
        frame = await self.recv(lambda f: "data-phase" in f)
        self.stats_for().add("connect", time.perf_counter() - started)
        return frame

    async def recv(self, until, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        passed: list[str] = []  # frames that came meanwhile and were not the one awaited
        while True:
            left = deadline - time.monotonic()
            if left <= 0:  # what was asked last, and what came meanwhile, say where it stalled
                raise StudentError(f"timeout waiting {timeout:g} s for a frame after {self.last_sent!r}; "
                                   f"{len(passed)} other frames came, the last: {_text(passed[-1])[:80]!r}")
            try:
                frame = await asyncio.wait_for(self.ws.recv(), left)
            except TimeoutError:
                raise StudentError(f"no frame at all for {timeout:g} s after {self.last_sent!r}") from None
            passed.append(frame)
            if 'id="notice"' in frame and "data-phase" not in frame and "message" not in frame:
                pass
            if until(frame):
                self.last_frame = frame
                return frame

    async def send(self, message: dict) -> None:
        # server_timing: the consumer appends its own time of the action to the stage it answers with
        self.last_sent = message.get("action", "?")
        await self.ws.send(json.dumps({**message, "server_timing": 1}))

    async def pause(self) -> None:
        await asyncio.sleep(self.rng.uniform(*self.think))

    async def step(self, stage: str) -> str:
        """Act on the stage on screen; return the next stage frame."""
        found = _PHASE.search(stage)
        phase = found.group(1) if found else "explain"  # the explanation-done fragment carries no phase
        if phase == "pain":
            await self.pause()
            return await self._guess_and_stream(stage)
        if phase == "explain":
            if 'id="start-practice"' not in stage:  # reconnected mid-stream: the server streams again
                stage = await self.recv(lambda f: 'id="start-practice"' in f, timeout=self.stream_timeout)
            await self.pause()
            return await self._timed({"action": "practice", "step": _STEP.search(stage).group(1)}, "practice")
        if phase in ("practice", "placement"):  # placement: the diagnostic questions at enrolment
            await self.pause()
            return await self._answer(stage, "answer" if phase == "practice" else "placement_answer")
        if phase == "feedback":
            await self.pause()
            return await self._timed({"action": "next", "step": _STEP.search(stage).group(1)}, "next")
        if phase == "teach":  # the teach-back after a mastered concept: this load test's students say "not now"
            await self.pause()
            return await self._timed({"action": "teach_skip"}, "teach_skip")
        if phase == "done":  # since the placement and learner-model updates, a fast student can finish in a run
            raise StudentFinished()
        raise StudentError(f"phase {phase}")

    async def _timed(self, message: dict, name: str) -> str:
        started = time.perf_counter()
        await self.send(message)
        frame = await self.recv(lambda f: "data-phase" in f or 'id="notice"' in f)
        timing = _TIMING.search(frame)
        server_ms = float(timing.group(1)) if timing else None
        self.stats_for().add(name, time.perf_counter() - started, server_ms)
        if name == "answer":
            self.answer_srv_ms = server_ms
        elif name == "next" and self.answer_srv_ms is not None and server_ms is not None:
            # this student's answer and the next item it led to: the server's part of "answer -> next item"
            self.stats_for().add("answer_next", 0.0, self.answer_srv_ms + server_ms)
            self.answer_srv_ms = None
        if "data-phase" not in frame:
            raise StudentError(f"{name}: notice instead of a stage: " + re.sub(r"<[^>]+>", "", frame).strip()[:60])
        return frame

    async def _guess_and_stream(self, stage: str) -> str:
        title = _TITLE.search(stage).group(1).strip()
        slug = self.info["titles"].get(title)
        started = time.perf_counter()
        await self.send({"action": "guess", "client_id": str(uuid.uuid4()), "guess": "I think it grows"})
        first = None
        parts: list[str] = []
        frame = ""
        while 'id="start-practice"' not in frame:
            frame = await self.recv(lambda f: True, timeout=self.stream_timeout)
            if 'id="explanation-stream"' in frame and "hx-swap-oob" in frame:
                if first is None:
                    first = time.perf_counter()
                parts.append(frame)
        stats = self.stats_for()
        stats.add("stream_first_token", (first or time.perf_counter()) - started)
        stats.add("stream_complete", time.perf_counter() - started)
        stats.stream_frames += len(parts)
        authored = self.info["explanations"].get(slug) if slug else None
        if authored is not None:
            # The server sends what the backend yielded since its last frame in one frame (TUTOR_STREAM_FLUSH_S):
            # a token is delivered when its text arrived, in order, with nothing missing or added.
            streamed = html.unescape("".join(m for f in parts for m in _STREAMED.findall(f)))
            expected = _PIECES.findall(authored)
            stats.tokens_sent += len(expected)
            stats.tokens_delivered += len(expected) if streamed == authored else _common_prefix(
                _PIECES.findall(streamed), expected)
            if streamed != authored:
                stats.streams_mismatched += 1
        return frame

    async def _answer(self, stage: str, name: str) -> str:
        item = int(_ITEM.search(stage).group(1))
        key = self.info["answers"].get(item)
        choices = re.findall(r'type="radio" name="answer" value="([^"]*)"', stage)
        wrong = next((c for c in choices if c != str(key)), "0") if choices else "0"
        answer = str(key) if key is not None and self.rng.random() < 0.75 else html.unescape(wrong)
        client_id = str(uuid.uuid4())
        self.info["sent"].add(client_id)
        frame = await self._timed({"action": "answer", "client_id": client_id, "item": str(item),
                                   "answer": answer}, name)
        self.answered += 1
        if self.api_every and self.answered % self.api_every == 0:
            await self._api_sync(item, answer)
        if self.ta_every and name == "answer" and self.answered % self.ta_every == 0:
            await self.ask_ta()
        return frame

    async def ask_ta(self) -> None:
        """A question to the TA-bot over its own socket: time to the first streamed piece and to the card."""
        import websockets

        if self.ta_ws is None:
            cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
            self.ta_ws = await websockets.connect(
                self.base.replace("http", "ws", 1) + f"/ws/learn/{self.info['course']}/ask/",
                additional_headers={"Cookie": cookie, "Origin": self.base}, open_timeout=30, max_size=2**22)
        started = time.perf_counter()
        await self.ta_ws.send(json.dumps({"action": "ask", "question": self.rng.choice(TA_QUESTIONS)}))
        first = None
        deadline = time.monotonic() + self.stream_timeout
        while True:
            frame = await asyncio.wait_for(self.ta_ws.recv(), max(0.1, deadline - time.monotonic()))
            if 'class="notice"' in frame:
                raise StudentError("TA notice: " + re.sub(r"<[^>]+>", "", frame).strip()[:60])
            if 'id="ta-stream"' in frame and "hx-swap-oob" in frame and first is None:
                first = time.perf_counter()
            if 'id="ta-log"' in frame:
                break
        stats = self.stats_for()
        stats.add("ta_first_token", (first or time.perf_counter()) - started)
        stats.add("ta_complete", time.perf_counter() - started)

    async def _api_sync(self, item: int, answer: str) -> None:
        """An offline client's batch: two answers to the item just seen, through the API and Celery; sent under
        the student's offline partner account when there is one (`prepare(offline=True)`)."""
        import httpx

        http, csrf = self.http, self.csrf
        partner = self.info["sessions"].get(f"{self.username}-offline")
        if partner is not None:
            if self.offline_http is None:
                self.offline_http = httpx.AsyncClient(base_url=self.base, timeout=30, follow_redirects=False)
                self.offline_http.cookies.set("sessionid", partner, domain="127.0.0.1")
                page = await self.offline_http.get("/")
                self.offline_csrf = page.cookies.get("csrftoken") or self.offline_http.cookies.get("csrftoken", "")
            http, csrf = self.offline_http, self.offline_csrf
        batch = [{"client_id": str(uuid.uuid4()), "item": item, "answer": answer} for _ in range(2)]
        for entry in batch:
            self.info["sent"].add(entry["client_id"])
        started = time.perf_counter()
        response = await http.post(f"/api/learn/{self.info['course']}/answers", content=json.dumps(
            {"answers": batch}), headers={"Content-Type": "application/json", "X-CSRFToken": csrf,
                                          "Referer": self.base + "/"})
        timing = re.search(r"dur=([\d.]+)", response.headers.get("Server-Timing", ""))
        self.stats_for().add("api_batch", time.perf_counter() - started, float(timing.group(1)) if timing else None)
        if response.status_code != 202:
            raise StudentError(f"api {response.status_code}")

    async def close(self) -> None:
        if self.ta_ws is not None:
            await self.ta_ws.close()
        if self.ws is not None:
            await self.ws.close()
        if self.http is not None:
            await self.http.aclose()
        if self.offline_http is not None:
            await self.offline_http.aclose()


async def run_student(student: Student, stop: asyncio.Event) -> None:
    try:
        await student.login(student.info["sessions"].get(student.username))
        stage = await student.connect()
        while not stop.is_set():
            student.arrived = student.arrived or 'data-phase="placement"' not in stage
            stage = await student.step(stage)
    except StudentFinished:
        student.stats_for().finished += 1
    except Exception as exc:  # any failure (timeout, closed socket, HTTP error) is one error; the run goes on
        student.stats_for().errors[type(exc).__name__ + ": " + str(exc)[:60]] += 1
    finally:
        await student.close()


STEPS = ("login", "connect", "placement_answer", "stream_first_token", "stream_complete", "practice", "answer", "next",
         "api_batch", "ta_first_token", "ta_complete")


def report(level: int, seconds: float, stats: Stats, window: str = "") -> dict:
    print(f"\n--- {level} concurrent students, {seconds:.0f} s{window} ---")
    print(f"{'step':<20}{'n':>7}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'srv p50':>10}{'srv p95':>10}{'srv p99':>10}")
    actions = 0
    for step in STEPS:
        rtt, srv = stats.rtt.get(step, []), stats.server.get(step, [])
        actions += len(rtt) if step in ("placement_answer", "practice", "answer", "next", "api_batch") else 0
        if not rtt:
            continue
        cells = [f"{pct(rtt, q):10.1f}" for q in (50, 95, 99)]
        cells += [f"{pct(srv, q):10.1f}" if srv else f"{'-':>10}" for q in (50, 95, 99)]
        print(f"{step:<20}{len(rtt):>7}" + "".join(cells))
    cycle = stats.server.get("answer_next", [])  # each: a student's answer + the next item it asked for then
    out = {"level": level, "answers_per_s": len(stats.rtt.get("answer", [])) / seconds,
           "actions_per_s": actions / seconds, "errors": sum(stats.errors.values()),
           "answer_p99": pct(stats.rtt.get("answer", []), 99),
           "answer_srv_p99": pct(stats.server.get("answer", []), 99),
           "next_srv_p99": pct(stats.server.get("next", []), 99),
           "placement_srv_p99": pct(stats.server.get("placement_answer", []), 99),
           "answer_next_srv_p99": pct(cycle, 99) if cycle else float("nan"),
           "tokens_sent": stats.tokens_sent, "tokens_delivered": stats.tokens_delivered, "finished": stats.finished}
    print(f"throughput: {out['answers_per_s']:.1f} answers/s, {out['actions_per_s']:.1f} actions/s; "
          f"errors: {out['errors']} {dict(stats.errors) if stats.errors else ''}; "
          f"students who finished the course and left: {stats.finished}")
    print(f"server-side answer+next p99: {out['answer_next_srv_p99']:.1f} ms; streamed tokens sent "
          f"{stats.tokens_sent}, delivered {stats.tokens_delivered}, streams with a gap {stats.streams_mismatched}, "
          f"in {stats.stream_frames} frames")
    return out


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_tree_seconds(roots: list[int]) -> float:
    """CPU seconds (user + system) of these processes and every descendant, including children already reaped
    (a PostgreSQL backend that exited is in its postmaster's cutime)."""
    stats: dict[int, tuple[int, float, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # the process ended while we looked
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _CLK_TCK,
                                  (int(fields[13]) + int(fields[14])) / _CLK_TCK)
    children: dict[int, list[int]] = collections.defaultdict(list)
    for pid, (ppid, _, _) in stats.items():
        children[ppid].append(pid)
    total, todo = 0.0, [pid for pid in roots if pid in stats]
    while todo:
        pid = todo.pop()
        total += stats[pid][1] + stats[pid][2]
        todo.extend(children[pid])
    return total


def cpu_by_part(stack: Stack, pg: ThrowawayPostgres) -> dict[str, float]:
    """CPU seconds used so far by each part of the stack, and by this process (the simulated students)."""
    postmaster = (pg.data / "postmaster.pid").read_text().split()[0]
    own = os.times()
    parts = {"server": _cpu_tree_seconds([p.pid for p in stack.processes]),
             "postgres": _cpu_tree_seconds([int(postmaster)]),
             "celery": _cpu_tree_seconds([p.pid for p in stack.celery]),
             "students": own.user + own.system}
    # Everything else the machine ran (other people's jobs on a shared machine): all busy CPU less ours.
    jiffies = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = (sum(jiffies[:8]) - jiffies[3] - jiffies[4]) / _CLK_TCK  # all but idle and iowait (guest is in user)
    return {**parts, "other": busy - sum(parts.values())}


IDLE_LEAVES = ("select (", "wait (", "_worker (", "sleep", "AuthoredBackend.stream (", "get (queue.py")


def profile_summary(raw: Path, top: int = 22) -> None:
    """py-spy's collapsed stacks -> where the busy samples are: our functions and the libraries they call.

    Samples whose leaf is waiting (the event loop's select, an idle pool thread, the authored backend's pacing
    sleep) are counted apart, so that the shares are of the time the server was doing something."""
    inclusive: collections.Counter = collections.Counter()
    leaf: collections.Counter = collections.Counter()
    total = busy = 0
    # One record per stack, "frame;frame;... count"; a process frame quotes its command line, which may itself
    # span lines (py-spy 0.4, --subprocesses), so a record ends only at a line that ends in a count.
    records, pending = [], ""
    for line in raw.read_text().splitlines():
        pending += line
        if re.search(r" \d+$", pending):
            records.append(pending)
            pending = ""
        else:
            pending += "\n"
    for record in records:
        stack, _, count = record.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        if any(marker in frames[-1] for marker in IDLE_LEAVES) and "psycopg" not in frames[-1]:
            continue
        busy += n
        for frame in set(frames):
            name, _, where = frame.partition(" (")
            path = where.split(":")[0]
            path = path.split("site-packages/")[-1].replace(str(REPO) + "/", "")
            if path.startswith(("tutor/", "courses/", "learner_model/", "inference/", "django/db/backends/base",
                                "django/template/loader", "psycopg/connection", "sympy/parsing", "channels/db")):
                inclusive[f"{name} ({path})"] += n
        name, _, where = frames[-1].partition(" (")
        leaf[f"{name} ({where.split(':')[0].split('/')[-1]})"] += n
    if not busy:
        print("\nprofile: no busy samples")
        return
    print(f"\nprofile: {total} samples of the server's worker processes (py-spy, 50 Hz); busy {busy} "
          f"({100 * busy / total:.0f}%), the rest waiting in the event loop, idle threads or the stream's pacing")
    print("busy samples with the function on the stack (inclusive):")
    for name, n in inclusive.most_common(top):
        print(f"  {100 * n / busy:5.1f}%  {name}")
    print("busy samples by leaf frame (self):")
    for name, n in leaf.most_common(10):
        print(f"  {100 * n / busy:5.1f}%  {name}")


def service_floor(info: dict, students: int = 4, top: int = 25) -> None:
    """The hot path with nobody else on the server: each action's service + rendering, in this process, on the
    same PostgreSQL, under cProfile. What one student costs; under load, queueing comes on top."""
    import cProfile
    import pstats

    from django.contrib.auth import get_user_model
    from django.template.loader import render_to_string

    from courses.models import Course
    from tutor import services
    from tutor.selectors import stage_context

    course = Course.objects.get(slug=info["course"])
    times: dict[str, list[float]] = collections.defaultdict(list)
    profile = cProfile.Profile()

    queries: dict[str, list[int]] = collections.defaultdict(list)

    def timed(name: str, fn):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        if profiling:  # the second half of the students: under cProfile, not timed (the profiler slows calls)
            profile.enable()
            result = fn()
            profile.disable()
            return result
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            result = fn()
            times[name].append((time.perf_counter() - started) * 1000)
        queries[name].append(len(captured))
        return result

    def render(user):
        session = services.session_get(user=user, course=course)
        return render_to_string("tutor/partials/stage.html", stage_context(session=session))

    users = list(get_user_model().objects.filter(username__in=info["usernames"][-2 * students:]))
    for index, user in enumerate(users):
        profiling = index >= students
        for _ in range(4):
            session = services.session_get(user=user, course=course)
            if session.phase != "placement":
                break
            timed("placement_answer", lambda s=session, u=user: services.attempt_record(
                user=u, course=course, client_id=uuid.uuid4(), item_id=s.item_id, answer=str(info["answers"][s.item_id])))
            timed("render_stage", lambda u=user: render(u))
        services.placement_skip(user=user, course=course)
        for _ in range(6):
            session = services.session_get(user=user, course=course)
            if session.phase == "pain":
                timed("guess", lambda u=user: services.guess_record(user=u, course=course, client_id=uuid.uuid4(),
                                                                   text="g"))
                services.explanation_store(user=user, course=course, concept_id=session.concept_id, text="x")
                timed("practice", lambda u=user: services.practice_start(user=u, course=course))
                session = services.session_get(user=user, course=course)
            if session.phase != "practice":
                break
            outcome = timed("answer", lambda s=session, u=user: services.attempt_record(
                user=u, course=course, client_id=uuid.uuid4(), item_id=s.item_id, answer=str(info["answers"][s.item_id])))
            # As the socket does: the feedback stage from the session the answer returned, not read again.
            timed("render_feedback", lambda o=outcome: render_to_string("tutor/partials/stage.html",
                                                                        stage_context(session=o.session)))
            timed("next", lambda u=user: services.session_advance(user=u, course=course))
            timed("render_stage", lambda u=user: render(u))
    print(f"\nservice floor: {students} students one at a time, in-process, same PostgreSQL (no server, no queue); "
          f"{students} more under cProfile for the hot path")
    for name, values in times.items():
        print(f"  {name:<18} n={len(values):3}  p50 {pct(values, 50):6.1f} ms  p95 {pct(values, 95):6.1f} ms  "
              f"SQL queries p50 {pct(queries[name], 50):.0f}")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(150)
    lines = [line for line in out.getvalue().splitlines() if re.search(r"(tutor|courses|learner_model)/", line)]
    print("  hot path, cumulative (ncalls tottime percall cumtime percall function):")
    for line in lines[:top]:
        print("   ", line.replace(str(REPO) + "/", ""))


async def ramp(stack: Stack, info: dict, levels: list[int], stage_s: float, think: tuple[float, float],
               seed: int, profile_at: int | None, stop_after_p99_ms: float = 1000, ta_every: int = 4,
               cpu=None, profile_gil: bool = False, warmup_s: float = 0,
               arrivals: list[dict] | None = None, statements: ThrowawayPostgres | None = None,
               statements_at: int | None = None) -> list[dict]:
    """Each level: its new students arrive, then `stage_s` seconds are measured. With `warmup_s` > 0 the
    measurement starts only once the level's new students have arrived (logged in, page loaded, placement over;
    at least `warmup_s` after the level began, at most 3x that): steady state at `level` students. The arrival
    window is reported on its own and appended to `arrivals`. With 0 (the default) the level's arrivals fall
    inside its measured window, as before."""
    rng = random.Random(seed)
    stop = asyncio.Event()
    tasks: list[asyncio.Task] = []
    students: list[Student] = []
    current = {"stats": Stats()}
    results = []
    usernames = iter(info["usernames"])
    for level in levels:
        current["stats"] = Stats()
        arriving_since = time.monotonic()
        newcomers = len(tasks)
        while len(tasks) < level:
            student = Student(stack.base, next(usernames), info, lambda: current["stats"], think,
                              random.Random(rng.random()), ta_every=ta_every)
            students.append(student)
            tasks.append(asyncio.create_task(run_student(student, stop)))
            await asyncio.sleep(min(0.02, stage_s / 10 / max(1, level)))  # ramp gently within the first tenth
        if warmup_s > 0:
            await asyncio.sleep(max(0.0, warmup_s - (time.monotonic() - arriving_since)))
            pending = [(s, t) for s, t in zip(students[newcomers:], tasks[newcomers:], strict=True)]
            while time.monotonic() - arriving_since < 3 * warmup_s and \
                    not all(s.arrived or t.done() for s, t in pending):
                await asyncio.sleep(0.5)
            late = sum(1 for s, t in pending if not (s.arrived or t.done()))
            out = report(level, time.monotonic() - arriving_since, current["stats"],
                         f" of arrival ({len(pending)} new students; {late} still in placement at its end): "
                         "not in the level's figures")
            out["late"] = late
            if arrivals is not None:
                arrivals.append(out)
            current["stats"] = Stats()
        spy = None
        if profile_at == level:
            raw = stack.logdir / f"profile-{level}.txt"
            pid = stack.processes[0].pid  # uvicorn's supervisor; --subprocesses samples its workers
            spy = subprocess.Popen([str(BIN / "py-spy"), "record", "--subprocesses", "--pid", str(pid), "--duration",
                                    str(int(stage_s * 0.8)), "--rate", "50", "--format", "raw", "-o", str(raw),
                                    "--nonblocking", *(["--gil"] if profile_gil else [])],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if statements is not None and statements_at == level:
            statements.statements_reset()
        started = time.monotonic()
        cpu_before = cpu() if cpu else None
        await asyncio.sleep(stage_s)
        out = report(level, time.monotonic() - started, current["stats"])
        if cpu_before is not None:
            used = {part: seconds - cpu_before[part] for part, seconds in cpu().items()}
            elapsed = time.monotonic() - started
            actions = out["actions_per_s"] * elapsed
            print(f"CPU used over the level, s (of {os.cpu_count() * elapsed:.0f} core-seconds): " + ", ".join(
                f"{part} {seconds:.1f}" for part, seconds in used.items())
                + f"; server + PostgreSQL per action: {1000 * (used['server'] + used['postgres']) / max(1, actions):.1f} ms"
                + f"; machine load average {os.getloadavg()[0]:.1f}")
            out["cpu_ms_per_action"] = 1000 * (used["server"] + used["postgres"]) / max(1, actions)
            out["cpu_other_s"] = used["other"]
        results.append(out)
        if statements is not None and statements_at == level:
            statements.statements_report(out["actions_per_s"] * (time.monotonic() - started))
        if spy is not None:
            spy.wait(timeout=60)
            if raw.exists():
                profile_summary(raw)
                kept = Path(tempfile.gettempdir()) / f"tutor-load-profile-{level}.txt"
                shutil.copyfile(raw, kept)
                print(f"py-spy's collapsed stacks kept in {kept}")
        if stop_after_p99_ms and out["answer_p99"] > stop_after_p99_ms:
            print(f"\nanswer round-trip p99 {out['answer_p99']:.0f} ms > {stop_after_p99_ms:.0f} ms at {level} "
                  "students: stopping the ramp")
            break
    stop.set()
    _, pending = await asyncio.wait(tasks, timeout=60)
    for task in pending:
        task.cancel()
    return results


def main() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="25,50,100,200,300,400")
    parser.add_argument("--stage-s", type=float, default=30)
    parser.add_argument("--think", default="1.0,3.0", help="seconds between a student's actions, uniform")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument("--ws-deflate", action=argparse.BooleanOptionalAction, default=False,
                        help="uvicorn's per-message-deflate (uvicorn's own default); off by default, as the Dockerfile "
                             "and docker-compose.yml serve it")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--stream-delay-s", default="0.02")
    parser.add_argument("--stream-flush-s", default=None,
                        help="TUTOR_STREAM_FLUSH_S for the server: least seconds between two frames of a stream "
                             "(default: settings'; 0: a frame per batch the event loop sees)")
    parser.add_argument("--conn-max-age", default=None, help="DATABASE_CONN_MAX_AGE for the server (default: settings')")
    parser.add_argument("--db-threads", default=None,
                        help="TUTOR_DB_THREADS for the server: database threads per process (default: settings')")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for the server and worker processes (repeatable)")
    parser.add_argument("--profile-at", type=int, default=None,
                        help="py-spy one server process during this concurrency level")
    parser.add_argument("--pg-statements-at", type=int, default=None, metavar="LEVEL",
                        help="load pg_stat_statements and print PostgreSQL's time per statement at this level")
    parser.add_argument("--pg-setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a postgresql.conf setting of the throwaway cluster (e.g. synchronous_commit=off, to see "
                             "what waiting for the disk at commit costs); repeatable")
    parser.add_argument("--profile-gil", action="store_true",
                        help="profile only the thread holding the GIL: where the server's CPU goes, not its waits")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--ta-every", type=int, default=4, help="a TA-bot question every n-th answer (0 = none)")
    parser.add_argument("--floor", action="store_true", help="first time the hot path in-process, one student at a time")
    parser.add_argument("--offline-same-account", action="store_true",
                        help="send the offline batches under the online student's own account (the old harness: "
                             "a queued batch can answer the item back on screen, refusing the student's answer)")
    parser.add_argument("--keep-ramping", action="store_true",
                        help="go on to the last level even after the answer p99 passed 1 s")
    parser.add_argument("--warmup-s", type=float, default=0,
                        help="measure each level only after its new students have arrived (logged in, placed; "
                             "at least this long, at most 3x): steady state. 0 = measure from the level's start")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    think = tuple(float(x) for x in args.think.split(","))
    pg = ThrowawayPostgres(statements=args.pg_statements_at is not None,
                           settings=[setting.replace("=", " = ", 1) for setting in args.pg_setting])
    stack = None
    try:
        pg.init()
        django_setup(pg.url, args.redis_url)
        started = time.monotonic()
        info = prepare(students=max(levels), offline=not args.offline_same_account, ta_index=bool(args.ta_every))
        print(f"prepared {len(info['usernames'])} students in {time.monotonic() - started:.1f} s; course "
              f"{info['course']!r}, {len(info['answers'])} items")
        if args.floor:
            service_floor(info)
        # No per-student answer limit here: a simulated student answers faster than the production limit allows.
        stack = Stack(database_url=pg.url, redis_url=args.redis_url, workers=args.workers, server=args.server,
                      ws_deflate=args.ws_deflate,
                      extra_env={"TUTOR_STREAM_DELAY_S": args.stream_delay_s, "TUTOR_RATELIMIT_ANSWERS": "0",
                                 "TUTOR_RATELIMIT_TA_QUESTIONS": "0",
                                 "TUTOR_TA_PRELOAD": "1",  # as TUTOR_PRODUCTION=1 has it
                                 "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
                                 **({"DATABASE_CONN_MAX_AGE": args.conn_max_age} if args.conn_max_age else {}),
                                 **({"TUTOR_DB_THREADS": args.db_threads} if args.db_threads else {}),
                                 **({"TUTOR_STREAM_FLUSH_S": args.stream_flush_s} if args.stream_flush_s else {}),
                                 **dict(pair.split("=", 1) for pair in args.server_env)})
        stack.start()
        stack.start_worker()
        if args.ta_every:
            print(f"TA-bot index of the course stored by the Celery worker in {ta_index_wait(info['course']):.0f} s "
                  "(a course is imported before its class; until then questions are answered by BM25 alone)")
        print(f"stack: {args.server} x{args.workers}{' with ws deflate' if args.ws_deflate else ''} on {stack.base}, celery solo worker, PostgreSQL :{pg.port}, "
              f"{args.redis_url}; think {think[0]}-{think[1]} s; stream delay {args.stream_delay_s} s/word, flush {args.stream_flush_s or 'settings default'} s; "
              f"CONN_MAX_AGE {args.conn_max_age or 'settings default'}; "
              f"database threads per process {args.db_threads or 'settings default'}"
              + (f"; server environment {' '.join(args.server_env)}" if args.server_env else ""))
        arrivals: list[dict] = []
        results = asyncio.run(ramp(stack, info, levels, args.stage_s, think, args.seed,
                                   args.profile_at, 0 if args.keep_ramping else 1000, args.ta_every,
                                   cpu=lambda: cpu_by_part(stack, pg), profile_gil=args.profile_gil,
                                   warmup_s=args.warmup_s, arrivals=arrivals, statements=pg,
                                   statements_at=args.pg_statements_at))
        print("\nsummary: level, answers/s, answer RTT p99 ms, server answer p99, server next p99, "
              "server answer+next p99, errors, tokens sent/delivered, finished the course")
        for r in results:
            print(f"  {r['level']:>4} {r['answers_per_s']:7.1f} {r['answer_p99']:9.1f} {r['answer_srv_p99']:8.1f} "
                  f"{r['next_srv_p99']:8.1f} {r['answer_next_srv_p99']:8.1f} {r['errors']:>5} "
                  f"{r['tokens_sent']}/{r['tokens_delivered']} {r['finished']:>4}"
                  + (" (steady state, after the arrival below)" if args.warmup_s else ""))
        for r in arrivals:
            print(f"  {r['level']:>4} {r['answers_per_s']:7.1f} {r['answer_p99']:9.1f} {r['answer_srv_p99']:8.1f} "
                  f"{r['next_srv_p99']:8.1f} {r['answer_next_srv_p99']:8.1f} {r['errors']:>5} "
                  f"{r['tokens_sent']}/{r['tokens_delivered']} {r['finished']:>4} (arrival window; "
                  f"placement answer srv p99 {r['placement_srv_p99']:.1f}; {r['late']} still in placement)")
        broken = next((r["level"] for r in results if r["answer_p99"] > 1000), None)
        print(f"answer round trip p99 passes 1 s at: {broken or 'not reached'}")
        from tutor.models import Attempt

        deadline = time.monotonic() + 60  # let the worker finish the last batches
        while time.monotonic() < deadline:
            stored = set(str(c) for c in Attempt.objects.values_list("client_id", flat=True))
            if info["sent"] <= stored:
                break
            time.sleep(1)
        print(f"answers sent: {len(info['sent'])}, stored: {len(stored & info['sent'])}, "
              f"lost: {len(info['sent'] - stored)} (an answer cut off by the end of the run counts as lost)")
    finally:
        if stack is not None:
            stack.stop()
        pg.destroy()


if __name__ == "__main__":
    main()
