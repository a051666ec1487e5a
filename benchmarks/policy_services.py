"""Simulated students through the tutor's services (issue 4): the live path against the simulator's.

    python benchmarks/policy_services.py [--students 20] [--concepts 15] [--seed 0] [--max-items 1500]
                                         [--shared-course]

`benchmarks/policy_sim.py` measures the teaching policy by calling it directly (`simulate_policy`). The live
tutor calls the same policy through the database: `tutor.services` loads the student's state, asks the policy,
saves what comes back. This benchmark shows the two are the same tutor. It imports a simulated course
(`make_course`, fixed seed) as a real Course (concepts with their prerequisites and BKT parameters in
`bkt` parameters, numeric items with the tutor's difficulty estimates and an answer key), enrols simulated
students as users and drives each through the services in the order the session socket calls them
(`tutor/consumers.py`): enrolment, each placement answer (`attempt_record`), the pain-first guess
(`guess_record`), the explanation (`explanation_store`, as the socket does once it has streamed it), `practice_start`,
each answer (`attempt_record` with a fresh client_id) and "next" (`session_advance`), until the tutor says the
course is done (phase DONE) or `--max-items`.

Whether an answer is right comes from the simulator's hidden state (`Classroom.answer` for that student, concept
and item): right submits the item's key, wrong a different number. The tutor's clock (`tutor.services._now`,
patched) follows the simulated day, `items answered / 30` days after enrolment, as in `simulate_policy`.

The same hidden students then go through `simulate_policy(..., placement=...)` in the same process, with the live
tutor's settings: `PlacementSettings(max_questions=<the course's placement budget>)`, as `enrollment_create`
builds it (not policy_sim.py's, whose placement prior takes the population file's ability sd 2.486, against the
default 2.49), and the policy "ours" with the course's band, mastery and review target. Each student runs alone,
on a one-student slice of the population and a hidden-state random stream of its own (seed + student), on both
paths: if the two paths choose the same items, the hidden student draws the same answers and both report the
same figures, to the item. A Django-free replay (`policy_replay`: the live answers fed to `Placement` and
`make_policy("ours")` from `LearnerState.from_placement`) gives the sequence the policy would show; it is compared
with what the services showed, item by item.

Where the paths differ by design, and how the comparison handles it:
  - The guess-first stage: the live tutor stores the guess (for the explanation and for faculty) and, when the
    concept names a right guess (`guess_answer`) and the student picked a choice, counts it as weak evidence of
    prior knowledge (`policy.record(..., guess_first=True)`). The simulated course has no guess choices, the
    simulated student types "No idea yet." (ungraded, no evidence) and the simulator has no guess stage, so the
    guess is evidence on neither path here.
  - The lesson: neither the explanation nor the guess teaches the hidden student anything (the simulator has no
    lesson effect); only items do, on both paths.
  - Placement: questions are answered at enrolment (day 0) and teach nothing, as in `run_placement`; the live
    tutor starts teaching from the placement at day `questions / 30` (the clock counts them as items), as
    `simulate_policy` does.
  - Item difficulty: the live tutor calibrates an item's difficulty from every practice answer (`item_calibrate`,
    Elo-style, in the database); its cached course model keeps the imported values until the content changes,
    and placement and teaching both weigh answers with the model's values (placement used to read the row, which
    made `--shared-course` differ). The simulator has no calibration. By default each student
    gets a fresh import of the course; `--shared-course` puts all of them in one course, one after another, and
    shows that earlier students' calibration does not change what a later student is shown.
  - Item variants and client ids: template items draw their variant from the step's random uuid; the simulated
    course has numeric items only, so no variant arises. Client ids are random uuids; nothing depends on them.
  - Stored state: the live tutor saves P(known) rounded to 6 decimals between requests; the simulator keeps the
    float. A choice on the edge of the mastery threshold could in principle differ; the replay would show it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

import numpy as np

from learner_model.placement import Placement, PlacementSettings
from learner_model.policy import CourseModel, LearnerState, diagnostic_item, make_policy
from learner_model.simulate import (
    EPOCH,
    Classroom,
    Population,
    SimCourse,
    make_course,
    make_population,
    simulate_policy,
    tutor_says_mastered,
)

if TYPE_CHECKING:
    from courses.format import CourseSpec
    from courses.models import Course

REPO = Path(__file__).resolve().parent.parent
ITEMS_PER_DAY = 30
GUESS = "No idea yet."

# (kind, concept, item) of one item shown: kind "placement", "learn" or "review"; item is the simulated course's id
Shown = tuple[str, str, str]
# whether the hidden student answers an item right: (concept, item id, day, learn) -> correct
Answerer = Callable[[str, str, float, bool], bool]


def course_spec(sim: SimCourse, *, slug: str, placement_questions: int = 15) -> CourseSpec:
    """The simulated course in the folder format's dataclasses: what `course_import` turns into rows.

    Item i of the course is numeric with key i (so a wrong answer is any other number); its difficulty is the
    tutor's estimate (`SimCourse.items`), its slug the simulator's item id."""
    from courses.format import ConceptSpec, CourseSpec, ItemSpec
    from courses.params import ConceptParams, CourseSettings

    items: dict[str, list[ItemSpec]] = {n.slug: [] for n in sim.nodes}
    for key, item in enumerate(sim.items):
        items[item.concept].append(ItemSpec(id=item.id, kind="numeric", prompt=f"Type {key}.", answer=key,
                                            difficulty=item.difficulty))
    return CourseSpec(
        slug=slug, title=f"Simulated course {slug}",
        settings=CourseSettings(placement_questions=placement_questions),
        concepts=[ConceptSpec(slug=n.slug, title=n.title, prerequisites=list(n.prerequisites),
                              lesson=f"Lesson of {n.title}.", pain_first=f"A problem {n.title} solves.",
                              guess_first=f"How would you solve it before {n.title}?",
                              explanation=f"Explanation of {n.title}.", params=ConceptParams(bkt=sim.params[n.slug]),
                              items=items[n.slug])
                  for n in sim.nodes])


def placement_settings(course: Course) -> PlacementSettings:
    """The diagnostic's settings as `enrollment_create` builds them for `course` (its seed is never read)."""
    from tutor import services

    return PlacementSettings(max_questions=services.placement_budget(course))


