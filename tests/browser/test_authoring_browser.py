"""Faculty author a concept with a prerequisite and an item in the browser, try the item as a student,
and a student then meets that concept and item in their session."""

import pytest

from courses.models import Concept, Item
from learner_model.knowledge import ConceptState, KnowledgeState
from tests.browser.pages import log_in
from tutor.models import KnowledgeRecord
from tutor.services import enrollment_create

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(autouse=True)
def celery_inline():
    """The import runs inside the request even when REDIS_URL points Celery at a broker (no worker here)."""
    from tutor.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def test_faculty_author_a_concept_and_item_that_a_student_then_practises(live_server_url, browser_page, course,
                                                                         prof, alice, test_output):
    page, base = browser_page, live_server_url
    page.add_init_script("document.addEventListener('htmx:wsAfterMessage',"
                         " function () { window.wsMessages = (window.wsMessages || 0) + 1; });")
    # alice has mastered b and c and nearly mastered a: once a is mastered, the new concept is the one ready
    enrollment_create(user=alice, course=course)
    state = KnowledgeState(concepts={"a": ConceptState(0.94, 6, 5), "b": ConceptState(0.99, 5, 5),
                                     "c": ConceptState(0.99, 5, 5)})
    KnowledgeRecord.objects.filter(user=alice, course=course).update(blob=state.to_blob())

    # --- faculty: home shows the teaching links
    log_in(page, base, "prof", "pw-prof-123")
    assert page.locator("text=Review queue").count() == 1
    page.screenshot(path=test_output / "0-home.png", full_page=True)
    page.click("text=Author")
    page.wait_for_selector("#concept-graph")
    page.screenshot(path=test_output / "1-course-graph.png", full_page=True)

    # --- a new concept with a prerequisite, lesson previewed live (Markdown + KaTeX)
    page.click("#new-concept")
    page.fill("#id_slug", "sums")
    page.fill("#id_title", "Derivative of a sum")
    page.check("input[name=prerequisites][value=a]")
    page.fill("#id_pain_first", "Find the slope of $x^2 + 5x$ at $x = 1$.")
    page.fill("#id_guess_first", "Is the derivative of a sum the sum of the derivatives?")
    page.fill("#id_guess_choices", "yes\nno")
    page.locator("#id_explanation").press_sequentially("Differentiate **term by term**: $(f+g)' = f' + g'$.")
    page.wait_for_selector("#preview-explanation .katex")
    assert "term by term" in page.inner_text("#preview-explanation strong")
    page.locator("#id_lesson").press_sequentially("Sums: $$\\frac{d}{dx}(x^2 + 5x) = 2x + 5$$")
    page.wait_for_selector("#preview-lesson .katex-display")
    # key ideas pasted, not typed (no key is pressed): their preview follows all the same
    page.fill("#id_key_ideas", "The derivative of a sum is the sum of the derivatives.\nSo $(x^2 + 5x)' = 2x + 5$.")
    page.wait_for_selector("#preview-key_ideas li:nth-child(2) .katex")
    page.screenshot(path=test_output / "2-concept-form-preview.png", full_page=True)
    page.click("#save-concept")
    page.wait_for_url(f"{base}/teach/{course.slug}/concepts/sums/")
    page.screenshot(path=test_output / "2b-concept-saved.png", full_page=True)
    concept = Concept.objects.get(course=course, slug="sums")
    assert list(concept.prerequisites.values_list("slug", flat=True)) == ["a"]

    # --- an item, tried as a student: right, then wrong with the authored misconception
    page.click("#new-item")
    page.fill("#id_slug", "sums-1")
    page.select_option("#id_kind", "symbolic")
    page.locator("#id_prompt").press_sequentially("Differentiate $x^2 + 5x$.")
    page.wait_for_selector("#preview-prompt .katex")
    page.fill("#id_answer", "2*x + 5")
    page.fill("#id_variables", "x")
    page.fill("#id_hints", "Differentiate each term.")
    page.fill("#id_feedback", "2*x => The derivative of 5x is 5, not 0.")
    page.click("#save-item")
    page.wait_for_selector("#try-it")
    item = Item.objects.get(slug="sums-1")
    assert item.status == "published" and item.answer == "2*x + 5"
    page.fill("#try-answer", "5 + 2x")
    page.click("#try-submit")
    page.wait_for_selector('#try-feedback[data-correct="1"]')
    page.screenshot(path=test_output / "3-try-right.png", full_page=True)
    page.fill("#try-answer", "2x")
    page.click("#try-submit")
    page.wait_for_selector('#try-feedback[data-correct="0"]')
    assert "derivative of 5x is 5" in page.inner_text("#try-feedback")
    page.screenshot(path=test_output / "4-try-wrong.png", full_page=True)

    # --- the graph shows the new arrow and refuses a cycle, naming it
    page.goto(f"{base}/teach/{course.slug}/")
    assert page.locator('#concept-graph path[data-edge="a->sums"]').count() == 1
    page.select_option("select[name=prerequisite]", "sums")
    page.select_option("select[name=concept]", "a")
    page.click("#add-edge")
    page.wait_for_selector("#graph-error")
    assert "a → sums → a" in page.inner_text("#graph-error") or "sums → a → sums" in page.inner_text("#graph-error")
    page.screenshot(path=test_output / "5-cycle-refused.png", full_page=True)

    # --- the student masters a, and the tutor moves her on to the new concept and its item
    log_in(page, base, "alice", "pw-alice-123")
    page.goto(f"{base}/learn/{course.slug}/")
    # the socket re-sends the stage when it connects: choose the guess after that, or the choice is swapped away
    page.wait_for_function("(window.wsMessages || 0) >= 1")
    page.wait_for_selector('#stage[data-phase="pain"]')
    page.check("input[name=guess][value=yes]")
    page.click("#commit-guess")
    page.wait_for_selector("#start-practice")
    page.click("#start-practice")
    page.wait_for_selector('#stage[data-phase="practice"]')
    served = Item.objects.get(pk=int(page.locator("section.item").get_attribute("id").removeprefix("item-")))
    if served.kind == "multiple_choice":
        page.check(f"input[name=answer][value='{served.answer}']")
    else:
        page.fill("#answer-input", str(served.answer))
    page.click("#submit-answer")
    page.wait_for_selector("#feedback")
    assert "On to the next concept" in page.inner_text("#next")
    page.click("#next")
    page.wait_for_selector('#stage[data-phase="pain"]')
    assert "Derivative of a sum" in page.inner_text("#stage h1")
    assert "because you know Concept A" in page.inner_text("#reason")
    page.screenshot(path=test_output / "6-student-new-concept.png", full_page=True)
    page.check("input[name=guess][value=yes]")
    page.click("#commit-guess")
    page.wait_for_selector("#start-practice")
    assert "term by term" in page.inner_text("#explanation")
    page.click("#start-practice")
    page.wait_for_selector(f"section#item-{item.pk}")
    page.fill("#answer-input", "2x + 5")
    page.screenshot(path=test_output / "7-student-new-item.png", full_page=True)
    page.click("#submit-answer")
    page.wait_for_selector("#feedback")
    assert "Correct" in page.inner_text("#feedback")
    page.screenshot(path=test_output / "8-student-correct.png", full_page=True)

    # --- back to faculty: the dashboard shows her, the review queue holds back a generated item, and the
    # exported course re-imports in place with live progress
    log_in(page, base, "prof", "pw-prof-123")
    page.goto(f"{base}/teach/{course.slug}/dashboard/")
    row = page.locator('#heatmap tr[data-student="alice"]')
    assert int(row.locator('td[data-concept="a"]').get_attribute("data-mastery")) >= 95
    assert int(row.locator('td[data-concept="sums"]').get_attribute("data-mastery")) > 20
    page.screenshot(path=test_output / "9-dashboard.png", full_page=True)

    Item.objects.filter(slug="algebra-c-mc").update(status=Item.Status.REVIEW, origin=Item.Origin.GENERATED)
    page.goto(f"{base}/teach/{course.slug}/review/")
    page.screenshot(path=test_output / "10-review-queue.png", full_page=True)
    page.click("#review-{} button.approve".format(Item.objects.get(slug="algebra-c-mc").pk))
    page.wait_for_selector("section.review-item.decided")
    assert Item.objects.get(slug="algebra-c-mc").status == Item.Status.PUBLISHED

    exported = page.request.get(f"{base}/teach/{course.slug}/export/").body()
    Item.objects.filter(slug="sums-1").update(prompt="Changed after the export")
    page.goto(f"{base}/teach/import/")
    page.set_input_files("#id_file", files=[{"name": f"{course.slug}.zip", "mimeType": "application/zip",
                                             "buffer": exported}])
    page.click("#start-import")
    page.wait_for_selector('#import-job[data-status="done"]')
    assert "Updated Test algebra: 4 concepts, 10 items" in page.inner_text("#import-job")
    page.screenshot(path=test_output / "11-import-done.png", full_page=True)
    assert Item.objects.get(slug="sums-1").prompt == "Differentiate $x^2 + 5x$."


