"""No answer, template, generated item or import from one person can hold up anyone else.

One student sends a fuzz corpus (huge exponents, towers of powers, factorials, 100k-character strings, deep
nesting, Unicode look-alikes, LaTeX) through the session socket while other students answer normally: every
message gets its reply, nothing fails, every answer too large to check is stored (ungraded, counted neither way)
and every other answer is either stored or refused with a message saying what to fix. Timings are for
benchmarks/noisy_neighbour.py; here nothing is timed.
"""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courses import checking
from courses.checking import OVER_BUDGET_MESSAGE
from courses.models import Item
from tutor import services
from tutor.models import Attempt, KnowledgeRecord, TutorSession
from tutor.routing import websocket_urlpatterns

app = URLRouter(websocket_urlpatterns)
_ITEM = re.compile(r'name="item" value="(\d+)"')
_STEP = re.compile(r'name="step" value="([0-9a-f-]{36})"')
_PHASE = re.compile(r'data-phase="(\w+)"')

LOOKALIKES = ["х", "у", "ｘ", "²", "−", "×", "π", "√", "\u200b", "ⅹ", "𝑥", "０", "٣", "∞", "½"]
LATEX = [r"\frac{", "}{", "}", r"\sqrt{", r"\left(", r"\right)", "^{", r"\cdot", r"\begin{matrix}", "$$", "\\"]
BOMBS = ["1e999999", "9^9^9^9", "2**2**2**2**2", "99999!", "(10!)!", "factorial(factorial(9))", "x" * 100_000,
         "(" * 500 + "x" + ")" * 500, "10^(10^20)", "exp(exp(exp(exp(1000))))", "1" * 5000, "x^(10^10)",
         r"\frac{" * 300 + "1" + "}" * 300, "0,25", "7 m/s", "1/0", "y = 3x - 1", "х^2"]


def fuzz_answer() -> st.SearchStrategy[str]:
    pieces = st.sampled_from(["x", "2", "9", "^", "**", "!", "(", ")", "e", "1e", "999", "/", "0", ",", "=", " ",
                              "sin(", "log(", "*", "-", "+", ".", *LOOKALIKES, *LATEX])
    return st.one_of(
        st.sampled_from(BOMBS),
        st.lists(pieces, max_size=40).map("".join),
        st.builds(lambda a, b, c: f"{a}^{b}^{c}", st.integers(2, 99), st.integers(2, 99), st.integers(2, 99)),
        st.builds(lambda n: f"1e{n}", st.integers(-10**7, 10**7)),
        st.builds(lambda n: f"{n}!", st.integers(0, 10**6)),
        st.builds(lambda k: "(" * k + "x+1" + ")" * k, st.integers(1, 400)),
        st.builds(lambda s, n: s * n, st.sampled_from(["x", "9", "(", "^", "\\frac{"]), st.integers(1, 100_000)),
        st.text(max_size=60),
    )


