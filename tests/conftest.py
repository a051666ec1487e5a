"""Shared fixtures: `alice` the student, `bob` another student, `prof` the faculty member, and a small course.

Tests run against the real database of the run (SQLite or PostgreSQL, by DATABASE_URL).
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from courses.format import ConceptSpec, CourseSpec, ItemSpec
from courses.params import CourseSettings

if TYPE_CHECKING:
    from courses.importers import ImportResult

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TUTOR_SHARED_DATA", REPO.parent / "shared" / "data"))
TEST_OUTPUT = REPO / "test-output"


@functools.cache
def _oatutor_parsed(archive: Path) -> ImportResult:
    from courses.importers.oatutor import load_oatutor

    return load_oatutor(archive)


def oatutor_import(archive: Path) -> ImportResult:
    """An OATutor archive as the importer reads it: parsed once per test process (a College Algebra parse takes
    ~15 s), a fresh copy each call, since tests change what they import."""
    return copy.deepcopy(_oatutor_parsed(Path(archive)))


def oatutor_course(shared_data: Path, name: str):  # -> courses.models.Course
    """One of the shared OATutor courses ("openstax-college-algebra", "openstax-introductory-stats") imported into the
    test database, as a faculty member's import makes it; the test is skipped where the shared data is missing."""
    from courses.services import course_import

    archive = shared_data / "oatutor" / f"{name}.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} not found")
    result = oatutor_import(archive)
    return course_import(spec=result.spec, assets=result.assets)


def small_course_spec(slug: str = "algebra") -> CourseSpec:
    """Three concepts in a chain, each with a pain-first problem, a guess, an explanation and items of each kind."""

    def items(prefix: str) -> list[ItemSpec]:
        return [
            ItemSpec(id=f"{prefix}-num", kind="numeric", prompt="What is $2 + 2$?", answer=4, tolerance=0.01,
                     hints=["Count on from 2.", "2, 3, 4 ..."], difficulty=-1.0, solution="$2 + 2 = 4$"),
            ItemSpec(id=f"{prefix}-mc", kind="multiple_choice", prompt="Pick the derivative of $x^2$.",
                     answer="2x", choices=["x", "2x", "x^2"], hints=["Bring the exponent down."], difficulty=0.0),
            ItemSpec(id=f"{prefix}-sym", kind="symbolic", prompt="Differentiate $x^3$.", answer="3*x**2",
                     variables=["x"], hints=["Power rule."], feedback={"x**2": "Keep the coefficient 3."},
                     difficulty=0.8),
        ]

    return CourseSpec(
        slug=slug, title=f"Test {slug}", description="A course for tests.",
        settings=CourseSettings(placement_questions=0),
        concepts=[
            ConceptSpec(slug="a", title="Concept A", lesson="Lesson A.", pain_first="Pain **A**.",
                        guess_first="Guess A?", guess_choices=["yes", "no"],
                        explanation="Explanation of A in several words, with $x^2$ math.", items=items(f"{slug}-a")),
            ConceptSpec(slug="b", title="Concept B", prerequisites=["a"], lesson="Lesson B.", pain_first="Pain B.",
                        guess_first="Guess B?", explanation="Explanation of B.", items=items(f"{slug}-b")),
            ConceptSpec(slug="c", title="Concept C", prerequisites=["b"], lesson="Lesson C.", pain_first="Pain C.",
                        guess_first="Guess C?", explanation="Explanation of C.", items=items(f"{slug}-c")),
        ],
    )


@pytest.fixture(autouse=True)
def _no_cached_courses():
    """Every test starts with nothing a process keeps between requests (courses, indexes, predictors)."""
    from tutor import caches

    caches.clear()
    yield
    caches.clear()


