"""Authoring forms: text a person types in, the fields of a Concept, an Item or a course's settings out.

Lists are written one per line; feedback as `wrong answer => what it suggests`; template parameters as
`n: 2, 9`. Item validation follows the folder format's rules (`courses.format`), so an item saved here
exports and re-imports cleanly.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import validate_slug

from courses.checking import parse_expression, parse_key
from courses.format import (
    ITEM_KINDS,
    ItemSpec,
    MisconceptionLinkError,
    misconception_entries,
    misconception_link,
    misconception_links,
    teach_back_problem,
)
from courses.importers.result import slugify
from courses.item_templates import verify_template
from courses.models import Concept, Course, Item
from courses.params import CourseSettings
from courses.selectors import course_settings

MARKDOWN_HELP = "Markdown; math between $...$ or $$...$$."


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


HINT_SEPARATOR = "---"


def _hints(text: str) -> list[str]:
    """Hints separated by lines holding only ---; each hint keeps its own line breaks (paragraphs, lists)."""
    hints: list[list[str]] = [[]]
    for line in (text or "").splitlines():
        if line.strip() == HINT_SEPARATOR:
            hints.append([])
        else:
            hints[-1].append(line.rstrip())
    return [text for text in ("\n".join(h).strip() for h in hints) if text]


class _Text(forms.CharField):
    """A textarea's text with the browser's line ends (CRLF, as HTML forms send them) turned into the "\n" that
    imports and every other writer store: otherwise saving a form unchanged rewrites each multi-line field, which the
    history then lists as changed and the TA-bot's index embeds again."""

    def to_python(self, value: Any) -> str:
        text: str = super().to_python(value)
        return text.replace("\r\n", "\n").replace("\r", "\n")


def _textarea(rows: int = 5, preview: bool = True) -> forms.Textarea:
    return forms.Textarea(attrs={"rows": rows, **({"data-preview": "1"} if preview else {})})


