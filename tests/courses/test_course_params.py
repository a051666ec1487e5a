"""Course settings and per-concept parameters are typed and checked where they enter: a bad or unknown value is
refused with its file and line, and nothing is imported; what is stored is always usable by the session."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from courses.format import CourseFormatError, dump_course, load_course
from courses.importers.oatutor import load_oatutor
from courses.models import Concept, Course
from courses.params import ConceptParams, CourseSettings, ParamsError
from courses.services import course_import
from tests.conftest import small_course_spec
from tests.courses.test_oatutor_import import HINTS, numeric, write_source

DEMO = Path(__file__).resolve().parents[2] / "courses" / "demo" / "derivatives"


def _course_folder(tmp_path: Path) -> Path:
    root = tmp_path / "algebra"
    dump_course(small_course_spec(), root)
    return root


def test_settings_take_their_defaults_in_one_place() -> None:
    settings = CourseSettings.parse({"mastery_threshold": 0.9})
    assert settings.mastery_threshold == 0.9 and settings.target_band == CourseSettings().target_band
    assert CourseSettings.parse(settings.to_dict()) == settings


@pytest.mark.parametrize("raw, key", [
    ({"mastery_treshold": 0.9}, "settings.mastery_treshold"),
    ({"target_band": [0.9, 0.7]}, "settings.target_band"),
    ({"review_retention": "high"}, "settings.review_retention"),
    ({"placement_questions": 2.5}, "settings.placement_questions"),
    ({"teach_back": "sometimes"}, "settings.teach_back"),
])
def test_a_bad_or_unknown_setting_is_refused_by_name(raw: dict, key: str) -> None:
    with pytest.raises(ParamsError) as caught:
        CourseSettings.parse(raw)
    assert caught.value.key == key


def test_concept_parameters_keep_their_source_apart_from_the_model() -> None:
    params = ConceptParams.parse({"p_init": 0.3, "p_learn": 0.1, "p_guess": 0.2, "p_slip": 0.1,
                                  "source": "OATutor defaults"})
    assert params.bkt is not None and params.bkt.p_init == 0.3 and params.source == "OATutor defaults"
    assert ConceptParams.parse(params.to_dict()) == params


@pytest.mark.parametrize("bkt, message", [
    ({"p_init": 1.5}, "bkt.p_init"),
    ({"p_guess": 0.6, "p_slip": 0.5}, "p_guess + p_slip"),
    ({"p_learn": 0.2, "speed": 3}, "bkt.speed"),
])
def test_a_concept_file_with_a_bad_parameter_names_file_and_line_and_imports_nothing(tmp_path, db, bkt, message):
    root = _course_folder(tmp_path)
    concept_file = root / "concepts" / "b.md"
    text = concept_file.read_text()
    concept_file.write_text(text.replace("---\n", "---\nbkt:\n" + "".join(f"  {k}: {v}\n" for k, v in bkt.items()), 1))
    with pytest.raises(CourseFormatError) as caught:
        load_course(root)
    assert caught.value.path == str(concept_file) and message in caught.value.message
    line = concept_file.read_text().splitlines()[caught.value.line - 1]
    assert line.strip().startswith(("bkt", "p_", "speed"))
    assert not Course.objects.exists()


def test_an_unknown_course_setting_names_the_line_of_course_yaml(tmp_path: Path) -> None:
    root = _course_folder(tmp_path)
    manifest = root / "course.yaml"
    manifest.write_text(manifest.read_text().replace("settings:\n", "settings:\n  mastery_treshold: 0.9\n", 1))
    with pytest.raises(CourseFormatError) as caught:
        load_course(root)
    assert caught.value.path == str(manifest)
    assert manifest.read_text().splitlines()[caught.value.line - 1].strip() == "mastery_treshold: 0.9"


def test_an_oatutor_skill_with_unusable_bkt_parameters_fails_the_import_naming_the_file(tmp_path: Path) -> None:
    root = write_source(tmp_path / "src", {"p1": {"steps": {"p1a": (numeric("$$4$$"), ["adding"], HINTS)}}},
                        courses=["Course One"])
    params = root / "defaultBKTParams.json"
    table = json.loads(params.read_text())
    table["adding"]["probGuess"] = 0.95
    params.write_text(json.dumps(table, indent=2))
    with pytest.raises(CourseFormatError) as caught:
        load_oatutor(root)
    assert caught.value.path.endswith("defaultBKTParams.json") and "adding" in caught.value.message
    assert '"adding"' in params.read_text().splitlines()[caught.value.line - 1]


def test_imported_oatutor_parameters_are_stored_typed_with_their_source(tmp_path: Path, db) -> None:
    root = write_source(tmp_path / "src", {"p1": {"steps": {"p1a": (numeric("$$4$$"), ["adding"], HINTS)}}},
                        courses=["Course One"])
    spec = load_oatutor(root).spec
    course_import(spec=spec)
    concept = Concept.objects.get(slug="adding")
    assert concept.params == {"p_init": 0.2, "p_learn": 0.1, "p_guess": 0.25, "p_slip": 0.1, "p_forget": 0.0,
                              "source": "OATutor defaults"}
    assert "bkt" not in concept.extra


def test_an_older_export_with_bkt_under_extra_still_loads(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    shutil.copytree(DEMO, root)
    concept_file = root / "concepts" / "power-rule.md"
    text = concept_file.read_text()
    concept_file.write_text(text.replace("---\n", "---\nextra:\n  bkt: {p_init: 0.4, source: old export}\n", 1))
    concept = next(c for c in load_course(root).concepts if c.slug == "power-rule")
    assert concept.params.effective_bkt.p_init == 0.4 and "bkt" not in concept.extra


def test_a_course_file_may_give_an_equation_as_a_symbolic_key(tmp_path: Path) -> None:
    root = _course_folder(tmp_path)
    concept_file = root / "concepts" / "a.md"
    text = concept_file.read_text()
    concept_file.write_text(text.replace("answer: 3*x**2\n  variables:\n  - x", "answer: y = 3*x**2\n  variables: [x, y]", 1))
    load_course(root)  # an equation key is refused nowhere: answers are compared with it as equations
    concept_file.write_text(text.replace("answer: 3*x**2", "answer: y = = 3", 1))
    with pytest.raises(CourseFormatError, match="single ="):
        load_course(root)