@pytest.fixture(autouse=True)
def _background_jobs_inline(settings):
    """A job started in a test has finished when the call that started it returns (no thread outlives the test)."""
    settings.TUTOR_BACKGROUND_INLINE = True


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """Tests create users by the hundred; the production hasher costs most of a second each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings):
    """Rate-limit counters live in the cache (Redis in suite 2): each test gets its own key prefix, so it
    starts with none. (Not cache.clear(): on Redis that would flush the database other runs share.)"""
    import uuid

    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}


@pytest.fixture(autouse=True)
def _rate_windows_start_with_the_test(monkeypatch):
    """The limiter counts in fixed windows of the clock (a minute, an hour). A test that makes three calls against a
    limit of two was let through when a minute turned between its calls (CI run 43): the limiter's clock starts 20 s
    into a window of every period that divides an hour, and runs at the real pace from there."""
    import time
    from types import SimpleNamespace

    from tutor import ratelimit

    start, began = (time.time() // 3600) * 3600 + 20, time.monotonic()
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: start + time.monotonic() - began))


@pytest.fixture
def course(db):
    from courses.services import course_import

    return course_import(spec=small_course_spec())


@pytest.fixture
def other_course(db):
    from courses.services import course_import

    return course_import(spec=small_course_spec("geometry"))


def _user(username: str, **extra):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username=username, password="pw-" + username + "-123", **extra)


@pytest.fixture
def alice(db):
    return _user("alice")


@pytest.fixture
def bob(db):
    return _user("bob")


@pytest.fixture
def prof(db, course):
    from courses.models import Membership
    from courses.services import membership_set

    user = _user("prof", is_staff=True)
    membership_set(user=user, course=course, role=Membership.Role.FACULTY)
    return user


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set TUTOR_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def test_output(request) -> Path:
    """A folder under test-output/ named after the test, for screenshots and logs."""
    path = TEST_OUTPUT / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(autouse=True)
def _no_background_warm_up(settings):
    """The TA warm-up thread would outlive a test's database; tests that need the index build it themselves. The
    teach-back scorer's background load is tested on its own."""
    settings.TUTOR_TA_WARMUP = False
    settings.TUTOR_TEACHBACK_WARMUP = False
    # Questions wait for the embedding model (hybrid search) whichever test loads it first; the lexical answers given
    # while it loads are tested on their own (tests/tutor/test_ta_services.py).
    settings.TUTOR_TA_EMBED_WAIT_S = 600.0



@pytest.fixture(autouse=True)
def _no_refitted_model(settings, tmp_path_factory):
    """A model refitted on this machine (var/learner_model) must not change what the tests' sessions choose."""
    settings.LEARNER_MODEL_DIR = tmp_path_factory.mktemp("learner_model")


@pytest.fixture(scope="session", autouse=True)
def _end_other_connections_before_teardown(django_db_setup, django_db_blocker):
    """The session socket's database threads keep their connections open, and PostgreSQL refuses to drop a test
    database that others are using (it was left behind, one per run): end them before pytest-django drops it."""
    yield
    from django.db import connection

    # a chaos scenario (tests/chaos) points the settings at its own throwaway cluster and back at the configured,
    # non-test database: a run of only those has no test database of ours to free
    if connection.vendor != "postgresql" or not connection.settings_dict["NAME"].startswith("test_"):
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")


# Tests that start servers of their own (a PostgreSQL cluster, daphne, Celery workers, llama.cpp) run on one
# xdist worker each group, one after another: two of them at once would fight over ports and cores.
SERIAL_GROUPS = {"tests/chaos/": "servers", "tests/security/test_noisy_neighbour.py": "servers",
                 "tests/inference/": "llama"}


# Fixtures through which a test reaches the database (or, through live servers, Redis and the channel layer).
DATABASE_FIXTURES = {"db", "transactional_db", "live_server_url", "client", "admin_client"}
SERVER_TESTS = ("tests/chaos/", "tests/security/test_noisy_neighbour.py")


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by these markers
def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath)).relative_to(REPO).as_posix()
        group = next((g for prefix, g in SERIAL_GROUPS.items() if path.startswith(prefix)), None)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
        # Nothing here that PostgreSQL or Redis could change: `make test` runs it on the embedded suite only.
        if not (item.get_closest_marker("django_db") or DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
                or path.startswith(SERVER_TESTS)):
            item.add_marker(pytest.mark.no_database)