async def _connect(user, course) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(app, f"/ws/learn/{course.slug}/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _reply(communicator: WebsocketCommunicator) -> str:
    """The stage or the notice that answers the last message (the generous timeout only catches a hang)."""
    while True:
        frame = await communicator.receive_from(timeout=120)
        if "data-phase" in frame or 'id="notice"' in frame:
            return frame


def _practice(user, course, item: Item | None = None) -> TutorSession:
    """Past the guess and the explanation, with `item` (or the policy's choice) on screen."""
    services.guess_record(user=user, course=course, client_id=uuid.uuid4(), text="y")
    session = services.practice_start(user=user, course=course)
    if item is not None:
        TutorSession.objects.filter(pk=session.pk).update(item=item, item_seed=0)
        session.refresh_from_db()
    return session


def _right_answer(item_id: int) -> str:
    item = Item.objects.get(pk=item_id)
    return str(item.answer)


class Student:
    def __init__(self, user, course) -> None:
        self.user, self.course = user, course
        self.socket: WebsocketCommunicator | None = None
        self.stage = ""
        self.sent: dict[str, str] = {}  # client_id -> answer
        self.refused: dict[str, str] = {}  # client_id -> the notice that refused it

    async def start(self) -> None:
        self.socket = await _connect(self.user, self.course)
        self.stage = await _reply(self.socket)

    async def to_practice(self) -> int:
        """Past feedback (and any explanation) to an item on screen; its id."""
        for _ in range(10):
            phase = _PHASE.search(self.stage)
            if phase and phase.group(1) in ("practice", "placement") and _ITEM.search(self.stage):
                return int(_ITEM.search(self.stage).group(1))
            if phase and phase.group(1) == "feedback":
                await self.socket.send_json_to({"action": "next", "step": _STEP.search(self.stage).group(1)})
            elif phase and phase.group(1) == "pain":
                await self.socket.send_json_to({"action": "guess", "client_id": str(uuid.uuid4()), "guess": "y"})
            else:  # the explanation: start practice once it is done
                while 'id="start-practice"' not in self.stage:
                    self.stage = await self.socket.receive_from(timeout=120)
                await self.socket.send_json_to({"action": "practice", "step": _STEP.search(self.stage).group(1)})
            self.stage = await _reply(self.socket)
        raise AssertionError(f"never reached an item: {self.stage[:300]}")

    async def answer(self, text: str | None = None) -> str:
        item = await self.to_practice()
        if text is None:
            text = await database_sync_to_async(_right_answer)(item)
        client_id = str(uuid.uuid4())
        self.sent[client_id] = text
        await self.socket.send_json_to({"action": "answer", "client_id": client_id, "item": str(item), "answer": text})
        frame = await _reply(self.socket)
        if 'id="notice"' in frame and "data-phase" not in frame:
            self.refused[client_id] = re.sub(r"<[^>]+>", " ", frame)
        else:
            self.stage = frame
        return frame

    async def stop(self) -> None:
        await self.socket.disconnect()


def _stored(client_ids) -> dict[str, Attempt]:
    return {str(a.client_id): a for a in Attempt.objects.filter(client_id__in=list(client_ids))}


@pytest.fixture
def enrolled(course, settings, django_user_model):
    """`n` students enrolled in the course, with no placement and no pauses in the streamed explanation."""
    settings.TUTOR_STREAM_DELAY_S = 0.0
    settings.TUTOR_RATELIMIT_ANSWERS = 0
    settings.TUTOR_RATELIMIT_UNCHECKED = 0

    def make(n: int, prefix: str) -> list:
        users = [django_user_model.objects.create_user(username=f"{prefix}{i}", password="pw-123-abc")
                 for i in range(n)]
        for user in users:
            services.enrollment_create(user=user, course=course)
        return users

    return make


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_huge_exponent_answer_is_stored_and_does_not_block_other_students(enrolled, course):
    attacker, other = await database_sync_to_async(enrolled)(2, "student")
    symbolic = await database_sync_to_async(Item.objects.get)(slug__endswith="a-sym")
    await database_sync_to_async(_practice)(attacker, course, symbolic)
    await database_sync_to_async(_practice)(other, course, symbolic)
    blob_before = await database_sync_to_async(lambda: KnowledgeRecord.objects.get(user=attacker).blob)()
    mallory, bob = Student(attacker, course), Student(other, course)
    await mallory.start()
    await bob.start()
    bomb, normal = asyncio.ensure_future(mallory.answer("1e999999")), asyncio.ensure_future(bob.answer("3x^2"))
    bomb_frame, normal_frame = await asyncio.gather(bomb, normal)
    assert OVER_BUDGET_MESSAGE in bomb_frame
    assert 'data-phase="feedback"' in normal_frame and "Correct" in normal_frame
    (bomb_id,), (normal_id,) = mallory.sent, bob.sent
    stored = await database_sync_to_async(_stored)([bomb_id, normal_id])
    assert stored[bomb_id].ungraded and not stored[bomb_id].correct and stored[bomb_id].answer == "1e999999"
    assert stored[normal_id].correct and not stored[normal_id].ungraded
    # counted neither way: the attacker's knowledge is as it was, and the same item is still on screen
    assert await database_sync_to_async(lambda: KnowledgeRecord.objects.get(user=attacker).blob)() == blob_before
    phase = await database_sync_to_async(lambda: TutorSession.objects.get(user=attacker).phase)()
    assert phase == TutorSession.Phase.PRACTICE
    await mallory.stop()
    await bob.stop()


SLOW = "(x^999+1)/(x^998-1)-(x^997+2)/(x^996-3)"  # passes the limits on the text; sympy takes minutes


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_check_that_runs_to_its_time_limit_holds_up_only_its_own_student(enrolled, course, monkeypatch):
    """The slow answer is sent first; the other student's answer, sent while it is being checked, is answered
    first: the check does not hold the database thread (one, on SQLite) that every answer is recorded on."""
    monkeypatch.setattr(checking, "CHECK_TIMEOUT_S", 3.0)
    checking._check_memoised.cache_clear()
    attacker, other = await database_sync_to_async(enrolled)(2, "student")
    symbolic = await database_sync_to_async(Item.objects.get)(slug__endswith="a-sym")
    await database_sync_to_async(_practice)(attacker, course, symbolic)
    await database_sync_to_async(_practice)(other, course, symbolic)
    mallory, bob = Student(attacker, course), Student(other, course)
    await mallory.start()
    await bob.start()
    order: list[str] = []

    async def answer(student: Student, name: str, text: str, after: float) -> str:
        await asyncio.sleep(after)
        frame = await student.answer(text)
        order.append(name)
        return frame

    slow, normal = await asyncio.gather(answer(mallory, "mallory", SLOW, 0), answer(bob, "bob", "3x^2", 0.5))
    assert order == ["bob", "mallory"]
    assert OVER_BUDGET_MESSAGE in slow and "Correct" in normal
    await mallory.stop()
    await bob.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_student_who_keeps_sending_answers_too_large_to_check_is_asked_to_wait(enrolled, course, settings):
    (attacker,) = await database_sync_to_async(enrolled)(1, "student")
    settings.TUTOR_RATELIMIT_UNCHECKED = 2
    symbolic = await database_sync_to_async(Item.objects.get)(slug__endswith="a-sym")
    await database_sync_to_async(_practice)(attacker, course, symbolic)
    mallory = Student(attacker, course)
    await mallory.start()
    frames = [await mallory.answer(bomb) for bomb in ("1e999999", "9^9^9^9", "99999!")]
    assert OVER_BUDGET_MESSAGE in frames[0] and OVER_BUDGET_MESSAGE in frames[1]
    assert "please wait a minute" in frames[2]
    await mallory.stop()


FUZZ_STUDENTS = 20


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.django_db(transaction=True)
@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(corpus=st.lists(fuzz_answer(), min_size=8, max_size=12))
def test_fuzzed_answers_from_one_student_leave_twenty_others_answering(enrolled, course, monkeypatch, corpus):
    """One socket sends the corpus while twenty students answer right, all at once; then every message has had
    its reply, every answer too large to check is stored ungraded, the rest are stored or refused with a reason,
    and every normal answer is stored and graded."""
    monkeypatch.setattr(checking, "CHECK_TIMEOUT_S", 1.0)  # an overrun costs the test 1 s, not 3
    tag = uuid.uuid4().hex[:6]
    attacker, *others = enrolled(FUZZ_STUDENTS + 1, f"f{tag}-")
    symbolic = Item.objects.get(slug__endswith="a-sym")
    _practice(attacker, course, symbolic)

    async def run() -> tuple[Student, list[Student]]:
        mallory = Student(attacker, course)
        students = [Student(user, course) for user in others]
        for s in (mallory, *students):
            await s.start()

        async def attack() -> None:
            for text in corpus:
                await mallory.answer(text)

        async def learn(student: Student) -> None:
            for _ in range(2):
                await student.answer()

        await asyncio.gather(attack(), *(learn(s) for s in students))
        for s in (mallory, *students):
            await s.stop()
        return mallory, students

    mallory, students = asyncio.run(run())
    stored = _stored(mallory.sent)
    for client_id, text in mallory.sent.items():
        if client_id in stored:
            attempt = stored[client_id]
            assert attempt.answer == text[:300]
            if attempt.ungraded:
                assert attempt.feedback == OVER_BUDGET_MESSAGE and not attempt.correct
        else:
            notice = mallory.refused[client_id]
            assert "could not be read" not in notice, (text[:80], notice)  # a reason, not a generic failure
            assert notice.strip(), text[:80]
    for student in students:
        assert not student.refused, student.refused
        graded = _stored(student.sent)
        assert set(graded) == set(student.sent)
        assert all(not a.ungraded for a in graded.values())


# --- the same corpus as template parameters, generated items and imports ------------------------------------

CONTENT = settings(max_examples=20, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                          HealthCheck.data_too_large])