def student_population(population: Population, s: int) -> Population:
    """Student `s` of `population` alone (the same hidden knowledge, learning rates and ability)."""
    return replace(population, known0=population.known0[s:s + 1], p_learn=population.p_learn[s:s + 1],
                   ability=population.ability[s:s + 1])


def hidden_answerer(room: Classroom) -> Answerer:
    """Student 0 of `room` answers: correctness and learning from the simulator's hidden state."""
    index = {slug: i for i, slug in enumerate(room.population.course.slugs)}

    def answer(concept: str, item: str, day: float, learn: bool) -> bool:
        return bool(room.answer(np.array([0]), np.array([index[concept]]), [item], day, learn=learn)[0])

    return answer


@dataclass
class LiveRun:
    """One simulated student's way through the live services."""

    shown: list[Shown] = field(default_factory=list)  # every item shown, placement included, in order
    answers: list[bool] = field(default_factory=list)  # the answer to each
    done: bool = False  # the tutor said the course is done (phase DONE) within the cap
    guesses: int = 0  # guess-first prompts answered
    # concepts offered for learning while the tutor believed a prerequisite unmastered (P(known) < mastery)
    unready_offers: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the service calls and the hidden student's answers

    @property
    def items(self) -> int:
        return len(self.answers)


def student_drive(*, user: Any, course: Course, answerer: Answerer, max_items: int,
                  items_per_day: int = ITEMS_PER_DAY) -> LiveRun:
    """Drive one student through the tutor's services as the session socket does, until DONE or `max_items`."""
    from courses.models import Item
    from tutor import services
    from tutor.models import TutorSession
    from tutor.selectors import knowledge_state

    phase = TutorSession.Phase
    slugs = dict(Item.objects.filter(concept__course=course).values_list("pk", "slug"))
    keys = dict(Item.objects.filter(concept__course=course).values_list("pk", "answer"))
    model = services.course_model(course)
    mastery = model.settings.mastery
    run = LiveRun()
    day = [0.0]  # the tutor's clock, in days since enrolment

    def now() -> datetime:
        return EPOCH + timedelta(days=day[0])

    started = time.perf_counter()
    with mock.patch.object(services, "_now", now):
        session = services.enrollment_create(user=user, course=course)
        while session.phase != phase.DONE and run.items < max_items:
            if session.phase == phase.PAIN:
                session = services.guess_record(user=user, course=course, client_id=uuid.uuid4(), text=GUESS)
                run.guesses += 1
            elif session.phase == phase.EXPLAIN:
                assert session.concept is not None
                services.explanation_store(user=user, course=course, concept_id=session.concept.pk,
                                           text=session.concept.explanation)
                session = services.practice_start(user=user, course=course, step=session.step)
            elif session.phase in (phase.PLACEMENT, phase.PRACTICE):
                assert session.item is not None and session.concept is not None
                placing = session.phase == phase.PLACEMENT
                kind = "placement" if placing else session.step_kind
                if kind == "learn":
                    knowledge = session.knowledge or knowledge_state(user=user, course=course)
                    prereqs = model.nodes[session.concept.slug].prerequisites
                    if any(knowledge.mastery(p, model.params[p]) < mastery for p in prereqs):
                        run.unready_offers.append(session.concept.slug)
                item = slugs[session.item.pk]
                run.shown.append((kind, session.concept.slug, item))
                # placement: asked at enrolment, teaches nothing; the tutor's clock counts it as an item
                correct = answerer(session.concept.slug, item, 0.0 if placing else day[0], not placing)
                run.answers.append(correct)
                if placing:
                    day[0] = run.items / items_per_day
                key = keys[session.item.pk]
                outcome = services.attempt_record(user=user, course=course, client_id=uuid.uuid4(),
                                                  item_id=session.item.pk, answer=str(key if correct else key + 1))
                if outcome.session is None or outcome.check is None or outcome.check.correct != correct:
                    raise RuntimeError(f"answer to {item} not graded as the hidden student meant: {outcome!r}")
                day[0] = run.items / items_per_day
                session = outcome.session
                if session.phase == phase.FEEDBACK:
                    session = services.session_advance(user=user, course=course, step=session.step)
            else:
                raise RuntimeError(f"the simulated student does not know what to do in phase {session.phase!r}")
    run.done = session.phase == phase.DONE
    run.seconds = time.perf_counter() - started
    return run