class ConceptForm(forms.Form):
    slug = forms.SlugField(max_length=100, help_text="Short id used in files and URLs, e.g. power-rule.")
    title = forms.CharField(max_length=200)
    order = forms.IntegerField(required=False, min_value=0,
                               help_text="Among concepts that are ready, the tutor offers the lowest first.")
    prerequisites = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                              help_text="Concepts a student must master first.")
    pain_first = _Text(required=False, widget=_textarea(4), label="Pain first",
                                 help_text="A problem the student cannot quite solve yet. " + MARKDOWN_HELP)
    guess_first = _Text(required=False, widget=_textarea(3), label="Guess first",
                                  help_text="The prediction the student commits to before the explanation.")
    guess_choices = _Text(required=False, widget=_textarea(3, preview=False),
                                    help_text="Choices for the guess, one per line (empty: free text).")
    guess_answer = forms.CharField(required=False, label="Right guess",
                                   help_text="Optional: the right choice, as written above. The student still sees "
                                             "the guess as ungraded; the tutor counts it as weak evidence of what "
                                             "they already know.")
    explanation = _Text(required=False, widget=_textarea(8), help_text=MARKDOWN_HELP)
    lesson = _Text(required=False, widget=_textarea(8), help_text=MARKDOWN_HELP)
    key_ideas = _Text(required=False, widget=_textarea(5), label="Key ideas",
                                help_text="What a good explanation of this concept says: 3-6 short statements, one "
                                          "per line. A student who masters the concept explains it to a beginner, "
                                          "and the explanation is checked against these.")
    misconceptions = _Text(required=False, widget=_textarea(3), label="Misconceptions to listen for",
                                     help_text="Optional: wrong ideas an explanation might state, one per line. End "
                                               "one with => and a key idea's number (\u201c... => 2\u201d) to say "
                                               "which idea it gets wrong; otherwise the tutor guesses from meaning "
                                               "and is wrong about one time in three.")
    probes = _Text(required=False, widget=_textarea(3), label="Beginner's follow-up questions",
                             help_text="Optional: questions a beginner would ask, one per line, each aimed at a key "
                                       "idea; asked when no language model writes its own.")

    TEXT_FIELDS = ("pain_first", "guess_first", "explanation", "lesson", "key_ideas", "misconceptions", "probes")
    LIST_FIELDS = ("key_ideas", "misconceptions", "probes")  # one entry per line, previewed as a list

    def __init__(self, *args: Any, course: Course, concept: Concept | None = None, **kwargs: Any) -> None:
        if concept is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "slug": concept.slug, "title": concept.title, "order": concept.order, "lesson": concept.lesson,
                "pain_first": concept.pain_first, "guess_first": concept.guess_first,
                "guess_choices": "\n".join(concept.guess_choices), "guess_answer": concept.guess_answer,
                "explanation": concept.explanation,
                **{name: "\n".join(getattr(concept, name)) for name in self.LIST_FIELDS},
                "misconceptions": "\n".join(misconception_entries(concept.misconceptions, concept.misconception_ideas,
                                                                  concept.key_ideas)),
                "prerequisites": list(concept.prerequisites.values_list("slug", flat=True)),
            }
        super().__init__(*args, **kwargs)
        others = course.concepts.order_by("order")
        if concept is not None:
            others = others.exclude(pk=concept.pk)
        self.fields["prerequisites"].choices = [(c.slug, c.title) for c in others]

    @property
    def chosen_prerequisites(self) -> list[str]:
        """Titles of the prerequisites as the form holds them now (saved, or as just submitted), in course order."""
        chosen = set(self["prerequisites"].value() or [])
        return [title for slug, title in self.fields["prerequisites"].choices if slug in chosen]

    def clean(self) -> dict[str, Any]:
        d = super().clean()
        answer = (d.get("guess_answer") or "").strip()
        if answer and answer not in _lines(d.get("guess_choices", "")):
            self.add_error("guess_answer", "The right guess must be one of the guess choices, exactly as written.")
        key_ideas, written, probes = (_lines(d.get(name, "")) for name in self.LIST_FIELDS)
        try:
            misconceptions, _ = misconception_links(written, key_ideas)
        except MisconceptionLinkError as exc:
            self.add_error("misconceptions", str(exc))
            return d
        problem = teach_back_problem(key_ideas, misconceptions, probes)
        if problem:
            self.add_error(problem[0], problem[1].replace("_", " ").capitalize())
        return d

    def concept_fields(self) -> dict[str, Any]:
        d = self.cleaned_data
        fields = {"slug": d["slug"], "title": d["title"], "lesson": d["lesson"], "pain_first": d["pain_first"],
                  "guess_first": d["guess_first"], "guess_choices": _lines(d["guess_choices"]),
                  "guess_answer": d["guess_answer"].strip(), "explanation": d["explanation"],
                  **{name: _lines(d[name]) for name in self.LIST_FIELDS}}
        fields["misconceptions"], fields["misconception_ideas"] = misconception_links(fields["misconceptions"],
                                                                                      fields["key_ideas"])
        if d.get("order") is not None:
            fields["order"] = d["order"]
        return fields


def preview_source(name: str, text: str) -> str:
    """The Markdown a field's preview shows: list fields (one entry per line) as a list, key ideas numbered (a
    misconception names the one it opposes by number: "=> 2", shown as "gets key idea 2 wrong")."""
    if name not in ConceptForm.LIST_FIELDS:
        return text
    if name == "key_ideas":
        return "\n".join(f"{n}. {line}" for n, line in enumerate(_lines(text), start=1))
    if name == "misconceptions":
        entries = [misconception_link(line) for line in _lines(text)]
        return "\n".join(f"- {m} *(gets key idea {n} wrong)*" if n is not None else f"- {m} *(key idea guessed "
                         "from meaning)*" for m, n in entries)
    return "\n".join(f"- {line}" for line in _lines(text))


