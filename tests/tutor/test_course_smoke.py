"""The course walk-through (`manage.py course_smoke`) on the demo course and on a real imported course nobody here
wrote (OATutor College Algebra, a sample of its concepts): 0 errors, and every key its own checker accepts."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from courses.models import Course, Item
from tests.conftest import REPO

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ALGEBRA = Path(os.environ.get("TUTOR_SHARED_DATA", REPO.parent / "shared" / "data")) / "oatutor" / \
    "openstax-college-algebra.tar.gz"


@pytest.fixture
def quick_streams(settings):
    settings.TUTOR_STREAM_DELAY_S = 0.0


@pytest.fixture
def index_left_to_a_worker(settings):
    """The TA-bot's index of an imported course is left to a Celery worker that has not reached it yet (the
    message waits in the broker), as right after an import: the TA-bot answers by keyword search meanwhile. Not
    built inline here: embedding a whole course on two cores takes minutes."""
    from tutor.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    before, app.conf.task_always_eager = app.conf.task_always_eager, False
    yield
    app.conf.task_always_eager = before


def _smoke(*args: str) -> str:
    out = io.StringIO()
    try:
        call_command("course_smoke", *args, stdout=out)
    except CommandError as exc:
        raise AssertionError(f"{exc}\n{out.getvalue()}") from None
    return out.getvalue()


def test_the_demo_course_walks_end_to_end_with_no_errors(quick_streams, settings):
    settings.TUTOR_BACKGROUND_INLINE = False  # as on the command line: the import's TA index builds on a thread
    out = _smoke(str(REPO / "courses" / "demo" / "derivatives"))
    assert "concepts reached 15 of 15" in out and "errors 0" in out and "unanswerable keys 0" in out
    # the import's TA index job has ended: a process that exits under it aborts
    assert not [t for t in threading.enumerate() if t.name.startswith("job-")]
    assert "placement: 8 answers" in out and "skipped it: yes" in out
    assert "knowledge map: HTTP 200" in out and "TA-bot: not asked" not in out


@pytest.mark.skipif(not ALGEBRA.is_file(), reason=f"OATutor archive not found at {ALGEBRA}")
def test_college_algebra_walks_a_sample_of_its_concepts_with_no_errors(quick_streams, index_left_to_a_worker):
    out = _smoke(str(ALGEBRA), "--concepts", "20")
    assert "concepts reached 20 of 282" in out and "errors 0" in out, out
    assert "unanswerable keys 0" in out, out
    assert "knowledge map: HTTP 200" in out


def test_a_key_its_checker_refuses_is_listed_with_where_it_came_from(quick_streams, index_left_to_a_worker):
    call_command("import_course", str(REPO / "courses" / "demo" / "derivatives"), stdout=io.StringIO())
    item = Item.objects.get(slug="power-rule-1")
    item.answer = "7*x**6 +"  # a typo in the key: no student could ever be graded right
    item.save(update_fields=["answer"])
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 unanswerable keys"):
        call_command("course_smoke", "derivatives", "--concepts", "1", "--no-ta", stdout=out)
    assert "unanswerable power-rule-1 (power-rule) at concepts/power-rule.md, item power-rule-1" in out.getvalue()
    assert Course.objects.filter(slug="derivatives").exists()