@pytest.fixture
def short_budgets(monkeypatch):
    """An overrun costs the test a second, not the production budget."""
    from courses import item_templates
    from inference import verify

    monkeypatch.setattr(item_templates, "VARIANT_TIMEOUT_S", 1.0)
    monkeypatch.setattr(item_templates, "VERIFY_TIMEOUT_S", 2.0)
    monkeypatch.setattr(verify, "VERIFY_TIMEOUT_S", 2.0)
    monkeypatch.setattr(verify, "EVALUATE_TIMEOUT_S", 1.0)


@pytest.mark.slow
@CONTENT
@given(answer=fuzz_answer(), high=st.sampled_from([9, 10**3, 10**6, 10**12]))
def test_a_fuzzed_template_is_refused_or_verified_never_a_hang(short_budgets, answer, high):
    from courses.format import ItemSpec
    from courses.item_templates import TemplateError, instantiate, verify_template

    item = ItemSpec(id="fuzz", kind="template", prompt="Compute {a} with {n}.", answer=answer,
                    params={"a": [2, high], "n": [2, high]}, variables=["x"])
    assert isinstance(verify_template(item, seeds=range(2)), list)
    try:
        instantiate(item, 0)
    except TemplateError:
        pass


@pytest.mark.slow
@CONTENT
@given(answer=fuzz_answer(), check=fuzz_answer())
def test_a_fuzzed_generated_item_gets_a_verdict_never_a_hang(short_budgets, answer, check):
    from inference.verify import starting_difficulty, verify

    candidate = {"kind": "symbolic", "prompt": "Differentiate x^3 with respect to x.", "answer": answer,
                 "check": check, "variables": ["x"]}
    assert verify(candidate).status in ("verified", "review", "rejected")
    assert -2.0 <= starting_difficulty(candidate) <= 2.0


