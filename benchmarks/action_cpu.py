"""CPU time of one socket action in this process: the service and the stage it renders, as the websocket's
`SessionConsumer._serve` runs them, with nobody else on the server.

    . .venv/bin/activate && nice python benchmarks/action_cpu.py [--students 40]

A throwaway PostgreSQL cluster under /tmp (as load.py's), the load course, N students past placement, each taken
through two rounds of up to 12 actions (guess, practice, answer, next; one answer in three wrong). Prints per
action the median and mean CPU milliseconds (`time.process_time`: this process only, so PostgreSQL's own CPU is
not in it) and the median number of queries (BEGIN and COMMIT included). The first quarter of each action's calls
warms the process's caches and is left out. Compare commits by running this file from a checkout of each
(`git archive <commit> | tar -x -C /tmp/old`), one after the other on the same machine.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load  # noqa: E402  (this directory's load.py: the throwaway cluster and the load course)


def measure(students: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.template.loader import render_to_string
    from django.test.utils import CaptureQueriesContext

    from courses.models import Course
    from tutor import services
    from tutor.selectors import stage_context

    info = load.prepare(students=students)
    course = Course.objects.get(slug=info["course"])
    cpu: dict[str, list[float]] = collections.defaultdict(list)
    queries: dict[str, list[int]] = collections.defaultdict(list)

    def serve(name: str, user, action: Callable[[], object]) -> None:
        with CaptureQueriesContext(connection) as captured:
            started = time.process_time()
            session = action()
            if isinstance(session, services.AttemptOutcome):
                session = session.session or services.session_get(user=user, course=course)
            render_to_string("tutor/partials/stage.html", stage_context(session=session))
            cpu[name].append((time.process_time() - started) * 1000)
        queries[name].append(len(captured))

    users = list(get_user_model().objects.filter(username__in=info["usernames"]))
    for round_ in range(2):
        for user in users:
            if round_ == 0:
                services.placement_skip(user=user, course=course)
            for _ in range(12):
                session = services.session_get(user=user, course=course)
                if session.phase == "pain":
                    serve("guess", user, lambda u=user: services.guess_record(user=u, course=course,
                                                                               client_id=uuid.uuid4(), text="g"))
                    services.explanation_store(user=user, course=course, concept_id=session.concept_id, text="x")
                elif session.phase == "explain":
                    serve("practice", user, lambda u=user: services.practice_start(user=u, course=course))
                elif session.phase == "practice":
                    right = str(info["answers"][session.item_id])
                    serve("answer", user, lambda u=user, s=session, a=right: services.attempt_record(
                        user=u, course=course, client_id=uuid.uuid4(), item_id=s.item_id,
                        answer=a if s.item_id % 3 else "0"))
                elif session.phase == "feedback":
                    serve("next", user, lambda u=user: services.session_advance(user=u, course=course))
                else:
                    break
    print(f"{'action':<9} {'n':>5} {'CPU median ms':>14} {'CPU mean ms':>12} {'queries':>8}")
    for name in ("answer", "next", "practice", "guess"):
        kept = cpu[name][len(cpu[name]) // 4:]
        if kept:
            print(f"{name:<9} {len(kept):>5} {statistics.median(kept):>14.2f} {statistics.mean(kept):>12.2f} "
                  f"{statistics.median(queries[name]):>8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    pg = load.ThrowawayPostgres()
    try:
        pg.init()
        load.django_setup(pg.url, args.redis_url)
        measure(args.students)
    finally:
        pg.destroy()


if __name__ == "__main__":
    main()
