"""What the student's pages show, without a browser: maths as KaTeX reads it (choices, echoes, an explanation typeset
block by block as it streams), where the student is in the course, a map with a text alternative that stays the
width of a page on a large course, a landing page for visitors, a favicon, and faculty told that a save worked."""

from __future__ import annotations

import re

import pytest

from courses.format import ConceptSpec, CourseSpec, ItemSpec
from courses.services import course_import
from tutor import services
from tutor.display import choice, echo_html, finished_blocks, inline_html, python_to_tex
from tutor.selectors import knowledge_map, stage_context

# --- choices and echoes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("python", "tex"), [
    ("x**6", "x^{6}"), ("3*x**2 + 1", "3 x^{2} + 1"), ("x**(1/2)", "x^{1/2}"), ("zoo", r"\tilde{\infty}"),
    ("sqrt(x**3 + 1)", r"\sqrt{x^{3} + 1}"), ("Abs(x - 1)", r"\left|x - 1\right|"), ("2*3", r"2 \cdot 3"),
    ("sin(x)**2", r"\sin(x)^{2}"), ("-oo", r"-\infty"),
])
def test_sympys_python_form_is_shown_as_tex(python, tex):
    assert python_to_tex(python) == tex


def test_an_echo_is_maths_for_kaTeX_whatever_form_the_answer_was_stored_in():
    assert echo_html(normalized="x**6", answer="x^6", kind="symbolic") == '<span class="math inline">x^{6}</span>'
    assert echo_html(normalized="7 x^{6}", answer="7x^6", kind="symbolic") == '<span class="math inline">7 x^{6}</span>'
    assert "zoo" not in echo_html(normalized="zoo", answer="1/0", kind="symbolic")
    chosen = echo_html(normalized="\\text{The line through \\$(a, f(a))\\$}", answer="The line through $(a, f(a))$",
                       kind="multiple_choice")
    assert chosen == 'The line through <span class="math inline">(a, f(a))</span>'  # as the choice reads
    assert echo_html(normalized="\\text{it grows}", answer="it grows", kind="short_text") == \
        '<span class="math inline">\\text{it grows}</span>'
    assert echo_html(normalized="<b>x</b>", answer="", kind="short_text") == "&lt;b&gt;x&lt;/b&gt;"


def test_a_choice_keeps_its_value_and_reads_as_maths_in_a_line():
    display = choice("$$\\log_{2}\\left(8\\right)=3$$")
    assert display.value == "$$\\log_{2}\\left(8\\right)=3$$"  # what the form sends, compared with the key
    assert display.html == '<span class="math inline">\\log_{2}\\left(8\\right)=3</span>'
    assert inline_html("g(x)=x**4,f(x)=8-x") == '<span class="math inline">g(x)=x^{4},f(x)=8-x</span>'
    assert inline_html("Multiply 2*x by 3") == "Multiply 2*x by 3"  # prose stays prose
    assert inline_html("**two** ways") == "<strong>two</strong> ways"
    assert "<script" not in inline_html("<script>alert(1)</script>")
    # several formulas, or one inside words: each set inline, none as a display block breaking the label
    assert inline_html("$$x=2$$ or $$x=-2$$") == \
        '<span class="math inline">x=2</span> or <span class="math inline">x=-2</span>'
    assert inline_html("{$$4, 0, -4$$}") == '{<span class="math inline">4, 0, -4</span>}'


# --- the explanation, block by block ---------------------------------------------------------------------------


def test_a_block_is_finished_once_the_next_one_has_started():
    text = "There are **two** facts.\n\n$$m = \\frac{a}{b}$$\n\n- one\n- two\n\nSo it is."
    ends = {text[:finished_blocks(text[:n])] for n in range(len(text) + 1)}
    assert ends == {"", "There are **two** facts.\n\n", "There are **two** facts.\n\n$$m = \\frac{a}{b}$$\n\n",
                    "There are **two** facts.\n\n$$m = \\frac{a}{b}$$\n\n- one\n- two\n\n"}


