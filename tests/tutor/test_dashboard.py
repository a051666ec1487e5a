"""The class dashboard: mastery heatmap, stuck students, common wrong answers, difficulty drift, CSV."""

import csv
import io
import uuid

import pytest
from django.urls import reverse

from courses.models import Item, Membership
from courses.services import membership_set
from learner_model.knowledge import ConceptState, KnowledgeState
from tutor import caches, dashboard
from tutor.models import Attempt, KnowledgeRecord
from tutor.services import enrollment_create

pytestmark = pytest.mark.django_db


def _knowledge(user, course, **p_known):
    state = KnowledgeState(concepts={slug: ConceptState(p_known=p, attempts=3, correct=2) for slug, p in p_known.items()})
    KnowledgeRecord.objects.update_or_create(user=user, course=course, defaults={"blob": state.to_blob()})


def _attempts(user, item, answers, *, mastery=0.1, correct=None, hints=0):
    for answer in answers:
        right = correct if correct is not None else answer == str(item.answer)
        Attempt.objects.create(client_id=uuid.uuid4(), user=user, item=item, concept=item.concept, answer=answer,
                               normalized=answer, correct=right, hints_used=hints, mastery_after=mastery,
                               feedback=item.feedback.get(answer, "") if not right else "")


@pytest.fixture
def klass(course, alice, bob, prof):
    enrollment_create(user=alice, course=course)
    enrollment_create(user=bob, course=course)
    _knowledge(alice, course, a=0.97, b=0.5)
    _knowledge(bob, course, a=0.3)
    return course


def test_heatmap_shows_each_students_mastery_per_concept(klass):
    heat = dashboard.heatmap(course=klass)
    assert [c.slug for c in heat["concepts"]] == ["a", "b", "c"]
    rows = {r.student: r for r in heat["rows"]}
    assert set(rows) == {"alice", "bob"}  # the faculty member is not a student
    assert [round(c.mastery, 2) for c in rows["alice"].cells] == [0.97, 0.5, 0.2]  # c: the prior
    assert [c.mastered for c in rows["alice"].cells] == [True, False, False]
    assert rows["alice"].mastered == 1 and rows["bob"].mastered == 0


def test_a_concept_without_published_questions_is_grey_uncounted_and_named_with_a_link(client, klass, prof, alice):
    Item.objects.filter(concept__course=klass, concept__slug="c").update(status=Item.Status.REVIEW)
    caches.clear()  # as the commit's version bump would
    _knowledge(alice, klass, a=0.97, b=0.5, c=0.99)  # c at the threshold, say from its prior
    heat = dashboard.heatmap(course=klass)
    alice = next(r for r in heat["rows"] if r.student == "alice")
    assert [(c.concept, c.taught, c.mastered) for c in alice.cells] == [
        ("a", True, True), ("b", True, False), ("c", False, False)]
    assert alice.mastered == 1 and heat["taught"] == {"a", "b"} and [c.slug for c in heat["untaught"]] == ["c"]
    client.force_login(prof)
    page = client.get(reverse("dashboard", args=[klass.slug])).content.decode()
    assert "1 concept has no published questions, so the tutor cannot teach or count it yet" in page
    assert f'href="/teach/{klass.slug}/concepts/c/"' in page and "1 / 2" in page


def test_a_student_failing_repeatedly_without_progress_is_stuck(klass, alice, bob):
    b_sym = Item.objects.get(slug="algebra-b-sym")
    _attempts(bob, b_sym, ["x", "x**2", "2x", "x**2", "x**3"], mastery=0.12)
    # alice also fails often, but her mastery climbs: she is learning, not stuck
    for i, answer in enumerate(["x", "x**2", "3*x**2", "x**2", "3*x**2", "3*x**2"]):
        _attempts(alice, b_sym, [answer], mastery=0.2 + 0.1 * i)
    # bob failed a lot on a long ago, but his last six answers there are right: only the recent window counts
    a_num = Item.objects.get(slug="algebra-a-num")
    _attempts(bob, a_num, ["5"] * 8, mastery=0.1)
    _attempts(bob, a_num, ["4"] * 6, mastery=0.1)
    stuck = dashboard.stuck_students(course=klass)
    assert [(s.student, s.concept, s.failures, s.window) for s in stuck] == [("bob", "b", 5, 5)]