# An uploaded figure: its type by its name, checked against its first bytes (an SVG could carry a script: none).
FIGURE_TYPES = {
    "png": lambda data: data.startswith(b"\x89PNG\r\n\x1a\n"),
    "gif": lambda data: data[:6] in (b"GIF87a", b"GIF89a"),
    "jpg": lambda data: data.startswith(b"\xff\xd8\xff"),
    "jpeg": lambda data: data.startswith(b"\xff\xd8\xff"),
    "webp": lambda data: data[:4] == b"RIFF" and data[8:12] == b"WEBP",
}
FIGURE_MAX_BYTES = 2 * 2**20


class ItemForm(forms.Form):
    slug = forms.CharField(max_length=120, validators=[validate_slug], label="Id",
                           help_text="Unique in the course, e.g. power-rule-3.")
    kind = forms.ChoiceField(choices=[(k, k.replace("_", " ")) for k in ITEM_KINDS])
    prompt = _Text(widget=_textarea(4), help_text=MARKDOWN_HELP)
    answer = forms.CharField(max_length=500, help_text="Numeric: a number. Multiple choice: the right choice's text. "
                                                      "Symbolic/template: an expression such as 3*x**2.")
    choices = _Text(required=False, widget=_textarea(4, preview=False),
                              help_text="Multiple choice: one choice per line.")
    tolerance = forms.FloatField(required=False, min_value=0, help_text="Numeric: absolute tolerance.")
    units = forms.CharField(required=False, max_length=40)
    variables = forms.CharField(required=False, max_length=200, help_text="Symbolic: free symbols, comma separated.")
    accept = _Text(required=False, widget=_textarea(3, preview=False),
                             help_text="Short text: other accepted answers, one per line.")
    params = _Text(required=False, widget=_textarea(2, preview=False),
                             help_text="Template: one parameter per line, `name: low, high`.")
    hints = _Text(required=False, widget=_textarea(5, preview=False),
                            help_text="From gentle to revealing. Markdown; a hint may span lines: separate hints "
                                      "with a line holding only ---.")
    feedback = _Text(required=False, widget=_textarea(3, preview=False),
                               help_text="Misconceptions, one per line: `wrong answer => what it suggests`.")
    authored_difficulty = forms.FloatField(required=False, label="Difficulty",
                                           help_text="Logit shift: 0 average, +1 harder, -1 easier.")
    solution = _Text(required=False, widget=_textarea(4), help_text=MARKDOWN_HELP)
    attribution = forms.CharField(required=False, max_length=300)
    status = forms.ChoiceField(choices=Item.Status.choices, initial=Item.Status.PUBLISHED)
    figure = forms.FileField(required=False, label="Add a figure", widget=forms.ClearableFileInput(
        attrs={"accept": ",".join(f".{e}" for e in FIGURE_TYPES)}),
        help_text=f"An image (PNG, GIF, JPEG or WebP, up to {FIGURE_MAX_BYTES // 2**20} MB) shown in the question: in "
                  "place of a figure the import found missing, else after the question's text.")

    TEXT_FIELDS = ("prompt", "solution")

    def clean_figure(self) -> tuple[str, bytes] | None:
        """The uploaded figure as (file name, bytes), checked to be the image its name says; None if none."""
        upload = self.cleaned_data.get("figure")
        if not upload:
            return None
        stem, _, ext = upload.name.rpartition(".")
        ext = ext.lower()
        if ext not in FIGURE_TYPES:
            raise forms.ValidationError(f"{upload.name}: a figure must be a PNG, GIF, JPEG or WebP image")
        if upload.size > FIGURE_MAX_BYTES:
            raise forms.ValidationError(f"{upload.name} is {upload.size / 2**20:.1f} MB; a figure may be at most "
                                        f"{FIGURE_MAX_BYTES // 2**20} MB")
        data = upload.read()
        if not FIGURE_TYPES[ext](data):
            raise forms.ValidationError(f"{upload.name} is not a {ext.upper()} image")
        return f"{slugify(stem or 'figure', max_length=40)}.{ext}", data

    @staticmethod
    def initial_for(item: Item) -> dict[str, Any]:
        return {
            "slug": item.slug, "kind": item.kind, "prompt": item.prompt, "answer": str(item.answer),
            "choices": "\n".join(item.choices), "tolerance": item.tolerance, "units": item.units,
            "variables": ", ".join(item.variables), "accept": "\n".join(item.accept),
            "params": "\n".join(f"{k}: {v[0]}, {v[1]}" for k, v in item.params.items()),
            "hints": f"\n{HINT_SEPARATOR}\n".join(item.hints), "feedback": "\n".join(f"{k} => {v}" for k, v in item.feedback.items()),
            "authored_difficulty": item.authored_difficulty, "solution": item.solution,
            "attribution": item.attribution, "status": item.status,
        }

    def clean_variables(self) -> list[str]:
        names = [v.strip() for v in self.cleaned_data["variables"].split(",") if v.strip()]
        for name in names:
            if not name.isidentifier():
                raise forms.ValidationError(f"{name!r} is not a variable name")
        return names

    def clean_params(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for line in _lines(self.cleaned_data["params"]):
            name, _, bounds = line.partition(":")
            try:
                low, high = (int(b) for b in bounds.split(","))
            except ValueError:
                raise forms.ValidationError(f"write {line!r} as `name: low, high` with whole numbers") from None
            if not name.strip().isidentifier() or low > high:
                raise forms.ValidationError(f"{line!r}: a name, then low <= high")
            out[name.strip()] = [low, high]
        return out

    def clean_feedback(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in _lines(self.cleaned_data["feedback"]):
            wrong, sep, note = line.partition("=>")
            if not sep or not wrong.strip() or not note.strip():
                raise forms.ValidationError(f"write {line!r} as `wrong answer => what it suggests`")
            out[wrong.strip()] = note.strip()
        return out

    def clean(self) -> dict[str, Any]:
        d = super().clean()
        kind, answer = d.get("kind"), (d.get("answer") or "").strip()
        if kind is None or not answer:
            return d
        choices = _lines(d.get("choices", ""))
        if kind == "numeric":
            try:
                float(answer)
            except ValueError:
                self.add_error("answer", "a numeric item's answer must be a number")
        elif kind == "multiple_choice":
            if len(choices) < 2:
                self.add_error("choices", "a multiple-choice item needs at least two choices")
            elif len(set(choices)) != len(choices):
                self.add_error("choices", "two choices are the same")
            elif answer not in choices:
                self.add_error("answer", "the answer must be one of the choices, written exactly the same")
        elif kind in ("symbolic", "template"):
            try:
                if kind == "symbolic":  # an expression, or an equation (answers are then compared as equations)
                    parse_key(answer, list(d.get("variables") or []))
                else:
                    parse_expression(answer, list(d.get("variables") or []) + list(d.get("params") or {}))
            except ValueError as exc:
                self.add_error("answer", f"not a valid expression: {exc}")
                return d
        if kind == "template" and "params" in d and "variables" in d:
            if not d["params"]:
                self.add_error("params", "a template needs at least one parameter, e.g. `a: 2, 9`")
            else:
                # the same check generated templates get: several variants drawn and their keys graded
                problems = verify_template(self.item_spec(), seeds=range(5))
                if problems:
                    self.add_error("answer", problems[0])
        return d

    def item_spec(self) -> ItemSpec:
        """The item as the pure-Python checkers take it (for templates: instantiate, verify)."""
        d = self.cleaned_data
        return ItemSpec(id=d.get("slug") or "item", kind=d["kind"], prompt=d.get("prompt", ""),
                        answer=(d.get("answer") or "").strip(), variables=list(d.get("variables") or []),
                        params=dict(d.get("params") or {}))

    def item_fields(self) -> dict[str, Any]:
        d = self.cleaned_data
        answer: Any = d["answer"].strip()
        if d["kind"] == "numeric":
            value = float(answer)
            answer = int(value) if value.is_integer() else value
        return {
            "slug": d["slug"], "kind": d["kind"], "prompt": d["prompt"], "answer": answer,
            "choices": _lines(d["choices"]) if d["kind"] == "multiple_choice" else [],
            "tolerance": d["tolerance"], "units": d["units"], "variables": d["variables"],
            "accept": _lines(d["accept"]), "params": d["params"], "hints": _hints(d["hints"]),
            "feedback": d["feedback"], "authored_difficulty": d["authored_difficulty"], "solution": d["solution"],
            "attribution": d["attribution"], "status": d["status"],
        }


class SettingsForm(forms.Form):
    title = forms.CharField(max_length=200)
    description = _Text(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    target_low = forms.FloatField(min_value=0.05, max_value=0.95, label="Target band: lowest P(correct)",
                                  help_text="Practice items are chosen so the student succeeds this often, or more.")
    target_high = forms.FloatField(min_value=0.05, max_value=0.99, label="Target band: highest P(correct)")
    mastery_threshold = forms.FloatField(min_value=0.5, max_value=0.99,
                                         help_text="P(known) at which a concept counts as mastered.")
    review_retention = forms.FloatField(min_value=0.5, max_value=0.99, label="Review target",
                                        help_text="Recall probability at which a mastered concept is due for review.")
    auto_publish_verified = forms.BooleanField(required=False, label="Publish verified generated items without review")
    placement_questions = forms.IntegerField(min_value=0, max_value=100, label="Placement questions",
                                             help_text="At most this many diagnostic questions at enrolment; 0 = none.")
    decimal_comma = forms.BooleanField(required=False, label="Answers use a decimal comma",
                                       help_text="Read 0,25 as a quarter. Off: the tutor asks for 0.25 instead.")
    teach_back = forms.ChoiceField(label="Teach-back", required=False, choices=[
        ("after_mastery", "After mastery: the student explains each mastered concept to a beginner"),
        ("on_request", "On request: the student may explain a mastered concept when they choose"),
        ("never", "Never")], help_text="Only concepts with key ideas are explained.")

    def __init__(self, *args: Any, teach_back_ready: tuple[int, int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if teach_back_ready is not None:
            ready, total = teach_back_ready
            self.fields["teach_back"].help_text = (
                f"Only concepts with key ideas are explained: {ready} of this course's {total} concept"
                f"{'' if total == 1 else 's'} {'has' if ready == 1 else 'have'} them"
                + ("." if ready == total else " (add them on each concept's page)."))

    @staticmethod
    def initial_for(course: Course) -> dict[str, Any]:
        s = course_settings(course=course)
        return {"title": course.title, "description": course.description, "target_low": s.target_band[0],
                "target_high": s.target_band[1], "mastery_threshold": s.mastery_threshold,
                "review_retention": s.review_retention, "auto_publish_verified": s.auto_publish_verified,
                "placement_questions": s.placement_questions, "decimal_comma": s.decimal_comma,
                "teach_back": s.teach_back}

    def clean(self) -> dict[str, Any]:
        d = super().clean()
        if d.get("target_low") is not None and d.get("target_high") is not None \
                and d["target_low"] >= d["target_high"]:
            self.add_error("target_high", "the highest must be above the lowest")
        return d

    def course_settings(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {"target_band": [d["target_low"], d["target_high"]], "mastery_threshold": d["mastery_threshold"],
                "review_retention": d["review_retention"], "auto_publish_verified": d["auto_publish_verified"],
                "placement_questions": d["placement_questions"], "decimal_comma": d["decimal_comma"],
                "teach_back": d["teach_back"] or CourseSettings().teach_back}


class ImportForm(forms.Form):
    file = forms.FileField(help_text="A course folder as .zip, an OATutor source as .tar.gz, a GIFT file (.gift), "
                                     "or a LaTeX quiz file written for the moodle package (.tex).")


class PrerequisiteForm(forms.Form):
    """One edge of the graph, drawn from the overview page."""

    concept = forms.ChoiceField()
    prerequisite = forms.ChoiceField()

    def __init__(self, *args: Any, course: Course, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(c.slug, c.title) for c in course.concepts.order_by("order")]
        self.fields["concept"].choices = choices
        self.fields["prerequisite"].choices = choices