def test_class_dashboard_shows_heatmap_stuck_students_and_misconceptions(live_server_url, browser_page, course,
                                                                         prof, alice, bob, test_output):
    import uuid

    from django.contrib.auth import get_user_model

    from tutor.models import Attempt

    page, base = browser_page, live_server_url
    students = [alice, bob] + [get_user_model().objects.create_user(f"student{i}", password="pw-123-abc")
                               for i in range(4)]
    for n, student in enumerate(students):
        enrollment_create(user=student, course=course)
        state = KnowledgeState(concepts={"a": ConceptState(min(0.99, 0.3 + 0.15 * n), 4, 3),
                                         "b": ConceptState(0.1 + 0.1 * n, 3, 1)})
        KnowledgeRecord.objects.filter(user=student, course=course).update(blob=state.to_blob())
    sym = Item.objects.get(slug="algebra-b-sym")
    for student in students[:2]:  # both stuck on b, giving the misconception the item names
        for answer in ["x**2", "x**2", "x**3", "x**2", "x"]:
            Attempt.objects.create(client_id=uuid.uuid4(), user=student, item=sym, concept=sym.concept, answer=answer,
                                   normalized=answer, correct=False, mastery_after=0.1,
                                   feedback=sym.feedback.get(answer, ""))
    log_in(page, base, "prof", "pw-prof-123")
    page.click("text=Dashboard")
    page.wait_for_selector("#heatmap")
    assert page.locator("#heatmap tbody tr").count() == 6
    assert page.locator("#stuck tbody tr[data-student]").count() == 2
    assert "Keep the coefficient 3." in page.inner_text("#wrong-answers")
    assert page.locator('#drift tr[data-item="algebra-b-sym"]').count() == 1  # authored 0.8, all wrong
    page.screenshot(path=test_output / "dashboard.png", full_page=True)
    with page.expect_download() as download:
        page.click("#export-csv")
    assert download.value.suggested_filename == f"{course.slug}-mastery.csv"