def test_a_blank_line_inside_a_formula_a_fence_or_a_list_does_not_cut_it():
    assert finished_blocks("a\n\n$$\nx\n\ny\n$$\n\nb") == len("a\n\n$$\nx\n\ny\n$$\n\n")
    assert finished_blocks("```\ncode\n\nmore\n```\n\nb") == len("```\ncode\n\nmore\n```\n\n")
    assert finished_blocks("- x\n\n- y\n\nz") == len("- x\n\n- y\n\n")
    assert finished_blocks("- x\n\n- y") == 0




# --- where the student is, and the map ---------------------------------------------------------------------------


def test_the_stage_says_where_the_student_is_in_the_course(alice, course):
    from learner_model.knowledge import ConceptState, KnowledgeState
    from tutor.models import KnowledgeRecord, TutorSession

    session = services.enrollment_create(user=alice, course=course)
    progress = stage_context(session=session)["progress"]
    assert (progress.position, progress.total, progress.mastered) == (1, 3, 0)
    state = KnowledgeState(concepts={"a": ConceptState(0.99, 5, 5), "b": ConceptState(0.5, 2, 1)})
    KnowledgeRecord.objects.filter(user=alice, course=course).update(blob=state.to_blob())
    TutorSession.objects.filter(user=alice).update(concept=course.concepts.get(slug="b"))
    progress = stage_context(session=services.session_get(user=alice, course=course))["progress"]
    assert (progress.position, progress.total, progress.mastered) == (2, 3, 1)


def _wide_course(n: int = 30):
    long = "A concept whose title is far too long to fit on one line of the knowledge map, so it wraps"
    return course_import(spec=CourseSpec(slug="wide", title="Wide", concepts=[
        ConceptSpec(slug=f"c{i}", title=long if i == 7 else f"Concept {i}", lesson="L.",
                    prerequisites=["c0"] if i else [],
                    items=[ItemSpec(id=f"c{i}-n", kind="numeric", prompt="1?", answer=1)]) for i in range(n)]))


def test_a_wide_course_maps_down_the_page_with_whole_titles_and_a_list_in_course_order(alice, db):
    course = _wide_course()
    services.enrollment_create(user=alice, course=course)
    drawn = knowledge_map(user=alice, course=course)
    assert drawn["width"] <= 1000  # 29 concepts on one layer wrap onto rows of at most four
    assert len({n.y for n in drawn["nodes"]}) == 1 + 8
    long = next(n for n in drawn["nodes"] if n.slug == "c7")
    assert " ".join(long.lines) == long.title and len(long.lines) > 1
    assert [n.slug for n in drawn["in_order"]] == [f"c{i}" for i in range(30)]
    assert drawn["in_order"][0].state == "Ready to learn"
    assert drawn["in_order"][1].state == "First: Concept 0"


def test_a_concept_without_questions_is_shown_grey_and_neither_counted_nor_waited_for(client, alice, db):
    # Imported courses have them (Intro Stats: 18 lesson objectives with no problem): they can never be mastered,
    # so "0 of 114 mastered" could never reach 114, and what came after one was never "ready".
    def item(slug):
        return [ItemSpec(id=f"{slug}-1", kind="numeric", prompt="1?", answer=1)]

    course = course_import(spec=CourseSpec(slug="holes", title="Holes", concepts=[
        ConceptSpec(slug="a", title="Alpha", lesson="L.", items=item("a")),
        ConceptSpec(slug="empty", title="Nothing to practise", lesson="L.", prerequisites=["a"]),
        ConceptSpec(slug="b", title="Beta", lesson="L.", prerequisites=["empty"], items=item("b")),
        ConceptSpec(slug="c", title="Gamma", lesson="L.", prerequisites=["empty"], items=item("c"))]))
    services.enrollment_create(user=alice, course=course)
    drawn = knowledge_map(user=alice, course=course)
    node = {n.slug: n for n in drawn["nodes"]}
    assert (drawn["mastered_count"], drawn["total"], drawn["unpractised"]) == (0, 3, 1)
    assert not node["empty"].practised and node["empty"].state == "No practice questions yet"
    assert not node["empty"].ready and node["empty"].colour == "#e4e7ec"
    assert node["b"].state == "First: Alpha"  # what the tutor asks for first: through the empty concept
    client.force_login(alice)
    page = client.get(f"/learn/{course.slug}/map/").content.decode()
    assert "0 of 3 concepts mastered (1 more has no practice questions yet" in page
    assert 'aria-label="Nothing to practise: no practice questions yet"' in page
    stage = stage_context(session=services.session_get(user=alice, course=course))
    taught = ["a", "b", "c"]  # "concept 2 of 3": among the concepts the tutor teaches, as the map counts them
    assert stage["progress"].total == 3 and stage["progress"].position == taught.index(stage["concept"].slug) + 1


