"""Faults: the real stack under load while something breaks; each scenario prints lost / duplicated / 5xx counts.

    . .venv/bin/activate && nice python benchmarks/chaos.py worker-kill --answers 10000 --kill-every 30
    . .venv/bin/activate && nice python benchmarks/chaos.py socket-drop --students 20
    . .venv/bin/activate && nice python benchmarks/chaos.py model-kill --students 20
    . .venv/bin/activate && nice python benchmarks/chaos.py ta-slow-embed --students 20 --load-s 60
    . .venv/bin/activate && nice python benchmarks/chaos.py pg-restart --students 30

worker-kill   answers sent as offline batches (POST /api/learn/<course>/answers) are recorded by two Celery
              workers, one of which is killed with SIGKILL every --kill-every seconds and started again.
              Each simulated client follows the API's resend protocol: it keeps every accepted answer until
              GET /api/learn/<course>/answers?ids=... lists it as stored, and re-POSTs (same client_id) those
              still missing once --resend-after-s (doubled each round, up to 4x) have passed since it last
              sent them and as long since any of its answers was newly listed as stored, at most
              --resend-rounds times; it gives up after --drain-s with none newly stored.
              Lost: an answer accepted (202) and never stored, neither before its client gave up nor once the
              queue has drained after that (a minute at most). Resent counts answers that were only late (the
              client cannot tell late from lost); resent_when_broker_empty, those resent while the broker held
              no message at all, whose original was certainly gone. --drop-queued N deletes N queued messages
              outright, so the resend path is exercised even in a run where kombu loses none.
              Applied twice: the knowledge state counted an answer more than once (its per-concept attempt
              counters exceed the stored attempts).
              The broker's visibility timeout is set to --visibility-s, deliberately: longer than any answer
              task, short enough that a message held by a killed worker comes back within the run.
socket-drop   students' sockets are cut (TCP abort) in the middle of the streamed explanation and right after
              sending an answer; they reconnect and resend what the page had queued (same client_id), as the
              htmx websocket extension does. The session must resume where it was; no answer lost.
model-kill    TUTOR_LLM=openai against a small OpenAI-compatible streaming server started here, killed with
              SIGKILL in the middle of students' streams and restarted. Every student must get a complete
              explanation (the model's start, then the course's authored text), no 5xx from any page.
ta-slow-embed every server process's embedding model takes --load-s longer to load (a shim under
              benchmarks/shims/, on the servers' PYTHONPATH only) while students load pages and ask the TA-bot
              over its socket. Each question must be answered at once, from the course by BM25 with its links
              (or declined), none with a 5xx; once a model has loaded, answers come from hybrid search again.
pg-restart    the throwaway PostgreSQL cluster is restarted while students answer and load pages. Requests
              in the gap fail cleanly (503 page, a notice on the socket, a retried task), the app recovers
              without a restart, and no acknowledged answer is lost.

Everything runs on 127.0.0.1 with its own PostgreSQL cluster under /tmp, and is bounded in time and count.
`run_*` functions return a dict of counts, so tests/chaos/ runs the same scenarios in a short form.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import (  # noqa: E402  (benchmarks/ is not a package)
    BIN,
    REPO,
    Stack,
    Student,
    StudentError,
    ThrowawayPostgres,
    django_setup,
    free_port,
    pct,
    prepare,
)

READABLE_KINDS = ("numeric", "multiple_choice", "symbolic", "short_text")


@contextmanager
def environment(*, students: int, redis_db: int, extra_env: dict[str, str] | None = None, workers: int = 1,
                celery_workers: int = 0):
    """A prepared database and a running stack; torn down (cluster deleted) on the way out."""
    pg = ThrowawayPostgres()
    redis_url = f"redis://127.0.0.1:6379/{redis_db}"
    stack = None
    try:
        pg.init()
        django_setup(pg.url, redis_url)
        _flush_redis(redis_url)
        info = prepare(students=students)
        env = {"TUTOR_STREAM_DELAY_S": "0.01", "TUTOR_RATELIMIT_ANSWERS": "0", "DJANGO_ALLOWED_HOSTS": "127.0.0.1"}
        env.update(extra_env or {})
        stack = Stack(database_url=pg.url, redis_url=redis_url, workers=workers, extra_env=env)
        stack.start()
        for n in range(celery_workers):
            stack.start_worker(f"w{n}")
        yield pg, stack, info
    finally:
        if stack is not None:
            stack.stop()
        pg.destroy()


def _flush_redis(url: str) -> None:
    """Empty our own Redis database number (never the shared db 0 that the test suites use)."""
    import redis

    assert not url.endswith("/0")
    redis.Redis.from_url(url).flushdb()


def _stored_client_ids() -> set[str]:
    from tutor.models import Attempt

    return {str(c) for c in Attempt.objects.values_list("client_id", flat=True)}


def _applied_twice() -> int:
    """Answers counted more than once by the knowledge state: per student, counted attempts minus stored ones.

    Every graded answer adds one to its concept's `attempts` in the student's knowledge state, so a
    redelivered task that slipped past the client_id check would show up here as counted > stored."""
    from learner_model.knowledge import KnowledgeState
    from tutor.models import Attempt, KnowledgeRecord

    extra = counted_total = 0
    for record in KnowledgeRecord.objects.all():
        counted = sum(c.attempts for c in KnowledgeState.from_blob(record.blob).concepts.values())
        stored = Attempt.objects.filter(user_id=record.user_id).count()
        extra += max(0, counted - stored)
        counted_total += counted
    assert counted_total or not Attempt.objects.exists(), "knowledge state counts no attempts: check is vacuous"
    return extra


# --- worker-kill -------------------------------------------------------------------------------------


def _broker_holds_messages(redis_url: str) -> bool:
    """Whether kombu's Redis transport holds any message: queued (the `celery` lists) or delivered and not yet
    acknowledged (the `unacked` hash; acks_late keeps a message there until its task returned)."""
    import redis

    r = redis.Redis.from_url(redis_url)
    return bool(r.hlen("unacked")) or any(r.type(k) == b"list" and r.llen(k) for k in r.scan_iter("celery*"))


def _drop_newest_message(redis_url: str) -> str | None:
    """Delete the newest queued answer task, as the broker does when it loses one; its client_id, or None."""
    import base64

    import redis

    r = redis.Redis.from_url(redis_url)
    for key in r.scan_iter("celery*"):
        if r.type(key) == b"list" and (raw := r.lpop(key)) is not None:  # kombu LPUSHes, workers BRPOP
            _, kwargs, _ = json.loads(base64.b64decode(json.loads(raw)["body"]))
            return kwargs["client_id"]
    return None


def run_worker_kill(*, answers: int = 10000, students: int = 50, batch: int = 50, kill_every: float = 30,
                    visibility_s: int = 20, drain_s: float = 240, resend_after_s: float | None = None,
                    resend_rounds: int = 5, poll_s: float = 2, drop_queued: int = 0, redis_db: int = 11) -> dict:
    extra = {"CELERY_VISIBILITY_TIMEOUT": str(visibility_s)}
    # Resending before a killed worker's message could have come back (visibility timeout) would mostly resend
    # answers that are only late; harmless, but it inflates the count and the queue.
    resend_after_s = 2 * visibility_s if resend_after_s is None else resend_after_s
    with environment(students=students, redis_db=redis_db, extra_env=extra, celery_workers=2) as (_, stack, info):
        from courses.models import Item
        from tutor.api_views import MAX_STATUS_IDS

        items = [(pk, str(key)) for pk, key in info["answers"].items()
                 if Item.objects.get(pk=pk).kind in READABLE_KINDS]
        url = f"/api/learn/{info['course']}/answers"
        sent: set[str] = set()  # accepted (202) at least once
        gave_up: set[str] = set()  # never listed as stored after the client's last resend round
        statuses: dict[str, int] = {}
        counts = {"resent": 0, "resent_when_broker_empty": 0, "status_checks": 0}
        resent_ids: set[str] = set()
        send_ends: list[float] = []
        dropped: list[str] = []  # answers whose queued message this run deleted (--drop-queued)
        drops_left = list(range(drop_queued))
        kills = 0
        stop = threading.Event()

        def killer() -> None:
            nonlocal kills
            while not stop.wait(kill_every):
                index = kills % len(stack.celery)
                victim = stack.celery[index]
                os.killpg(victim.pid, signal.SIGKILL)  # the whole worker, mid-task: no chance to ack or requeue
                victim.wait(timeout=10)
                kills += 1
                stack.start_worker(f"w{kills}")  # appended to stack.celery; it takes the victim's place
                stack.celery[index] = stack.celery.pop()

        def backoff(resends: int) -> float:
            """Seconds to wait after the n-th send: doubling to 4x, so an answer far back in a long queue is
            resent a few times, not at every look."""
            return resend_after_s * min(2 ** resends, 4)

        def count(method: str, status: int) -> None:
            statuses[f"{method} {status}"] = statuses.get(f"{method} {status}", 0) + 1

        async def post(s: Student, body: list[dict]) -> bool:
            """POST a batch until it is accepted (a few tries, as an offline client retries a failed upload)."""
            for attempt in range(5):
                response = await s.http.post(url, content=json.dumps({"answers": body}), headers={
                    "Content-Type": "application/json", "X-CSRFToken": s.csrf, "Referer": stack.base + "/"})
                count("POST", response.status_code)
                if response.status_code == 202:
                    return True
                await asyncio.sleep(0.5 * (attempt + 1))
            return False

        async def stored_among(s: Student, ids: list[str]) -> set[str]:
            found: set[str] = set()
            for i in range(0, len(ids), MAX_STATUS_IDS):
                response = await s.http.get(url, params={"ids": ",".join(ids[i:i + MAX_STATUS_IDS])})
                count("GET", response.status_code)
                counts["status_checks"] += 1
                if response.status_code == 200:  # anything else: nothing learnt, ask again next round
                    found.update(response.json()["stored"])
            return found

        async def student(name: str, total: int, rng: random.Random) -> None:
            s = Student(stack.base, name, info, lambda: _NullStats(), (0, 0), rng)
            await s.login(info["sessions"].get(name) or None)
            pending: dict[str, dict] = {}  # accepted, not yet listed as stored: the client keeps these
            last_sent: dict[str, float] = {}
            resends: dict[str, int] = {}
            left = total
            while left > 0:
                n = min(batch, left)
                body = [{"client_id": str(uuid.uuid4()), "item": pk, "answer": key}
                        for pk, key in (rng.choice(items) for _ in range(n))]
                if await post(s, body):
                    sent.update(a["client_id"] for a in body)
                    pending.update((a["client_id"], a) for a in body)
                    last_sent.update((a["client_id"], time.monotonic()) for a in body)
                left -= n
                await asyncio.sleep(rng.uniform(0.05, 0.3))
            send_ends.append(time.monotonic())
            if drops_left:
                drops_left.pop()  # before the await: clients finishing together must not all take the last turn
                if (lost_message := await asyncio.to_thread(_drop_newest_message, stack.redis_url)) is not None:
                    dropped.append(lost_message)
            last_arrival = time.monotonic()
            while pending and time.monotonic() - last_arrival < drain_s:  # give up after drain_s with nothing new
                await asyncio.sleep(poll_s)
                # Asked before the status check: if the broker held nothing then, a missing answer's message is gone.
                broker_empty = not await asyncio.to_thread(_broker_holds_messages, stack.redis_url)
                arrived = await stored_among(s, list(pending))
                for client_id in arrived:
                    pending.pop(client_id, None)
                now = time.monotonic()
                last_arrival = now if arrived else last_arrival
                due = [a for c, a in pending.items() if resends.get(c, 0) < resend_rounds and
                       now - last_sent[c] >= backoff(resends.get(c, 0))]
                # Resend only once none of ours has arrived for as long: while answers keep arriving the queue is
                # moving and the missing ones are probably behind. (`broker_empty` is for the count: no client sees it.)
                if due and now - last_arrival >= resend_after_s:
                    for i in range(0, len(due), batch):
                        chunk = due[i:i + batch]
                        if await post(s, chunk):
                            for a in chunk:
                                last_sent[a["client_id"]] = time.monotonic()
                                resends[a["client_id"]] = resends.get(a["client_id"], 0) + 1
                                resent_ids.add(a["client_id"])
                            counts["resent"] += len(chunk)
                            counts["resent_when_broker_empty"] += len(chunk) * broker_empty
                if all(resends.get(c, 0) >= resend_rounds and now - last_sent[c] >= backoff(resend_rounds)
                       for c in pending):
                    break  # every round used and waited out: the client gives up on what is left
            gave_up.update(pending)
            await s.close()

        async def drive() -> None:
            rng = random.Random(8)
            names = info["usernames"]
            per = [answers // len(names) + (1 if i < answers % len(names) else 0) for i in range(len(names))]
            await asyncio.gather(*(student(n, c, random.Random(rng.random())) for n, c in zip(names, per, strict=True)
                                   if c))

        thread = threading.Thread(target=killer, daemon=True)
        started = time.monotonic()
        thread.start()
        asyncio.run(drive())  # sending, then each client's status checks and resends; workers die throughout
        stop.set()
        thread.join(timeout=30)
        # A client that gave up may have left answers still queued: they are late, not lost, once stored.
        settle = time.monotonic() + 60
        while time.monotonic() < settle and _broker_holds_messages(stack.redis_url):
            time.sleep(1)
        stored = _stored_client_ids()
        return {"scenario": "worker-kill", "answers_sent": len(sent), "stored": len(sent & stored),
                "lost": len(sent - stored), "client_gave_up": len(gave_up), "resent": counts["resent"],
                "resent_answers": len(resent_ids), "resent_when_broker_empty": counts["resent_when_broker_empty"],
                "status_checks": counts["status_checks"], "dropped_by_us": len(dropped),
                "dropped_stored": len(set(dropped) & stored),
                "applied_twice": _applied_twice(), "kills": kills,
                "http_5xx": sum(n for key, n in statuses.items() if int(key.split()[1]) >= 500),
                "statuses": statuses, "send_s": round(max(send_ends, default=started) - started, 1),
                "total_s": round(time.monotonic() - started, 1),
                "visibility_timeout_s": visibility_s, "resend_after_s": resend_after_s,
                "resend_rounds": resend_rounds}


# --- socket-drop -------------------------------------------------------------------------------------


async def _abort(student: Student) -> None:
    """Cut the TCP connection without a closing handshake, as a lost network does."""
    student.ws.transport.abort()
    await asyncio.sleep(0.05)


def run_socket_drop(*, students: int = 20, rounds: int = 4, redis_db: int = 12) -> dict:
    with environment(students=students, redis_db=redis_db, extra_env={"TUTOR_STREAM_DELAY_S": "0.02"}) as \
            (_, stack, info):
        counts = {"stream_drops": 0, "streams_resumed_complete": 0, "answer_drops": 0, "answers_resent": 0,
                  "resent_after_arrival": 0, "resumed_wrong_phase": 0, "errors": 0}
        sent: set[str] = set()
        errors: list[str] = []

        async def one(name: str, rng: random.Random) -> None:
            s = Student(stack.base, name, info, lambda: _NullStats(), (0, 0), rng)
            try:
                await s.login(info["sessions"].get(name))
                stage = await s.connect()
                await s.send({"action": "skip_placement"})
                stage = await s.recv(lambda f: "data-phase" in f)
                for _ in range(rounds):
                    stage = await _drop_round(s, stage, rng)
            except Exception as exc:  # counted and shown; the scenario reports rather than stops
                counts["errors"] += 1
                errors.append(f"{name}: {type(exc).__name__}: {exc}"[:200])
            finally:
                await s.close()

        async def _drop_round(s: Student, stage: str, rng: random.Random) -> str:
            phase = re.search(r'data-phase="(\w+)"', stage)
            phase = phase.group(1) if phase else "explain"
            if phase == "pain":
                await s.send({"action": "guess", "client_id": str(uuid.uuid4()), "guess": "g"})
                seen, cut_at = 0, rng.randint(2, 6)
                while seen < cut_at:  # cut the socket a few words into the stream
                    frame = await s.recv(lambda f: True)
                    if 'id="explanation-stream"' in frame and "hx-swap-oob" in frame:
                        seen += len(re.sub(r"<[^>]+>", " ", frame).split())
                await _abort(s)
                counts["stream_drops"] += 1
                resumed = await s.connect()
                if 'data-phase="explain"' not in resumed:
                    counts["resumed_wrong_phase"] += 1
                done = await s.recv(lambda f: 'id="start-practice"' in f, timeout=120)
                counts["streams_resumed_complete"] += 1
                return await s._timed({"action": "practice", "step": re.search(
                    r'name="step" value="([0-9a-f-]{36})"', done).group(1)}, "practice")
            if phase in ("practice", "placement"):
                item = re.search(r'name="item" value="(\d+)"', stage).group(1)
                message = {"action": "answer", "client_id": str(uuid.uuid4()), "item": item,
                           "answer": str(info["answers"].get(int(item), "0"))}
                sent.add(message["client_id"])
                await s.send(message)
                await _abort(s)  # cut right after sending: did the server get it? the page cannot know
                counts["answer_drops"] += 1
                resumed = await s.connect()
                arrived = 'data-phase="feedback"' in resumed or 'data-phase="pain"' in resumed or \
                    ('data-phase="placement"' in resumed and f'name="item" value="{item}"' not in resumed)
                if arrived and rng.random() < 0.5:
                    return resumed  # it arrived before the cut; the page shows its result
                # Not arrived, or a client unsure whether it did: resend the same message (same client_id).
                await s.send(message)
                counts["answers_resent"] += 1
                counts["resent_after_arrival"] += arrived
                frame = await s.recv(lambda f: "data-phase" in f or 'id="notice"' in f)
                return frame if "data-phase" in frame else resumed
            if phase == "feedback":
                return await s._timed({"action": "next", "step": re.search(
                    r'name="step" value="([0-9a-f-]{36})"', stage).group(1)}, "next")
            if phase == "explain":
                done = stage if 'id="start-practice"' in stage else await s.recv(
                    lambda f: 'id="start-practice"' in f, timeout=120)
                return await s._timed({"action": "practice", "step": re.search(
                    r'name="step" value="([0-9a-f-]{36})"', done).group(1)}, "practice")
            raise StudentError(f"phase {phase}")

        _run_students(one, info["usernames"][:students], seed=9)
        stored = _stored_client_ids()
        return {"scenario": "socket-drop", **counts, "answers_sent": len(sent), "lost": len(sent - stored),
                "applied_twice": _applied_twice(), "error_samples": errors[:5]}


def _run_students(one, usernames: list[str], *, seed: int, alongside=None) -> None:
    """Run `one(name, rng)` for every student at once (each with its own seeded rng), and the scenario's own
    coroutine `alongside()` (the fault, the clock) with them; return when all have ended."""

    async def drive() -> None:
        rng = random.Random(seed)
        await asyncio.gather(*([alongside()] if alongside else []),
                             *(one(n, random.Random(rng.random())) for n in usernames))

    asyncio.run(drive())


class _NullStats:
    """Timing sink for scenarios that count outcomes, not latency."""

    def add(self, *args, **kwargs) -> None:
        pass


# --- model-kill --------------------------------------------------------------------------------------

FAKE_MODEL = r'''
import asyncio, json, sys, time
WORDS = ("The model explains this idea step by step, with a worked example and a check at the end. " * 4).split()
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"].endswith("/models"):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps({"data": [{"id": "fake"}]}).encode()})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    for i, word in enumerate(WORDS):
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "fake",
                 "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]}
        await send({"type": "http.response.body", "body": f"data: {json.dumps(chunk)}\n\n".encode(), "more_body": True})
        await asyncio.sleep(0.05)
    done = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "fake",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    await send({"type": "http.response.body", "body": f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode()})
'''


class FakeModelServer:
    """A small OpenAI-compatible streaming server (uvicorn), to be killed and restarted."""

    def __init__(self) -> None:
        self.port = free_port()
        self.path = Path(f"/tmp/tutor-fake-model-{self.port}.py")
        self.path.write_text(FAKE_MODEL)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        self.proc = subprocess.Popen([str(BIN / "uvicorn"), f"{self.path.stem}:app", "--app-dir", "/tmp", "--port",
                                      str(self.port), "--log-level", "warning"], start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import httpx

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/models", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.2)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.kill()
        self.path.unlink(missing_ok=True)


def run_model_kill(*, students: int = 20, kills: int = 3, down_s: float = 3.0, redis_db: int = 13) -> dict:
    model = FakeModelServer()
    model.start()
    extra = {"TUTOR_LLM": "openai", "TUTOR_LLM_URL": model.url, "TUTOR_LLM_MODEL": "fake",
             "TUTOR_LLM_TTFT_LIMIT_S": "3", "TUTOR_RATELIMIT_GENERATIONS": "0",
             # An empty cache: the teach-back scorer's int8 graph is built (by a child process) when the first
             # student reaches a teach-back, as on a server started without TUTOR_TEACHBACK_PRELOAD. Built on a thread
             # of the server, it held the other students past 30 s in CI runs 35 and 36.
             "TUTOR_CACHE_DIR": tempfile.mkdtemp(prefix="tutor-chaos-cache-")}
    try:
        with environment(students=students, redis_db=redis_db, extra_env=extra) as (_, stack, info):
            counts = {"streams": 0, "complete": 0, "incomplete": 0, "with_model_text": 0, "with_authored_text": 0,
                      "page_5xx": 0, "pages": 0, "errors": 0, "kills": 0, "teach_backs": 0}
            errors: list[str] = []

            async def one(name: str, rng: random.Random) -> None:
                s = Student(stack.base, name, info, lambda: _NullStats(), (0, 0), rng)
                try:
                    await s.login(info["sessions"].get(name))
                    await s.connect()
                    await s.send({"action": "skip_placement"})
                    stage = await s.recv(lambda f: "data-phase" in f)
                    for _ in range(3):  # three concepts' explanations each
                        if 'data-phase="pain"' not in stage:
                            break
                        await s.send({"action": "guess", "client_id": str(uuid.uuid4()), "guess": "g"})
                        counts["streams"] += 1
                        text = []
                        while True:
                            frame = await s.recv(lambda f: True, timeout=90)
                            if 'id="explanation-stream"' in frame:
                                text.append(frame)
                            if 'id="start-practice"' in frame:
                                break
                        streamed = html.unescape("".join(re.findall(r'hx-swap-oob="beforeend">(.*?)</div>',
                                                                    "".join(text), re.S)))
                        # more than a few words streamed (frames gather what arrived within TUTOR_STREAM_FLUSH_S)
                        complete = "id=\"explanation\"" in frame and len(streamed.split()) > 3
                        counts["complete" if complete else "incomplete"] += 1
                        counts["with_model_text"] += "step by step" in streamed
                        counts["with_authored_text"] += any(e.strip()[:40] in streamed
                                                            for e in info["explanations"].values() if e.strip())
                        page = await s.http.get(f"/learn/{info['course']}/")
                        counts["pages"] += 1
                        counts["page_5xx"] += page.status_code >= 500
                        stage = await _through_practice(s, frame, info)
                    # mastered and asked to explain: the first of these starts the scorer's model build
                    counts["teach_backs"] += 'data-phase="teach"' in stage
                except Exception as exc:  # counted and shown; the scenario reports rather than stops
                    counts["errors"] += 1
                    errors.append(f"{name}: {type(exc).__name__}: {exc}"[:200])
                finally:
                    await s.close()

            async def killer() -> None:
                for _ in range(kills):
                    await asyncio.sleep(2.5)
                    model.kill()  # mid-stream for whoever is streaming now
                    counts["kills"] += 1
                    await asyncio.sleep(down_s)
                    await asyncio.to_thread(model.start)

            _run_students(one, info["usernames"][:students], seed=10, alongside=killer)
            return {"scenario": "model-kill", **counts, "error_samples": errors[:5]}
    finally:
        model.stop()
        shutil.rmtree(extra["TUTOR_CACHE_DIR"], ignore_errors=True)


async def _through_practice(s: Student, done: str, info: dict) -> str:
    """Practise, answer and go next until a new concept's pain-first screen (or a bounded number of steps)."""
    stage = await s._timed({"action": "practice", "step": re.search(
        r'name="step" value="([0-9a-f-]{36})"', done).group(1)}, "practice")
    for _ in range(12):
        phase = re.search(r'data-phase="(\w+)"', stage).group(1)
        if phase == "pain":
            return stage
        if phase in ("practice", "placement"):
            stage = await s._answer(stage, "answer")
        elif phase == "feedback":
            stage = await s._timed({"action": "next", "step": re.search(
                r'name="step" value="([0-9a-f-]{36})"', stage).group(1)}, "next")
        else:
            return stage
    return stage