def test_a_course_of_many_concepts_lists_prerequisites_in_a_box_filtered_by_title(live_server_url, browser_page,
                                                                                   course, prof, test_output):
    """An imported course has hundreds of concepts: the prerequisites field stays a box, not pages of checkboxes."""
    from courses.services import concept_create

    for n in range(40):
        concept_create(course=course, user=prof, fields={"slug": f"extra-{n}", "title": f"Extra topic {n}",
                                                         "order": 10 + n}, prerequisites=[])
    page, base = browser_page, live_server_url
    log_in(page, base, "prof", "pw-prof-123")
    page.goto(f"{base}/teach/{course.slug}/concepts/c/")
    assert page.inner_text("#prerequisites-chosen") == "Chosen: Concept B."
    box = page.locator(".prerequisites-list").bounding_box()
    assert box["height"] < 300  # the key ideas and lesson are not pages below
    page.fill("#prerequisites-filter", "topic 3")
    visible = page.locator("#id_prerequisites > div:visible")
    assert sorted(visible.all_inner_texts()) == ["Extra topic 3", *(f"Extra topic {n}" for n in range(30, 40))]
    page.check("input[name=prerequisites][value=extra-31]")
    assert page.inner_text("#prerequisites-chosen") == "Chosen: Concept B, Extra topic 31."
    page.screenshot(path=test_output / "prerequisites-filtered.png", full_page=True)
    with page.expect_navigation():
        page.click("#save-concept")
    assert page.inner_text("#prerequisites-chosen") == "Chosen: Concept B, Extra topic 31."
    assert sorted(Concept.objects.get(course=course, slug="c").prerequisites.values_list("slug", flat=True)) == \
        ["b", "extra-31"]


def test_no_authoring_page_scrolls_sideways_on_a_phone(live_server_url, browser_page, course, prof, test_output):
    """An imported course's item slugs are long single words ("a18455cprediction11a") and its concepts table has
    five columns: on a phone the table scrolls in its own box, and the page does not."""
    from tests.browser.pages import sideways_overflow, sticking_out

    for item in Item.objects.filter(concept__course=course):
        Item.objects.filter(pk=item.pk).update(slug=f"a18455cprediction11aVeryLongImportedStepName{item.pk}")
    page, base = browser_page, live_server_url
    page.set_viewport_size({"width": 360, "height": 780})
    log_in(page, base, "prof", "pw-prof-123")
    wide = []
    for label, path in [("course", ""), ("concept", "concepts/a/"), ("settings", "settings/"),
                        ("dashboard", "dashboard/")]:
        page.goto(f"{base}/teach/{course.slug}/{path}")
        page.wait_for_load_state("networkidle")
        if (over := sideways_overflow(page)) > 0:
            wide.append(f"{label}: {over}px too wide: {sticking_out(page)}")
        page.screenshot(path=test_output / f"phone-{label}.png", full_page=True)
    assert not wide, "\n".join(wide)