def policy_replay(model: CourseModel, settings: PlacementSettings, answers: list[bool], *,
                  items_per_day: int = ITEMS_PER_DAY) -> tuple[list[Shown], bool]:
    """The Django-free policy given the same answers: what it would show, and whether it then says "done".

    Placement as `tutor.services` runs it (a concept asked again gets the best separating item not shown yet),
    then `LearnerState.from_placement` and `make_policy("ours")`, one item per answer, on the same clock."""
    def at(n: int) -> datetime:
        return EPOCH + timedelta(days=n / items_per_day)

    shown: list[Shown] = []
    placement = Placement(model.graph, model.params, settings)
    asked: set[str] = set()
    while len(shown) < len(answers) and (concept := placement.next_question()) is not None:
        fresh = [i for i in model.items_by_concept[concept] if i.id not in asked] or list(model.items_by_concept[concept])
        item = diagnostic_item(fresh, concept, model.params[concept])
        placement.record(concept, answers[len(shown)], difficulty=item.difficulty)
        shown.append(("placement", concept, item.id))
        asked.add(item.id)
    state = LearnerState.from_placement(placement, model, at(len(shown)), asked=[item for _, _, item in shown])
    policy = make_policy("ours", model)
    while len(shown) < len(answers) and not tutor_says_mastered(state, model, at(len(shown))):
        step = policy.next_step(state, at(len(shown)))
        assert step.concept is not None and step.item is not None
        shown.append((step.kind, step.concept, step.item))
        policy.record(state, step, answers[len(shown) - 1], at(len(shown) - 1))
    return shown, tutor_says_mastered(state, model, at(len(shown)))


def sim_course_model(sim: SimCourse, course: Course) -> CourseModel:
    """`sim`'s model (the simulator's item ids) with the live course's teaching settings."""
    from courses.selectors import course_settings
    from tutor.caches import teaching_settings

    settings = replace(teaching_settings(course_settings(course=course)), after_mastery="practise_weakest")
    return sim.model(settings)


# --- the benchmark ------------------------------------------------------------------------------------


