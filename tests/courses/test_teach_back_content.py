"""A concept's key ideas, misconceptions and probes: in the course folder, in the database, and on the authoring page."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from courses.format import CourseFormatError, dump_course, load_course
from courses.models import Concept
from courses.selectors import course_spec
from courses.services import course_import
from tests.conftest import small_course_spec

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "courses" / "demo" / "derivatives"


def test_every_demo_concept_has_three_to_six_key_ideas_and_probes() -> None:
    spec = load_course(DEMO)
    assert len(spec.concepts) == 15
    for concept in spec.concepts:
        assert 3 <= len(concept.key_ideas) <= 6, concept.slug
        assert concept.probes and concept.misconceptions, concept.slug


def test_key_ideas_survive_export_and_reimport(tmp_path: Path) -> None:
    spec = small_course_spec()
    spec.concepts[0].key_ideas = ["Idea one.", "Idea two: with a colon.", "Idea 'three'."]
    spec.concepts[0].misconceptions = ["A wrong idea."]
    spec.concepts[0].probes = ["Why is that?"]
    dump_course(spec, tmp_path / "c")
    again = load_course(tmp_path / "c")
    assert again.concepts[0].key_ideas == spec.concepts[0].key_ideas
    assert again.concepts[0].misconceptions == ["A wrong idea."] and again.concepts[0].probes == ["Why is that?"]
    assert again.concepts[1].key_ideas == []


def test_too_many_key_ideas_are_refused_with_file_and_line(tmp_path: Path) -> None:
    spec = small_course_spec()
    dump_course(spec, tmp_path / "c")
    path = tmp_path / "c" / "concepts" / "a.md"
    ideas = "".join(f"  - idea {n}\n" for n in range(9))
    path.write_text(path.read_text().replace("---\n", "---\nkey_ideas:\n" + ideas, 1))
    with pytest.raises(CourseFormatError) as error:
        load_course(tmp_path / "c")
    assert error.value.path == str(path) and error.value.line == 2
    assert "at most 8" in str(error.value)


def test_a_key_ideas_field_that_is_not_a_list_is_refused(tmp_path: Path) -> None:
    dump_course(small_course_spec(), tmp_path / "c")
    path = tmp_path / "c" / "concepts" / "b.md"
    path.write_text(path.read_text().replace("---\n", "---\nkey_ideas: just one string\n", 1))
    with pytest.raises(CourseFormatError, match="key_ideas"):
        load_course(tmp_path / "c")


def test_import_stores_key_ideas_and_export_gives_them_back(db) -> None:
    spec = small_course_spec()
    spec.concepts[0].key_ideas = ["First.", "Second.", "Third."]
    spec.concepts[0].probes = ["What about zero?"]
    spec.concepts[0].misconceptions, spec.concepts[0].misconception_ideas = ["Wrong."], {"Wrong.": "Second."}
    course = course_import(spec=spec)
    row = Concept.objects.get(course=course, slug="a")
    assert row.key_ideas == ["First.", "Second.", "Third."] and row.probes == ["What about zero?"]
    assert row.misconception_ideas == {"Wrong.": "Second."}
    exported = course_spec(course=course).concepts[0]
    assert exported.key_ideas == ["First.", "Second.", "Third."]
    assert exported.misconception_ideas == {"Wrong.": "Second."}


def test_faculty_edit_key_ideas_on_the_concept_page_with_a_preview(client, prof, course) -> None:
    client.force_login(prof)
    url = reverse("teach:concept", args=[course.slug, "a"])
    page = client.get(url).content.decode()
    assert 'id="teach-back"' in page and 'name="key_ideas"' in page
    post = {"slug": "a", "title": "Concept A", "lesson": "Lesson A.", "pain_first": "", "guess_first": "",
            "guess_choices": "", "guess_answer": "", "explanation": "",
            "key_ideas": "Adding numbers counts on.\n\n  Order does not matter.  \nZero changes nothing.",
            "misconceptions": "Adding always makes bigger numbers.", "probes": "What if I add zero?"}
    assert client.post(url, post).status_code == 302
    concept = Concept.objects.get(course=course, slug="a")
    assert concept.key_ideas == ["Adding numbers counts on.", "Order does not matter.", "Zero changes nothing."]
    assert concept.misconceptions == ["Adding always makes bigger numbers."]
    preview = client.post(reverse("teach:preview", args=[course.slug]),
                          {"field": "key_ideas", "key_ideas": "One.\nTwo."}).content.decode()
    assert preview.count("<li>") == 2


def test_a_misconception_names_the_key_idea_it_gets_wrong_in_the_file_and_back(tmp_path: Path) -> None:
    spec = small_course_spec()
    spec.concepts[0].key_ideas = ["Order does not matter.", "Zero changes nothing."]
    dump_course(spec, tmp_path / "c")
    path = tmp_path / "c" / "concepts" / "a.md"
    path.write_text(path.read_text().replace("---\n", "---\nmisconceptions:\n- Adding zero doubles a number. => 2\n"
                                             "- Adding always makes bigger numbers.\n", 1))
    concept = load_course(tmp_path / "c").concepts[0]
    assert concept.misconceptions == ["Adding zero doubles a number.", "Adding always makes bigger numbers."]
    assert concept.misconception_ideas == {"Adding zero doubles a number.": "Zero changes nothing."}
    dump_course(load_course(tmp_path / "c"), tmp_path / "again")
    assert "- Adding zero doubles a number. => 2\n" in (tmp_path / "again" / "concepts" / "a.md").read_text()


def test_a_misconception_naming_no_key_idea_is_refused_with_file_and_line(tmp_path: Path) -> None:
    spec = small_course_spec()
    spec.concepts[0].key_ideas = ["Order does not matter.", "Zero changes nothing."]
    dump_course(spec, tmp_path / "c")
    path = tmp_path / "c" / "concepts" / "a.md"
    path.write_text(path.read_text().replace("---\n", "---\nmisconceptions:\n- Adding zero doubles it. => 3\n", 1))
    with pytest.raises(CourseFormatError) as error:
        load_course(tmp_path / "c")
    assert error.value.path == str(path) and error.value.line == 2
    assert "misconceptions: \u201cAdding zero doubles it.\u201d => 3: there is no key idea 3 (there are 2)" in str(error.value)


def test_faculty_say_which_key_idea_a_misconception_gets_wrong_and_see_it_in_the_preview(client, prof, course):
    client.force_login(prof)
    url = reverse("teach:concept", args=[course.slug, "a"])
    post = {"slug": "a", "title": "Concept A", "lesson": "Lesson A.", "pain_first": "", "guess_first": "",
            "guess_choices": "", "guess_answer": "", "explanation": "", "probes": "",
            "key_ideas": "Order does not matter.\nZero changes nothing.",
            "misconceptions": "Adding zero doubles a number.  =>  2\nAdding always makes bigger numbers."}
    assert client.post(url, post).status_code == 302
    concept = Concept.objects.get(course=course, slug="a")
    assert concept.misconceptions == ["Adding zero doubles a number.", "Adding always makes bigger numbers."]
    assert concept.misconception_ideas == {"Adding zero doubles a number.": "Zero changes nothing."}
    page = client.get(url).content.decode()
    assert "Adding zero doubles a number. =&gt; 2\nAdding always makes bigger numbers.</textarea>" in page
    preview = client.post(reverse("teach:preview", args=[course.slug]),
                          {"field": "misconceptions", "misconceptions": post["misconceptions"]}).content.decode()
    assert "gets key idea 2 wrong" in preview and "key idea guessed from meaning" in preview
    numbered = client.post(reverse("teach:preview", args=[course.slug]),
                           {"field": "key_ideas", "key_ideas": post["key_ideas"]}).content.decode()
    assert "<ol>" in numbered
    # a number that is no key idea: refused, nothing saved
    response = client.post(url, {**post, "misconceptions": "Adding zero doubles a number. => 5"})
    assert response.status_code == 200 and "there is no key idea 5 (there are 2)" in response.content.decode()
    # an idea reworded since: the link is dropped (guessed again), never pointed at another idea
    concept.key_ideas = ["Order does not matter.", "Adding zero leaves a number as it is."]
    concept.save()
    assert "Adding zero doubles a number.\nAdding always" in client.get(url).content.decode()


def test_a_probe_without_key_ideas_is_refused_on_the_form(client, prof, course) -> None:
    client.force_login(prof)
    url = reverse("teach:concept", args=[course.slug, "a"])
    response = client.post(url, {"slug": "a", "title": "Concept A", "key_ideas": "", "probes": "Why?",
                                 "lesson": "", "pain_first": "", "guess_first": "", "guess_choices": "",
                                 "guess_answer": "", "explanation": "", "misconceptions": ""})
    assert response.status_code == 200 and "add key ideas first" in response.content.decode().lower()
    assert Concept.objects.get(course=course, slug="a").probes == []


def test_the_teach_back_setting_is_kept_by_the_settings_form(client, prof, course) -> None:
    client.force_login(prof)
    response = client.post(reverse("teach:settings", args=[course.slug]), {
        "title": "Algebra", "target_low": "0.6", "target_high": "0.8", "mastery_threshold": "0.9",
        "review_retention": "0.8", "placement_questions": "0", "teach_back": "on_request"})
    assert response.status_code == 302
    course.refresh_from_db()
    assert course.settings["teach_back"] == "on_request"


def test_a_course_file_with_an_unknown_teach_back_setting_is_refused(tmp_path: Path) -> None:
    dump_course(small_course_spec(), tmp_path / "c")
    manifest = tmp_path / "c" / "course.yaml"
    manifest.write_text(manifest.read_text().replace("teach_back: after_mastery", "teach_back: sometimes"))
    with pytest.raises(CourseFormatError, match="teach_back"):
        load_course(tmp_path / "c")




def test_faculty_see_which_concepts_have_no_key_ideas_and_so_are_never_explained(client, prof, course) -> None:
    # The small course, as an importer leaves it: no key ideas anywhere, teach-back after mastery (the default).
    client.force_login(prof)
    overview = client.get(reverse("teach:course", args=[course.slug])).content.decode()
    total = course.concepts.count()
    assert 'id="teach-back-missing"' in overview and f"none of the {total} concepts has key ideas" in overview
    assert overview.count("no key ideas") == total
    settings_page = client.get(reverse("teach:settings", args=[course.slug])).content.decode()
    assert f"0 of this course&#x27;s {total} concepts have them" in settings_page

    Concept.objects.filter(course=course, slug="a").update(key_ideas=["One.", "Two.", "Three."])
    overview = client.get(reverse("teach:course", args=[course.slug])).content.decode()
    assert f"only 1 of {total} concepts have key ideas" in overview and "3 key ideas" in overview
    Concept.objects.filter(course=course).update(key_ideas=["One.", "Two.", "Three."])
    assert 'id="teach-back-missing"' not in client.get(reverse("teach:course", args=[course.slug])).content.decode()
    course.settings = {**course.settings, "teach_back": "never"}
    course.save()
    Concept.objects.filter(course=course, slug="a").update(key_ideas=[])
    assert 'id="teach-back-missing"' not in client.get(reverse("teach:course", args=[course.slug])).content.decode()
