"""The course model (graph, item bank, parameters) is cached per process and content version: no query per
action, and every committed edit (an item published, an arrow drawn, new settings) reaches the next step."""

import uuid

import pytest

from courses import services as course_services
from courses.models import Concept, Item
from tutor import services

pytestmark = pytest.mark.django_db


def test_course_model_is_built_once_and_then_costs_no_query(course, django_assert_num_queries):
    first = services.course_model(course)
    with django_assert_num_queries(0):
        assert services.course_model(course) is first


def test_an_item_published_after_the_model_was_cached_becomes_choosable(course, prof,
                                                                        django_capture_on_commit_callbacks):
    concept = course.concepts.get(slug="a")
    with django_capture_on_commit_callbacks(execute=True):
        draft = course_services.item_create(concept=concept, user=prof, fields={
            "slug": "a-draft", "kind": "numeric", "prompt": "What is $3 + 3$?", "answer": 6,
            "status": Item.Status.REVIEW})
    assert str(draft.pk) not in {i.id for i in services.course_model(course).items}
    with django_capture_on_commit_callbacks(execute=True):
        course_services.item_review(item=draft, user=prof, status=Item.Status.PUBLISHED)
    assert str(draft.pk) in {i.id for i in services.course_model(course).items}


def test_a_prerequisite_drawn_after_the_model_was_cached_is_in_the_graph(course, prof,
                                                                       django_capture_on_commit_callbacks):
    services.course_model(course)
    a, c = Concept.objects.get(course=course, slug="a"), Concept.objects.get(course=course, slug="c")
    with django_capture_on_commit_callbacks(execute=True):
        course_services.concept_prerequisite_add(concept=c, prerequisite=a, user=prof)
    graph = {node.slug: node.prerequisites for node in services.course_model(course).graph}
    assert set(graph["c"]) == {"a", "b"}


def test_new_course_settings_reach_a_caller_holding_the_old_course_row(course, prof,
                                                                       django_capture_on_commit_callbacks):
    held = type(course).objects.get(pk=course.pk)  # e.g. a socket that loaded the course when it connected
    services.course_model(held)
    with django_capture_on_commit_callbacks(execute=True):
        course_services.course_settings_update(course=course, user=prof, title=course.title,
                                               description=course.description, settings={"target_band": [0.5, 0.6]})
    assert services.course_model(held).settings.band == (0.5, 0.6)


def test_a_change_rolled_back_keeps_the_cached_model(course, prof, django_capture_on_commit_callbacks):
    model = services.course_model(course)
    with django_capture_on_commit_callbacks(execute=False):  # the edit never commits: its callbacks never run
        course.concepts.filter(slug="a").first().save()
    assert services.course_model(course) is model


def test_explanation_prompt_builds_on_what_the_student_knows_from_the_cached_graph(alice, course):
    from types import SimpleNamespace

    from learner_model.knowledge import ConceptState, KnowledgeState
    from tutor.consumers import SessionConsumer
    from tutor.models import KnowledgeRecord

    services.enrollment_create(user=alice, course=course)
    KnowledgeRecord.objects.filter(user=alice, course=course).update(
        blob=KnowledgeState(concepts={"a": ConceptState(p_known=0.99)}).to_blob())
    consumer = SessionConsumer()
    consumer.scope, consumer.course = {"user": alice}, course
    c = course.concepts.get(slug="c")  # c needs b, which alice is unsure about; she knows a
    prompt = " ".join(m.content for m in consumer._explanation_request(SimpleNamespace(concept=c), None).messages)
    assert "The student already knows: Concept A." in prompt
    assert "They are unsure about: Concept B;" in prompt


def _at_practice(user, course):
    services.enrollment_create(user=user, course=course)
    services.placement_skip(user=user, course=course)
    session = services.session_get(user=user, course=course)
    if session.phase == "pain":
        services.guess_record(user=user, course=course, client_id=uuid.uuid4(), text="g")
    return services.practice_start(user=user, course=course)


def test_an_action_takes_the_session_item_and_concept_from_the_cached_rows_not_from_joins(alice, course):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    session = _at_practice(alice, course)
    services.attempt_record(user=alice, course=course, client_id=uuid.uuid4(),
                            item_id=session.item_id, answer="0")
    with CaptureQueriesContext(connection) as captured:
        session = services.session_advance(user=alice, course=course)
    reads = [q["sql"] for q in captured if q["sql"].lstrip().upper().startswith("SELECT")]
    assert not any('"courses_item"' in sql or '"courses_concept"' in sql for sql in reads)
    assert session.item == Item.objects.get(pk=session.item_id) and session.item.concept == session.concept


def test_an_item_edited_after_the_rows_were_cached_shows_its_new_text_on_the_next_action(
        alice, course, prof, django_capture_on_commit_callbacks):
    session = _at_practice(alice, course)
    assert services.course_rows(course).items[session.item_id].prompt == session.item.prompt
    with django_capture_on_commit_callbacks(execute=True):
        course_services.item_update(item=Item.objects.get(pk=session.item_id), user=prof,
                                    fields={"prompt": "What is $2 + 2$, said again?"})
    again = services.hint_reveal(user=alice, course=course, shown=0)
    assert again.item.prompt == "What is $2 + 2$, said again?"