def test_the_map_page_lists_every_concept_linked_with_mastery_and_state(client, alice, course):
    services.enrollment_create(user=alice, course=course)
    client.force_login(alice)
    page = client.get(f"/learn/{course.slug}/map/").content.decode()
    assert 'role="img"' not in page
    rows = re.findall(r'<tr data-slug="(\w+)"><th scope="row"><a href="(/learn/[^"]+)">', page)
    assert rows == [(s, f"/learn/{course.slug}/concept/{s}/") for s in ("a", "b", "c")]
    assert page.count(f'<a href="/learn/{course.slug}/concept/') == 6  # each node and each row, linked


# --- visitors, the favicon, faculty ---------------------------------------------------------------------------


def test_a_visitor_sees_what_the_tutor_is_with_sign_up_and_log_in(client, db):
    page = client.get("/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'href="/accounts/signup/"' in text and 'href="/accounts/login/"' in text


def test_the_favicon_is_found(client, db):
    found = client.get("/favicon.ico", follow=True)
    assert found.status_code == 200
    assert b"".join(found.streaming_content if found.streaming else [found.content])[:4] == b"\x00\x00\x01\x00"


def test_faculty_are_told_a_save_worked(client, prof, course):
    from courses.forms import SettingsForm

    client.force_login(prof)
    unchanged = {k: v for k, v in SettingsForm.initial_for(course).items() if v is not None and v is not False}
    page = client.post(f"/teach/{course.slug}/settings/", unchanged, follow=True)
    assert re.search(r'class="notice saved[^"]*" role="status">Saved', page.content.decode()), page.content.decode()


def test_a_choice_that_is_a_sentence_is_echoed_with_one_full_stop(alice, db):
    import uuid

    from django.template.loader import render_to_string

    from courses.models import Item
    from tutor.models import TutorSession

    choices = ["$(-6, 1)$ is a solution to the system.", "$(-6, 1)$ is not a solution to the system."]
    course = course_import(spec=CourseSpec(slug="sentences", title="Sentences", concepts=[
        ConceptSpec(slug="a", title="Alpha", lesson="L.", items=[
            ItemSpec(id="a-1", kind="multiple_choice", prompt="Is it?", choices=choices, answer=choices[1]),
            ItemSpec(id="a-2", kind="multiple_choice", prompt="Which?", choices=["$x$", "$2x$"], answer="$2x$")])]))
    session = services.enrollment_create(user=alice, course=course)
    echoes = []
    for slug, answer in (("a-1", choices[1]), ("a-2", "$2x$")):
        item = Item.objects.get(concept__course=course, slug=slug)
        TutorSession.objects.filter(pk=session.pk).update(phase=TutorSession.Phase.PRACTICE, concept=item.concept,
                                                          item=item)
        services.attempt_record(user=alice, course=course, client_id=uuid.uuid4(), item_id=item.pk, answer=answer)
        context = stage_context(session=services.session_get(user=alice, course=course))
        context["client_id"] = "the-form-id"
        page = render_to_string("tutor/partials/stage.html", context)
        echoes.append(re.search(r'<p class="echo-line">(.*?)</p>', page, re.S).group(1))
    assert echoes[0].endswith("system.</span>") and ".." not in echoes[0]
    assert echoes[1].endswith("</span>.")  # an answer that is no sentence still gets its full stop