@pytest.mark.slow
@CONTENT
@given(key=fuzz_answer())
def test_a_fuzzed_answer_key_in_an_import_is_refused_with_its_file_or_imported(tmp_path_factory, key):
    from courses.format import CourseFormatError
    from courses.importers.gift import load_gift
    from courses.importers.oatutor import load_oatutor
    from tests.courses.test_oatutor_import import HINTS, numeric, write_source

    try:
        load_gift(f"::Q1:: How much? {{#{key}}}\n\n::Q2:: What? {{={key}}}\n", course_slug="g", title="G")
    except CourseFormatError as exc:
        assert exc.message
    root = tmp_path_factory.mktemp("oatutor") / "source"
    write_source(root, {"p1": {"steps": {"p1a": (numeric(f"$${key}$$"), ["adding"], HINTS),
                                         "p1b": (numeric(key), ["adding"], [])}}}, courses=["Course One"])
    try:
        load_oatutor(root)
    except CourseFormatError as exc:
        assert exc.message


def test_a_numeric_key_too_large_to_check_is_refused_at_import_naming_the_line():
    from courses.format import CourseFormatError
    from courses.importers.gift import load_gift

    with pytest.raises(CourseFormatError, match="too large to check") as caught:
        load_gift("::Q1:: How much? {#4}\n\n::Q2:: How much? {#1e999999}\n", course_slug="g", title="G")
    assert caught.value.line == 3


def test_a_latex_key_nested_too_deep_is_an_import_issue_not_a_crash(tmp_path):
    from courses.importers.oatutor import load_oatutor
    from tests.courses.test_oatutor_import import numeric, write_source

    root = write_source(tmp_path / "source", {"p1": {"steps": {
        "p1a": (numeric("$$4$$"), ["adding"], []),
        "p1b": (numeric("$$" + "{" * 3000 + "x" + "}" * 3000 + "$$"), ["adding"], []),
        "p1c": (numeric("$$" + r"\sqrt{" * 200 + "x" + "}" * 200 + "$$"), ["adding"], [])}}}, courses=["Course One"])
    result = load_oatutor(root)
    assert sum(1 for issue in result.report if issue.category == "too-large") == 2