def test_common_wrong_answers_carry_the_misconception_they_suggest(klass, alice, bob):
    a_sym = Item.objects.get(slug="algebra-a-sym")
    _attempts(alice, a_sym, ["x**2", "x**2", "3*x", "3*x**2"])
    _attempts(bob, a_sym, ["x**2", "3*x", "x"])
    [row] = dashboard.common_wrong_answers(course=klass)
    assert (row.item.slug, row.attempts, row.wrong) == ("algebra-a-sym", 7, 6)
    assert [(w.answer, w.count, w.misconception) for w in row.answers] == [
        ("x**2", 3, "Keep the coefficient 3."), ("3*x", 2, "")]  # "x" was given once: not common


def test_a_common_wrong_choice_is_shown_as_the_student_saw_it_not_as_the_checkers_tex(klass, alice, bob):
    # Seen on imported Intro Stats: "\text{First year students attending ABC College this term}" in code type.
    mc = Item.objects.get(slug="algebra-a-mc")
    for user in (alice, bob):
        Attempt.objects.create(client_id=uuid.uuid4(), user=user, item=mc, concept=mc.concept, answer="First year $x$",
                               normalized="\\text{First year $x$}", correct=False, mastery_after=0.1)
    [row] = dashboard.common_wrong_answers(course=klass)
    [shown] = row.answers
    assert shown.count == 2 and "\\text" not in shown.answer_html and "First year" in shown.answer_html
    assert 'class="math inline"' in shown.answer_html  # its maths typeset


def test_items_far_from_their_authored_difficulty_are_flagged(klass, alice, bob):
    easy = Item.objects.get(slug="algebra-a-num")  # authored -1.0 (easy) ...
    _attempts(alice, easy, ["5"] * 7 + ["4"] * 3)  # ... but 7 of 10 wrong
    fair = Item.objects.get(slug="algebra-a-mc")  # authored 0.0, and half wrong: as authored
    _attempts(bob, fair, ["x"] * 5 + ["2x"] * 5)
    _attempts(bob, Item.objects.get(slug="algebra-b-num"), ["5"] * 20, hints=2)  # after hints: not counted
    [drift] = dashboard.difficulty_drift(course=klass)
    assert drift.item == easy and drift.attempts == 10 and drift.wrong_rate == 0.7
    assert drift.observed == pytest.approx(0.7621, abs=1e-3)  # logit(7.5 / 11) = ln(7.5 / 3.5)
    assert drift.gap == pytest.approx(1.7621, abs=1e-3)


def test_dashboard_page_and_csv_export(client, klass, prof, bob):
    _attempts(bob, Item.objects.get(slug="algebra-a-sym"), ["x**2"] * 5, mastery=0.1)
    client.force_login(prof)
    page = client.get(reverse("dashboard", args=[klass.slug])).content.decode()
    assert 'data-student="alice"' in page and 'data-mastery="97"' in page
    assert "Keep the coefficient 3." in page
    assert 'data-student="bob" data-concept="a"' in page  # stuck
    response = client.get(reverse("dashboard_csv", args=[klass.slug]))
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["student", "concept", "mastery", "attempts", "mastered", "stuck"]
    assert ["alice", "a", "0.970", "3", "yes", "no"] in rows
    assert ["bob", "a", "0.300", "3", "no", "yes"] in rows
    assert len(rows) == 1 + 2 * 3


def test_students_cannot_see_the_dashboard_but_tas_can(client, klass, alice, bob):
    client.force_login(alice)
    assert client.get(reverse("dashboard", args=[klass.slug])).status_code == 403
    assert client.get(reverse("dashboard_csv", args=[klass.slug])).status_code == 403
    membership_set(user=bob, course=klass, role=Membership.Role.TA)
    client.force_login(bob)
    assert client.get(reverse("dashboard", args=[klass.slug])).status_code == 200
