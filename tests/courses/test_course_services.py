import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from courses.models import Concept, Course, Item, Membership
from courses.rendering import render_markdown
from courses.services import course_import
from tests.conftest import REPO, small_course_spec

pytestmark = pytest.mark.django_db
DEMO = REPO / "courses" / "demo" / "derivatives"


def test_reimporting_a_course_updates_in_place_and_never_duplicates():
    spec = small_course_spec()
    course_import(spec=spec)
    spec.concepts[0].title = "Concept A, renamed"
    spec.concepts[0].items[0].prompt = "What is $3 + 1$?"
    course_import(spec=spec)
    assert Course.objects.count() == 1
    assert Concept.objects.count() == 3
    assert Item.objects.count() == 9
    assert Concept.objects.get(slug="a").title == "Concept A, renamed"
    assert Item.objects.get(slug="algebra-a-num").prompt == "What is $3 + 1$?"


def test_items_removed_from_the_file_are_removed_on_reimport():
    spec = small_course_spec()
    course_import(spec=spec)
    spec.concepts[0].items.pop()
    course_import(spec=spec)
    assert not Item.objects.filter(slug="algebra-a-sym").exists()


def test_demo_course_imports_with_its_prerequisite_graph():
    call_command("import_course", str(DEMO))
    course = Course.objects.get(slug="derivatives")
    assert course.concepts.count() >= 12
    chain = course.concepts.get(slug="chain-rule")
    assert chain.prerequisites.exists()
    for concept in course.concepts.all():
        assert concept.lesson and concept.pain_first and concept.guess_first and concept.explanation
        assert concept.items.count() >= 5
        assert all(1 <= len(i.hints) <= 3 for i in concept.items.all())
    kinds = set(Item.objects.filter(concept__course=course).values_list("kind", flat=True))
    assert {"numeric", "multiple_choice", "symbolic"} <= kinds


def test_import_course_makes_the_named_users_its_faculty_and_refuses_an_unknown_one(alice):
    # A course imported on the command line had no teacher: only an admin could open its authoring pages.
    call_command("import_course", str(DEMO), "--faculty", "alice")
    course = Course.objects.get(slug="derivatives")
    assert Membership.objects.get(user=alice, course=course).role == Membership.Role.FACULTY
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("import_course", str(DEMO), "--faculty", "alice", "--faculty", "nobody")


def test_malformed_course_file_names_file_and_line_and_imports_nothing(tmp_path: Path):
    broken = tmp_path / "derivatives"
    shutil.copytree(DEMO, broken)
    target = broken / "concepts" / "power-rule.md"
    lines = target.read_text().splitlines()
    lines[3] = lines[3] + " : : ["  # break the YAML front matter on line 4
    target.write_text("\n".join(lines) + "\n")
    with pytest.raises(CommandError) as excinfo:
        call_command("import_course", str(broken))
    message = str(excinfo.value)
    assert "power-rule.md:" in message
    assert Course.objects.count() == 0 and Item.objects.count() == 0


def test_unknown_prerequisite_is_reported_with_the_manifest_line(tmp_path: Path):
    broken = tmp_path / "derivatives"
    shutil.copytree(DEMO, broken)
    manifest = broken / "course.yaml"
    manifest.write_text(manifest.read_text().replace("prerequisites: [limit-laws]", "prerequisites: [limit-lawz]", 1))
    with pytest.raises(CommandError, match=r"course.yaml:\d+: .*unknown prerequisite 'limit-lawz'"):
        call_command("import_course", str(broken))


def test_relative_figures_resolve_to_the_course_media_url():
    html = render_markdown("![graph](figures/p1/figure1.gif)", asset_base="/media/courses/algebra/")
    assert 'src="/media/courses/algebra/figures/p1/figure1.gif"' in html


def test_an_exported_item_waiting_for_review_stays_unpublished_when_reimported(tmp_path: Path):
    from courses.format import dump_course
    from courses.selectors import course_spec

    course = course_import(spec=small_course_spec())
    Item.objects.filter(slug="algebra-a-mc").update(status=Item.Status.REVIEW)
    dump_course(course_spec(course=course), tmp_path / "algebra")
    Course.objects.all().delete()
    call_command("import_course", str(tmp_path / "algebra"))
    assert Item.objects.get(slug="algebra-a-mc").status == Item.Status.REVIEW
    assert Item.objects.get(slug="algebra-a-num").status == Item.Status.PUBLISHED


@pytest.mark.parametrize(("text", "shown"), [
    ("We surveyed $100$ students.", "<p>We surveyed 100 students.</p>"),
    ("a mean of $3.65$ hours, $$1,000$$ people", "<p>a mean of 3.65 hours, 1,000 people</p>"),
    ("the value $-2$ and $40\\%$", "<p>the value \u22122 and 40%</p>"),
])
def test_a_number_written_as_a_formula_reads_as_text_in_the_sentence(text: str, shown: str) -> None:
    # Imported courses write most numbers in their prose as maths; KaTeX set each in its serif font mid-sentence.
    assert render_markdown(text).strip() == shown


def test_a_formula_with_more_than_a_number_is_still_typeset() -> None:
    assert render_markdown("solve $x^2 = 4$ for $\\$20$").count('<span class="math inline">') == 2
