"""A course's settings and each concept's learner-model parameters, typed, with their defaults in one place.

Both are parsed once, where the data enters: from a course file (`courses/format.py`), from an importer, from the
settings form, and from the database row when a process first reads the course. A bad or unknown value is refused
with what is wrong (and, from a file, its path and line) before anything is stored; nothing downstream unpacks
raw JSON. `ConceptParams.source` says where imported parameters came from and is never read by the session.

No database access here: `courses.selectors.course_settings` and `concept_params` read rows through these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from learner_model.knowledge import BKTParams
from learner_model.review import DEFAULT_RETENTION

TEACH_BACK = ("after_mastery", "on_request", "never")


class ParamsError(ValueError):
    """A setting or parameter that cannot be used; `key` names it (dotted, as written in the course file)."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"{key}: {message}")


def _number(key: str, value: Any, low: float, high: float, *, high_open: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ParamsError(key, f"must be a number, got {value!r}")
    if not (low <= value < high if high_open else low <= value <= high):
        raise ParamsError(key, f"must lie in [{low}, {high}{')' if high_open else ']'}, got {value!r}")
    return float(value)


def _unknown(prefix: str, raw: Mapping[str, Any], known: set[str]) -> None:
    extra = sorted(set(raw) - known)
    if extra:
        raise ParamsError(f"{prefix}.{extra[0]}", "unknown setting; valid: " + ", ".join(sorted(known)))


@dataclass(frozen=True)
class CourseSettings:
    """How the tutor teaches one course. Each field is a key of `settings:` in course.yaml."""

    target_band: tuple[float, float] = (0.70, 0.85)  # a practice item's predicted P(correct) should fall in here
    mastery_threshold: float = 0.95  # P(known) at which practice on a concept stops
    review_retention: float = DEFAULT_RETENTION  # FSRS: a mastered concept is due when predicted recall falls to it
    auto_publish_verified: bool = False  # generated items that pass verification skip the review queue
    placement_questions: int = 15  # the adaptive diagnostic's budget at enrolment; 0 = no placement
    decimal_comma: bool = False  # answers written with a decimal comma ("0,25") are read as decimals
    teach_back: str = "after_mastery"  # when the student is asked to explain a concept: one of TEACH_BACK

    def __post_init__(self) -> None:
        lo, hi = self.target_band
        if not 0 < lo < hi < 1:
            raise ParamsError("settings.target_band", f"must be [low, high] with 0 < low < high < 1, got {[lo, hi]}")
        _number("settings.mastery_threshold", self.mastery_threshold, 0.5, 1.0)
        _number("settings.review_retention", self.review_retention, 0.5, 1.0)
        if self.teach_back not in TEACH_BACK:
            raise ParamsError("settings.teach_back", f"must be one of {', '.join(TEACH_BACK)}, got {self.teach_back!r}")

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> CourseSettings:
        """From a course file's or a row's `settings` mapping; missing keys take their defaults."""
        raw = raw or {}
        if not isinstance(raw, Mapping):
            raise ParamsError("settings", f"must be a mapping, got {type(raw).__name__}")
        _unknown("settings", raw, {f.name for f in fields(cls)})
        values: dict[str, Any] = {}
        if "target_band" in raw:
            band = raw["target_band"]
            if not isinstance(band, list | tuple) or len(band) != 2:
                raise ParamsError("settings.target_band", f"must be [low, high], got {band!r}")
            values["target_band"] = (_number("settings.target_band", band[0], 0.0, 1.0),
                                     _number("settings.target_band", band[1], 0.0, 1.0))
        for key in ("mastery_threshold", "review_retention"):
            if key in raw:
                values[key] = _number(f"settings.{key}", raw[key], 0.5, 1.0)
        for key in ("auto_publish_verified", "decimal_comma"):
            if key in raw:
                if not isinstance(raw[key], bool):
                    raise ParamsError(f"settings.{key}", f"must be true or false, got {raw[key]!r}")
                values[key] = raw[key]
        if "placement_questions" in raw:
            questions = raw["placement_questions"]
            if isinstance(questions, bool) or not isinstance(questions, int) or not 0 <= questions <= 100:
                raise ParamsError("settings.placement_questions", f"must be an integer 0-100, got {questions!r}")
            values["placement_questions"] = questions
        if "teach_back" in raw:
            values["teach_back"] = str(raw["teach_back"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """As stored in `Course.settings` and written to course.yaml."""
        out = asdict(self)
        out["target_band"] = list(self.target_band)
        return out


BKT_KEYS = tuple(f.name for f in fields(BKTParams))


@dataclass(frozen=True)
class ConceptParams:
    """One concept's own learner-model parameters; a concept without them uses `BKTParams()`."""

    bkt: BKTParams | None = None
    source: str = ""  # where the parameters came from, e.g. "OATutor defaults": shown to faculty, never unpacked

    @property
    def effective_bkt(self) -> BKTParams:
        return self.bkt if self.bkt is not None else BKTParams()

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> ConceptParams:
        """From a concept's `bkt:` mapping (the BKT probabilities and an optional `source`)."""
        if not raw:
            return cls()
        if not isinstance(raw, Mapping):
            raise ParamsError("bkt", f"must be a mapping of {', '.join(BKT_KEYS)}, got {type(raw).__name__}")
        _unknown("bkt", raw, {*BKT_KEYS, "source"})
        probabilities = {k: _number(f"bkt.{k}", raw[k], 0.0, 1.0, high_open=False)
                         for k in BKT_KEYS if raw.get(k) is not None}
        try:
            bkt = BKTParams(**probabilities) if probabilities else None
        except ValueError as exc:
            raise ParamsError("bkt", str(exc)) from None
        return cls(bkt=bkt, source=str(raw.get("source") or ""))

    def to_dict(self) -> dict[str, Any]:
        """As stored in `Concept.params` and written to a concept file's `bkt:`; {} when there is nothing."""
        out: dict[str, Any] = asdict(self.bkt) if self.bkt is not None else {}
        if self.source:
            out["source"] = self.source
        return out
