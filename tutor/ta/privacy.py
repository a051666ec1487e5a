"""Personal data in a document a teacher uploads for the TA-bot: found before it is indexed, so that a grade sheet
or a sign-up list is held for the teacher's confirmation instead of being quoted to students.

What counts: e-mail addresses, phone numbers, student ids (a run of 6-10 digits labelled as an id, or in an id
column), and people's names beside grades or scores (in a table row with a grade column, or a name followed
closely by "scored", a percentage, a letter grade). A course text mentions people too ("Newton's law", "Pascal's
triangle"): a name counts only next to a grade, a score or an id, or in a table of students.

No database and no Django: `tutor.ta.services.ta_document_upload` calls `personal_data` and stores the findings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<!\w)(?:\+?\d{1,2}[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]\d{3}[ .-]\d{4}(?!\w)")
_ID_LABEL = re.compile(r"\b(?:student\s*(?:id|number|no\.?|#)|id|matric(?:ulation)?(?:\s*no\.?)?)\b\s*[:#]?\s*(\d{6,10})\b",
                       re.IGNORECASE)
_NAME = r"[A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)?(?:\s+[A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)?){1,2}"
_GRADE = r"(?:\d{1,3}(?:\.\d+)?\s*(?:%|/\s*\d{1,3}|points?|pts)?|[A-F][+-]?)"
_NAME_GRADE = re.compile(rf"\b({_NAME})\b[^.\n|]{{0,30}}?\b(?:scored|got|received|earned|grade[ds]?|score[ds]?|mark(?:ed|s)?)"
                         rf"\s*(?:of|was|is|:)?\s*({_GRADE})(?![\w.])")
_HEADER_NAME = re.compile(r"^(?:student|name|student name|full name|learner)s?$", re.IGNORECASE)
_HEADER_SENSITIVE = re.compile(r"\b(?:score|grade|mark|result|exam|midterm|final|quiz|id|e-?mail|phone|reason|gpa)\b",
                               re.IGNORECASE)
_HEADER_ID = re.compile(r"\b(?:id|number|no\.?)\b", re.IGNORECASE)
_NOT_PEOPLE = frozenset({"Class Mean", "Standard Deviation", "Office Hours", "Rational Zero Theorem"})


@dataclass(frozen=True)
class Finding:
    kind: str  # "email" | "phone" | "student_id" | "name_grade" | "name"
    text: str  # what was found, as written

    def masked(self) -> dict[str, str]:
        """For the teacher's page: what kind, and enough of it to find it in the file (not all of it)."""
        shown = self.text if len(self.text) <= 4 else self.text[:2] + "…" + self.text[-2:]
        return {"kind": self.kind, "text": shown}


def personal_data(text: str) -> list[Finding]:
    """Every piece of personal data found in `text`, each once, in the order found."""
    found: list[Finding] = []
    found += [Finding("email", m.group(0)) for m in _EMAIL.finditer(text)]
    found += [Finding("phone", m.group(0)) for m in _PHONE.finditer(text)]
    found += [Finding("student_id", m.group(1)) for m in _ID_LABEL.finditer(text)]
    for m in _NAME_GRADE.finditer(text):
        if m.group(1) not in _NOT_PEOPLE:
            found += [Finding("name_grade", f"{m.group(1)} {m.group(2)}"), Finding("name", m.group(1))]
    found += _table_rows(text)
    return list(dict.fromkeys(found))


def _table_rows(text: str) -> list[Finding]:
    """A Markdown (or comma/tab separated) table whose header has a name column and a grade, id, e-mail or phone
    column: every row's name, and its ids."""
    out: list[Finding] = []
    header: list[str] | None = None
    for line in text.splitlines():
        cells = _cells(line)
        if cells is None:
            header = None
            continue
        if all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
            continue  # the |---| line under a Markdown header
        if header is None:
            header = cells
            continue
        names = [i for i, h in enumerate(header) if _HEADER_NAME.fullmatch(h)]
        if not names or not any(_HEADER_SENSITIVE.search(h) for h in header):
            continue
        for i in names:
            if i < len(cells) and re.fullmatch(_NAME, cells[i]):
                out.append(Finding("name", cells[i]))
        for i, h in enumerate(header):
            if _HEADER_ID.search(h) and i < len(cells) and re.fullmatch(r"\d{6,10}", cells[i]):
                out.append(Finding("student_id", cells[i]))
    return out


def _cells(line: str) -> list[str] | None:
    stripped = line.strip()
    if stripped.count("|") >= 2:
        return [c.strip() for c in stripped.strip("|").split("|")]
    if stripped.count("\t") >= 1:
        return [c.strip() for c in stripped.split("\t")]
    return None