def _setup_django(database_url: str | None) -> Path:
    """Django on `database_url`, or on a fresh SQLite file; BKT only (no refitted model), migrated."""
    workdir = Path(tempfile.mkdtemp(prefix="policy-services-"))
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{workdir / 'db.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.LEARNER_MODEL_DIR = workdir / "learner_model"  # the simulator's tutor predicts with BKT
    call_command("migrate", verbosity=0)
    return workdir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--concepts", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-items", type=int, default=1500)
    parser.add_argument("--questions", type=int, default=15, help="the course's placement budget")
    parser.add_argument("--shared-course", action="store_true",
                        help="one course for every student (the live tutor's difficulty calibration carries over)")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()

    _setup_django(args.database_url)
    from django.contrib.auth import get_user_model
    from django.db import connection

    from courses.services import course_import

    sim = make_course(args.concepts, seed=args.seed)
    population = make_population(sim, args.students, seed=args.seed + 1)
    tag = uuid.uuid4().hex[:6]
    users = get_user_model()
    print(f"# Simulated students through the tutor's services: {args.students} students, {args.concepts} concepts "
          f"({len(sim.items)} items), seeds course {args.seed} / population {args.seed + 1} / answers "
          f"{args.seed + 3}+s, placement budget {args.questions}, cap {args.max_items} items, "
          f"{'one shared course' if args.shared_course else 'a fresh course per student'}, {connection.vendor}; "
          f"{platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, load average {_load()}")
    print("| student | known at enrolment | live: items to stop | said done | learned then | sim: items to stop "
          "| said done | learned then | same figures | replay: first other item | live s | ms / answer | sim ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    shared = None
    if args.shared_course:
        shared = course_import(spec=course_spec(sim, slug=f"sim-{tag}", placement_questions=args.questions))
    rows: list[dict[str, Any]] = []
    for s in range(args.students):
        course = shared or course_import(spec=course_spec(sim, slug=f"sim-{tag}-{s:03d}",
                                                          placement_questions=args.questions))
        model = sim_course_model(sim, course)
        placement = placement_settings(course)
        one = student_population(population, s)
        user = users.objects.create_user(username=f"sim-{tag}-{s:03d}")
        room = Classroom.fresh(one, seed=args.seed + 3 + s)
        run = student_drive(user=user, course=course, answerer=hidden_answerer(room), max_items=args.max_items)
        started = time.perf_counter()
        result = simulate_policy(one, make_policy("ours", model), model, placement=placement, seed=args.seed + 3 + s,
                                 items_per_day=ITEMS_PER_DAY, max_items=args.max_items)
        sim_ms = (time.perf_counter() - started) * 1000
        replayed, replay_done = policy_replay(model, placement, run.answers)
        row = {"live_items": run.items, "live_done": run.done, "live_share": float(room.learned[0].mean()),
               "sim_items": int(result.items_to_declared[0]), "sim_done": bool(result.declared[0]),
               "sim_share": float(result.hidden_share_at_declared[0]), "replay": replayed == run.shown
               and replay_done == run.done, "first": _first_difference(run.shown, replayed), "seconds": run.seconds, "sim_ms": sim_ms,
               "unready": len(run.unready_offers), "known0": float(one.known0.mean()), "guesses": run.guesses,
               "reviews": sum(kind == "review" for kind, _, _ in run.shown)}
        row["same"] = (row["live_items"], row["live_done"], row["live_share"]) == \
            (row["sim_items"], row["sim_done"], row["sim_share"])
        rows.append(row)
        print(f"| {s} | {row['known0']:.0%} | {run.items} | {'yes' if run.done else 'no'} | {row['live_share']:.0%} "
              f"| {row['sim_items']} | {'yes' if row['sim_done'] else 'no'} | {row['sim_share']:.0%} "
              f"| {'yes' if row['same'] else 'NO'} | {row['first']} | {run.seconds:.1f} "
              f"| {1000 * run.seconds / max(run.items, 1):.1f} | {sim_ms:.0f} |", flush=True)
    _summary(rows)


def _first_difference(live: list[Shown], replayed: list[Shown]) -> str:
    """Where the replay first shows another item than the live tutor did: "none", or "#n (kind)"."""
    for n, (ours, theirs) in enumerate(zip(live, replayed, strict=False)):
        if ours != theirs:
            return f"#{n + 1} ({ours[0]})"
    return "none" if len(live) == len(replayed) else f"#{min(len(live), len(replayed)) + 1} (stop)"


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _summary(rows: list[dict[str, Any]]) -> None:
    def med(key: str) -> float:
        return float(np.median([r[key] for r in rows]))

    n = len(rows)
    print(f"\nsame figures on both paths (items to the stop, said done, share learned): {sum(r['same'] for r in rows)}/{n} students; "
          f"the Django-free replay of the live answers shows the same items: {sum(r['replay'] for r in rows)}/{n}; "
          f"concepts offered for learning with a prerequisite unmastered: {sum(r['unready'] for r in rows)}")
    print(f"items to the tutor's stop (placement included): live median {med('live_items'):.0f}, "
          f"sim median {med('sim_items'):.0f}; said done: live {sum(r['live_done'] for r in rows)}/{n}, "
          f"sim {sum(r['sim_done'] for r in rows)}/{n}; hidden share learned then: live mean "
          f"{np.mean([r['live_share'] for r in rows]):.1%}, sim mean {np.mean([r['sim_share'] for r in rows]):.1%}")
    answers = sum(r["live_items"] for r in rows)
    print(f"on the way: {sum(r['guesses'] for r in rows)} guess-first prompts answered, "
          f"{sum(r['reviews'] for r in rows)} review items; load average at the end {_load()}")
    print(f"time per student: live median {med('seconds'):.1f} s ({1000 * sum(r['seconds'] for r in rows) / answers:.1f} "
          f"ms per answer, all services of the step included), sim median {med('sim_ms'):.0f} ms")


if __name__ == "__main__":
    main()