# --- ta-slow-embed -----------------------------------------------------------------------------------

SLOW_EMBEDDING_SHIM = Path(__file__).resolve().parent / "shims" / "slow_embedding"


class _TAWaits:
    """Stats sink for `Student.ask_ta`: seconds to the first streamed piece and to the finished card."""

    def __init__(self) -> None:
        self.first: list[float] = []
        self.complete: list[float] = []

    def add(self, step: str, rtt_s: float, server_ms: float | None = None) -> None:
        if step == "ta_first_token":
            self.first.append(rtt_s)
        elif step == "ta_complete":
            self.complete.append(rtt_s)


def run_ta_slow_embed(*, students: int = 20, load_s: float = 60, seconds: float = 90, think_s: float = 4,
                      workers: int = 2, redis_db: int = 15) -> dict:
    """Students load pages and ask the TA-bot over its socket while every server process's embedding model takes
    `load_s` seconds longer to load (the harness's shim in SLOW_EMBEDDING_SHIM, on the servers' PYTHONPATH only).
    The course was indexed before (chunks and vectors stored, as after its import), so BM25 can answer at once.
    Questions go on for `seconds`, then until one has been answered by hybrid search (a model loaded), at most
    `load_s` + 180 s in all; each waits at most 120 s for its answer (longer counts as an error)."""
    from datetime import UTC, datetime

    extra = {"PYTHONPATH": f"{SLOW_EMBEDDING_SHIM}:{REPO}", "CHAOS_EMBED_LOAD_DELAY_S": str(load_s),
             "TUTOR_RATELIMIT_TA_QUESTIONS": "0"}
    with environment(students=students, redis_db=redis_db, extra_env=extra, workers=workers) as (_, stack, info):
        from courses.models import Course
        from tutor.models import TAQuestion
        from tutor.ta import services as ta_services

        course = Course.objects.get(slug=info["course"])
        started = time.monotonic()
        ta_services.ta_index_rebuild(course=course)  # here, with the model at its own speed: the servers never embed
        index_s = time.monotonic() - started
        counts = {"pages": 0, "http_5xx": 0, "errors": 0}
        waits: dict[str, _TAWaits] = {}
        errors: list[str] = []
        stop = asyncio.Event()
        begun = datetime.now(UTC)

        def hybrid_answered() -> bool:
            answered = TAQuestion.objects.filter(course=course, outcome__in=["quoted", "answered", "declined"])
            return answered.exclude(reason__contains="lexical").exists()

        async def one(name: str, rng: random.Random) -> None:
            waits[name] = _TAWaits()
            s = Student(stack.base, name, info, lambda: waits[name], (0, 0), rng)
            s.stream_timeout = 120
            try:
                await s.login(info["sessions"].get(name))
                while not stop.is_set():
                    for path in (f"/learn/{info['course']}/", f"/learn/{info['course']}/ask/"):
                        page = await s.http.get(path)  # the session page starts the TA's warm-up
                        counts["pages"] += 1
                        counts["http_5xx"] += page.status_code >= 500
                    await s.ask_ta()
                    try:
                        await asyncio.wait_for(stop.wait(), rng.uniform(0.5, 1.5) * think_s)
                    except TimeoutError:
                        pass
            except Exception as exc:  # counted and shown; the scenario reports rather than stops
                counts["errors"] += 1
                errors.append(f"{name}: {type(exc).__name__}: {exc}"[:200])
            finally:
                await s.close()

        async def until_hybrid() -> None:
            await asyncio.sleep(seconds)
            deadline = time.monotonic() + load_s + 180
            while time.monotonic() < deadline and not await asyncio.to_thread(hybrid_answered):
                await asyncio.sleep(2)
            stop.set()

        _run_students(one, info["usernames"][:students], seed=12, alongside=until_hybrid)
        rows = list(TAQuestion.objects.filter(course=course).order_by("pk")
                    .values_list("user__username", "outcome", "reason", "citations", "created_at"))
        lexical = [r for r in rows if "lexical" in r[2]]
        hybrid = [r for r in rows if "lexical" not in r[2]]
        # Each student asks one question at a time, so their rows and their waits pair up in order.
        lexical_waits = [w for name, student in waits.items()
                         for w, r in zip(student.first, [r for r in rows if r[0] == name], strict=False)
                         if "lexical" in r[2]]
        first = [w for student in waits.values() for w in student.first]
        complete = [w for student in waits.values() for w in student.complete]
        return {"scenario": "ta-slow-embed", "questions": len(rows), "answered": len(complete),
                "answered_with_citations": sum(bool(r[3]) for r in rows),
                "declined": sum(r[1] == "declined" for r in rows),
                "answered_lexically": len(lexical), "lexical_with_citations": sum(bool(r[3]) for r in lexical),
                "answered_hybrid": len(hybrid),
                "first_hybrid_after_s": round(min(r[4] for r in hybrid).timestamp() - begun.timestamp(), 1)
                if hybrid else None,
                "waited_over_5s": sum(w > 5 for w in first),
                "first_piece_s": {"p50": round(pct(first, 50), 2), "max": round(max(first, default=0), 2),
                                  "max_lexical": round(max(lexical_waits, default=0), 2)},
                "complete_s_max": round(max(complete, default=0), 2),
                "pages": counts["pages"], "http_5xx": counts["http_5xx"], "errors": counts["errors"],
                "error_samples": errors[:5], "model_load_delay_s": load_s, "server_processes": workers,
                "index_built_before_s": round(index_s, 1)}


# --- pg-restart --------------------------------------------------------------------------------------


def run_pg_restart(*, students: int = 30, seconds: float = 40, restart_at: float = 12, down_s: float = 5,
                   redis_db: int = 14) -> dict:
    with environment(students=students, redis_db=redis_db, celery_workers=1) as (pg, stack, info):
        counts = {"requests": 0, "ok": 0, "http_503": 0, "http_500": 0, "socket_notices": 0, "socket_closed": 0,
                  "before_ok": 0, "before_failed": 0, "during_ok": 0, "during_failed": 0,
                  "after_recovery_ok": 0, "after_recovery_failed": 0}
        phase = {"down": False, "recovered_at": None}
        acknowledged: set[str] = set()
        stop = asyncio.Event()

        async def one(name: str, rng: random.Random) -> None:
            s = Student(stack.base, name, info, lambda: _NullStats(), (0.2, 0.6), rng)
            s.stream_timeout = 10  # a stream cut by the outage is restarted by reconnecting
            await s.login(info["sessions"].get(name))
            while not stop.is_set():
                try:
                    if s.ws is None:
                        stage = await s.connect()
                    await asyncio.sleep(rng.uniform(0.2, 0.6))
                    page = await s.http.get(f"/learn/{info['course']}/")
                    _count(page.status_code)
                    stage = await _socket_step(s, stage)
                except StudentError as exc:
                    counts["socket_notices"] += 1
                    if "timeout" in str(exc):  # what a page does when nothing arrives: reload, i.e. reconnect
                        await s.ws.close()
                        s.ws = None
                except Exception:  # the socket closed or the request failed: reconnect next time round
                    counts["socket_closed"] += 1
                    if s.ws is not None:
                        await s.ws.close()
                    s.ws = None
                    await asyncio.sleep(0.5)
            await s.close()

        def _count(status: int) -> None:
            counts["requests"] += 1
            key = "ok" if status < 400 else f"http_{status}" if status in (500, 503) else "http_other"
            counts[key] = counts.get(key, 0) + 1
            if phase["recovered_at"] is None and not phase["down"]:
                period = "before"
            elif phase["down"] or time.monotonic() < phase["recovered_at"] + 3:
                period = "during"  # the outage, and 3 s for connections to be re-made
            else:
                period = "after_recovery"
            counts[f"{period}_{'ok' if status < 400 else 'failed'}"] += 1

        async def _socket_step(s: Student, stage: str) -> str:
            found = re.search(r'data-phase="(\w+)"', stage)
            current = found.group(1) if found else "explain"
            if current in ("practice", "placement"):
                item = re.search(r'name="item" value="(\d+)"', stage).group(1)
                client_id = str(uuid.uuid4())
                await s.send({"action": "answer", "client_id": client_id, "item": item,
                              "answer": str(info["answers"].get(int(item), "0"))})
                frame = await s.recv(lambda f: "data-phase" in f or 'id="notice"' in f)
                if "data-phase" in frame:
                    acknowledged.add(client_id)  # the student saw feedback: this answer must survive
                    return frame
                raise StudentError("notice")
            return await s.step(stage)

        async def restarter() -> None:
            await asyncio.sleep(restart_at)
            phase["down"] = True
            await asyncio.to_thread(pg.stop, "fast")
            await asyncio.sleep(down_s)
            await asyncio.to_thread(pg.start)
            phase["down"], phase["recovered_at"] = False, time.monotonic()
            await asyncio.sleep(seconds - restart_at - down_s)
            stop.set()

        _run_students(one, info["usernames"][:students], seed=11, alongside=restarter)
        from django.db import connection

        connection.close()  # this process's connection died with the restart
        if getattr(connection, "pool", None) is not None:
            connection.close_pool()  # and so did the idle ones in its pool
        stored = _stored_client_ids()
        return {"scenario": "pg-restart", **counts, "answers_acknowledged": len(acknowledged),
                "lost": len(acknowledged - stored), "server_restarted": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="scenario", required=True)
    p = sub.add_parser("worker-kill")
    p.add_argument("--answers", type=int, default=10000)
    p.add_argument("--students", type=int, default=50)
    p.add_argument("--kill-every", type=float, default=30)
    p.add_argument("--visibility-s", type=int, default=20)
    p.add_argument("--drain-s", type=float, default=240,
                   help="a client gives up after this long with none of its answers newly stored")
    p.add_argument("--resend-after-s", type=float, default=None, help="default: twice --visibility-s")
    p.add_argument("--resend-rounds", type=int, default=5)
    p.add_argument("--poll-s", type=float, default=2)
    p.add_argument("--drop-queued", type=int, default=0,
                   help="delete this many queued messages (one per client, after it sent), as a broker losing them")
    p = sub.add_parser("socket-drop")
    p.add_argument("--students", type=int, default=20)
    p.add_argument("--rounds", type=int, default=4)
    p = sub.add_parser("model-kill")
    p.add_argument("--students", type=int, default=20)
    p.add_argument("--kills", type=int, default=3)
    p = sub.add_parser("ta-slow-embed")
    p.add_argument("--students", type=int, default=20)
    p.add_argument("--load-s", type=float, default=60, help="added to each server process's embedding model load")
    p.add_argument("--seconds", type=float, default=90, help="questions go on this long, then until one is hybrid")
    p.add_argument("--think-s", type=float, default=4)
    p.add_argument("--workers", type=int, default=2, help="server processes")
    p = sub.add_parser("pg-restart")
    p.add_argument("--students", type=int, default=30)
    p.add_argument("--seconds", type=float, default=40)
    p.add_argument("--restart-at", type=float, default=12)
    p.add_argument("--down-s", type=float, default=5)
    args = vars(parser.parse_args())
    scenario = args.pop("scenario")
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    runner = {"worker-kill": run_worker_kill, "socket-drop": run_socket_drop, "model-kill": run_model_kill,
              "ta-slow-embed": run_ta_slow_embed, "pg-restart": run_pg_restart}[scenario]
    started = time.monotonic()
    result = runner(**{k.replace("-", "_"): v for k, v in args.items()})
    result["wall_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
