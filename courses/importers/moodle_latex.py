r"""Import LaTeX quizzes written with the CTAN `moodle` package (moodle.sty) as a `CourseSpec`.

    \begin{quiz}{Adding fractions}                     a quiz (a Moodle category) becomes a concept
    \begin{multi}[feedback={Use a common denominator.}]{Halves and thirds}
      What is $\frac12 + \frac13$?
      \item* $\frac56$
      \item[feedback={You added the tops and the bottoms.}] $\frac25$
    \end{multi}
    \end{quiz}

multi and truefalse become multiple_choice (the starred \item is the answer), numerical becomes numeric (the
tolerance of the \item, else of the question), shortanswer becomes short_text (every 100 % \item is accepted).
A per-answer `feedback=` goes to the item's feedback (wrong answer -> what it suggests), the question's
`feedback=` to its solution. Text keeps its maths as Markdown maths (`$...$`, `$$...$$`) and its \textbf, \emph,
lists and line breaks as Markdown. Options given to a quiz or to \moodleset are defaults for the questions after
them; \setcategory and \setsubcategory move the questions after them to another concept.

Essay, matching, cloze and description questions, and multiple-choice questions with several right answers, have
no single answer our items can check: they are reported and skipped. The quizzes carry no prerequisites, which the
report says. Malformed input (an environment not closed, an \item outside a question, an unknown option or value,
a numerical answer that is not a number) raises `CourseFormatError` naming the file and the line.
"""

from __future__ import annotations

import bisect
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from courses.format import ConceptSpec, CourseFormatError, CourseSpec, ItemSpec
from courses.importers.result import ImportIssue, ImportResult, slugify

QUESTIONS = ("multi", "truefalse", "numerical", "shortanswer")  # imported as items
SKIPPED = ("essay", "matching", "cloze", "description")  # reported: no single answer to check
QUIZ_ONLY = (*QUESTIONS, "essay", "matching", "cloze")  # outside a quiz these fail (description is also LaTeX's list)

# Options moodle.sty (v1.0) knows, by the kind of value they take. An unknown key fails, as it does in LaTeX.
_FLAGS = {"shuffle", "single", "multiple", "allornothing", "case sensitive", "usecase", "drag and drop", "dd",
          "vertical", "horizontal", "inline", "response required"}
_NUMBERS = {"points", "default grade", "penalty", "fraction", "fractiontol", "tolerance", "sanction", "ppi"}
_TEXTS = {"feedback", "tags", "template"}
_ONE_OF = {"numbering": ("alph", "Alph", "arabic", "roman", "Roman", "none"),
           "response format": ("html", "file", "html+file", "text", "monospaced"),
           "response field lines": ("5", "10", "15", "20", "25", "30", "35", "40"),
           "attachments allowed": ("0", "1", "2", "3", "unlimited"), "attachments required": ("0", "1", "2", "3")}
_KNOWN = _FLAGS | _NUMBERS | _TEXTS | set(_ONE_OF)
_ITEM_OPTIONS = {"fraction", "fractiontol", "feedback", "tolerance"}  # what an \item[...] may set
_OWN_OPTIONS = {"feedback", "fraction", "fractiontol", "tags"}  # belong to one question: never passed down
_SYNONYMS = {"default grade": "points", "case sensitive": "usecase", "dd": "drag and drop"}

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_ENVIRONMENT = re.compile(r"(?<!\\)(?:\\\\)*(\\(begin|end)\s*\{([^{}]*)\})")
_COMMAND = re.compile(r"\\([A-Za-z]+|.)", re.DOTALL)
_MOODLESET = re.compile(r"\\moodleset(?![A-Za-z])")

# Text-mode LaTeX -> Markdown. Markers stand for line structure until the text's spaces are tidied.
_PARA, _NEWLINE, _BREAK = "\ue000", "\ue001", "\ue002"
_MAX_NESTING = 50  # `{...}` inside `{...}`: deeper is not a question text
_SYMBOLS = {"%": "%", "&": "&", "#": "#", "{": "{", "}": "}", "_": "\\_", "$": "\\$", " ": " ", ",": " ", ";": " ",
            "!": "", "-": "", "/": "", "ldots": "…", "dots": "…", "textellipsis": "…", "S": "§", "euro": "€",
            "textdegree": "°", "textendash": "–", "textemdash": "—", "LaTeX": "LaTeX", "TeX": "TeX", "quad": " ",
            "qquad": " ", "hfill": " ", "par": _PARA, "newline": _BREAK, "noindent": "", "centering": "",
            "smallskip": _PARA, "medskip": _PARA, "bigskip": _PARA, "newpage": "", "clearpage": "", "relax": "",
            "ignorespaces": "", "leavevmode": "", "ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ", "aa": "å", "AA": "Å",
            "o": "ø", "O": "Ø", "ss": "ß", "l": "ł", "L": "Ł", "i": "i", "og": "« ", "fg": " »", "textquotedblleft": "“",
            "textquotedblright": "”"}
# Accents over the next letter (`\'e`, `\"{o}`, `\c{c}`) as Unicode combining marks.
_ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", "=": "\u0304", ".": "\u0307",
            "c": "\u0327", "v": "\u030c", "u": "\u0306", "H": "\u030b", "r": "\u030a", "k": "\u0328"}
_WRAPS = {"textbf": "**{}**", "emph": "*{}*", "textit": "*{}*", "textsl": "*{}*", "texttt": "`{}`", "url": "<{}>",
          **dict.fromkeys(("underline", "textrm", "textsf", "textup", "textsc", "textnormal", "text", "mbox"), "{}")}
_DROP_ONE_ARGUMENT = {"vspace", "hspace", "vspace*", "hspace*", "label"}
_LISTS = {"itemize": "- ", "enumerate": "1. "}
_BLOCKS = {"center", "flushleft", "flushright", "quote", "quotation"}
_ALIGNED = "\\begin{{aligned}}{}\\end{{aligned}}"  # KaTeX sets align's rows inside display maths as aligned
_DISPLAY_MATHS = {"equation": "{}", "equation*": "{}", "displaymath": "{}", "gather": "{}", "gather*": "{}",
                  "align": _ALIGNED, "align*": _ALIGNED}


@dataclass
class _Env:
    name: str
    begin: int  # where `\begin{name}` starts
    start: int  # just after it
    end: int = -1  # where `\end{name}` starts
    close: int = -1  # just after it
    children: list[_Env] = field(default_factory=list)


@dataclass
class _Answer:
    latex: str  # as written after `\item`, `*` and `[...]`
    at: int  # where its `\item` starts
    text_at: int  # where `latex` starts
    starred: bool
    options: dict[str, Any]


@dataclass
class _Question:
    env: _Env
    title: str  # plain text
    options: dict[str, Any]  # the question's own, over what quiz options and \moodleset passed down
    prompt: str  # Markdown
    answers: list[_Answer]
    notes: set[str] = field(default_factory=set)  # what the text conversion kept as written or left out


def load_moodle_latex(path: str | Path, *, course_slug: str, title: str) -> ImportResult:
    """Parse a .tex file with `\\begin{quiz}` environments; one concept per quiz (category), in file order."""
    source = _Source(Path(path))
    importer = _Importer(source)
    importer.walk(source.environments())
    if not importer.quizzes:
        raise CourseFormatError(source.path, None, "no \\begin{quiz}{Category} in this file: nothing to import")
    concepts = []
    for concept in importer.concepts.values():
        if concept.items:
            concepts.append(concept)
        else:
            importer.issue(concept.extra["latex"]["line"], f"quiz {concept.title!r}: none of its questions could "
                           "be imported, so it is left out", "empty-quiz")
    if concepts:
        importer.issue(None, "the quizzes carry no prerequisites: the concepts are listed in file order but the "
                       "tutor may offer them in any order; faculty may draw a prerequisite graph on the course page",
                       "no-prerequisites", "warning")
    spec = CourseSpec(slug=course_slug, title=title, concepts=concepts)
    stats = {"quizzes": importer.quizzes, "questions": importer.questions,
             "items": sum(len(c.items) for c in concepts)}
    return ImportResult(spec, importer.report, stats=stats)


class _Source:
    """The file's text with comments blanked out (line numbers unchanged), and positions turned into lines."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        if not path.is_file():
            raise CourseFormatError(path, None, "LaTeX file not found")
        data = path.read_bytes()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CourseFormatError(path, data[: exc.start].count(b"\n") + 1,
                                    f"not valid UTF-8 text (byte {exc.start}): save the file as UTF-8") from None
        # `%` starts a comment unless escaped (`\%`); after `\\` (a line break) it is a comment again.
        text = re.sub(r"(?<!\\)((?:\\\\)*)%[^\n]*", r"\1", text)
        end = re.search(r"\\end\s*\{document\}", text)
        self.text = text[: end.end()] if end else text  # LaTeX reads nothing after \end{document}
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]

    def line(self, position: int) -> int:
        return bisect.bisect_right(self._line_starts, position)

    def error(self, position: int, message: str) -> CourseFormatError:
        return CourseFormatError(self.path, self.line(position), message)

    def environments(self) -> _Env:
        """The tree of `\\begin`/`\\end` pairs; a pair that does not match fails at the line it opened."""
        root = _Env("", 0, 0, len(self.text), len(self.text))
        stack = [root]
        for match in _ENVIRONMENT.finditer(self.text):
            name, at = match.group(3).strip(), match.start(1)
            if match.group(2) == "begin":
                env = _Env(name, at, match.end())
                stack[-1].children.append(env)
                stack.append(env)
            elif all(env.name != name for env in stack[1:]):
                raise self.error(at, f"\\end{{{name}}} without a \\begin{{{name}}}")
            elif stack[-1].name != name:
                raise self.error(stack[-1].begin, f"\\begin{{{stack[-1].name}}} is not closed: \\end{{{name}}} "
                                                  f"at line {self.line(at)} comes first")
            else:
                env = stack.pop()
                env.end, env.close = at, match.end()
        if len(stack) > 1:
            raise self.error(stack[-1].begin, f"\\begin{{{stack[-1].name}}} is never closed")
        return root

    def skip_spaces(self, position: int) -> int:
        while position < len(self.text) and self.text[position].isspace():
            position += 1
        return position

    def group(self, position: int, stop: int, what: str) -> tuple[str, int]:
        """The text of the `{...}` or `[...]` opening at `position` (braces nest inside either), and where it ends."""
        opener = self.text[position]
        closer = "}" if opener == "{" else "]"
        depth, i = 0, position + 1
        while i < stop:
            ch = self.text[i]
            if ch == "\\":
                i += 2
                continue
            if ch == closer and depth == 0:
                return self.text[position + 1:i], i + 1
            depth += {"{": 1, "}": -1}.get(ch, 0)
            i += 1
        raise self.error(position, f"{what} opened with {opener!r} is not closed by {closer!r}")

    def commands(self, start: int, stop: int, children: list[_Env], names: set[str]) -> list[tuple[int, str]]:
        """Where the commands `names` stand outside braces and nested environments; unbalanced braces fail."""
        found: list[tuple[int, str]] = []
        opened: list[int] = []
        nested = iter(children)
        child = next(nested, None)
        i = start
        while i < stop:
            if child is not None and i >= child.begin:
                i, child = child.close, next(nested, None)
                continue
            ch = self.text[i]
            if ch == "\\":
                match = _COMMAND.match(self.text, i)
                name = match.group(1) if match else ""
                if name in names and not opened:
                    found.append((i, name))
                i += 1 + len(name) if name.isalpha() else 2
                continue
            if ch == "{":
                opened.append(i)
            elif ch == "}":
                if not opened:
                    raise self.error(i, "'}' without a matching '{' (write \\} for a brace in the text)")
                opened.pop()
            i += 1
        if opened:
            raise self.error(opened[-1], "'{' is never closed (write \\{ for a brace in the text)")
        return found


class _Importer:
    def __init__(self, source: _Source) -> None:
        self.source = source
        self.report: list[ImportIssue] = []
        self.concepts: dict[str, ConceptSpec] = {}
        self.used_ids: set[str] = set()
        self.defaults: dict[str, Any] = {}  # from \moodleset outside the quizzes
        self.quizzes = self.questions = 0

    def issue(self, line: int | None, message: str, category: str, severity: str = "error") -> None:
        where = f"{self.source.path}:{line}" if line else self.source.path
        self.report.append(ImportIssue(where, message, severity, category))

    # --- the document and its quizzes ---------------------------------------------------------------------

    def walk(self, env: _Env) -> None:
        """Quizzes wherever they stand, in file order; \\moodleset between them sets the defaults."""
        settings = [(m.start(), None) for m in _MOODLESET.finditer(self.source.text, env.start, env.end)
                    if not any(c.begin <= m.start() < c.close for c in env.children)]
        for position, child in sorted([*settings, *((c.begin, c) for c in env.children)], key=lambda e: e[0]):
            if child is None:
                self.defaults.update(self._braced_options(position, env.end))
            elif child.name == "quiz":
                self.quiz(child)
            elif child.name in QUIZ_ONLY:
                raise self.source.error(child.begin, f"\\begin{{{child.name}}} outside a quiz: put the question "
                                                     "inside \\begin{quiz}{Category} ... \\end{quiz}")
            else:
                self.walk(child)

    def quiz(self, env: _Env) -> None:
        self.quizzes += 1
        options, name, body = self._heading(env)
        inherited = {**self.defaults, **{k: v for k, v in options.items() if k not in _OWN_OPTIONS}}
        category = _plain(_Markdown(self.source, env.start, located=False).convert(name)) or "Quiz"
        concept = self._concept(category, env.begin)
        commands = self.source.commands(body, env.end, env.children,
                                        {"item", "moodleset", "setcategory", "setsubcategory"})
        events: list[tuple[int, Any]] = sorted([*commands, *((child.begin, child) for child in env.children)],
                                               key=lambda event: event[0])
        for position, what in events:
            if what == "item":
                raise self.source.error(position, f"\\item outside a question in quiz {category!r}: an answer "
                                                  "belongs inside \\begin{multi} ... \\end{multi} or another question")
            elif what == "moodleset":
                inherited.update(self._braced_options(position, env.end))
            elif what in ("setcategory", "setsubcategory"):
                start = self.source.skip_spaces(position + len(what) + 1)
                if self.source.text[start:start + 1] != "{":
                    raise self.source.error(position, f"\\{what} needs a category name in braces")
                text, _ = self.source.group(start, env.end, f"\\{what}")
                sub = _plain(_Markdown(self.source, start + 1).convert(text))
                concept = self._concept(sub if what == "setcategory" else f"{category}/{sub}", position)
            elif isinstance(what, _Env) and what.name in QUESTIONS:
                self.questions += 1
                item = self.question(what, inherited, concept)
                if item is not None:
                    concept.items.append(item)
            elif isinstance(what, _Env) and what.name in SKIPPED:
                self.questions += 1
                _, title, _ = self._heading(what)
                self.issue(self.source.line(what.begin), f"{what.name} question {_plain(title)!r} has no single "
                           "answer the tutor can check: skipped", what.name)

    def _concept(self, category: str, position: int) -> ConceptSpec:
        name = category.rstrip("/").rsplit("/", 1)[-1] or category
        slug = _slug(category)
        if slug not in self.concepts:
            self.concepts[slug] = ConceptSpec(slug=slug, title=name, extra={
                "latex": {"category": category, "line": self.source.line(position)}})
        return self.concepts[slug]

    def _heading(self, env: _Env) -> tuple[dict[str, Any], str, int]:
        """`[options]{title}` after `\\begin{name}`: the options, the title as written, where the body starts."""
        position = self.source.skip_spaces(env.start)
        options: dict[str, Any] = {}
        if self.source.text[position:position + 1] == "[":
            raw, after = self.source.group(position, env.end, f"the options of \\begin{{{env.name}}}")
            options = self._options(raw, position + 1, None)
            position = self.source.skip_spaces(after)
        if self.source.text[position:position + 1] != "{":
            what = "a category name" if env.name == "quiz" else "a title"
            raise self.source.error(env.begin, f"\\begin{{{env.name}}} needs {what} in braces: "
                                               f"\\begin{{{env.name}}}{{...}}")
        title, position = self.source.group(position, env.end, f"the title of \\begin{{{env.name}}}")
        return options, title.strip(), position

    def _braced_options(self, position: int, stop: int) -> dict[str, Any]:
        """The options of the `\\moodleset{...}` at `position`, less those that belong to one question."""
        start = self.source.skip_spaces(position + len("\\moodleset"))
        if self.source.text[start:start + 1] != "{":
            raise self.source.error(position, "\\moodleset needs its options in braces: \\moodleset{tolerance=0.01}")
        raw, _ = self.source.group(start, stop, "\\moodleset")
        return {k: v for k, v in self._options(raw, start + 1, None).items() if k not in _OWN_OPTIONS}

    def _options(self, raw: str, at: int, allowed: set[str] | None) -> dict[str, Any]:
        """`key=value, key={a, b}, flag` -> values checked by kind; `at` is where `raw` starts in the file."""
        out: dict[str, Any] = {}
        depth, start = 0, 0
        for i, ch in enumerate(raw + ","):
            escaped = i > 0 and raw[i - 1] == "\\"
            depth += 0 if escaped else {"{": 1, "}": -1}.get(ch, 0)
            if ch != "," or depth or escaped:
                continue
            part, offset, start = raw[start:i], at + start + len(raw[start:i]) - len(raw[start:i].lstrip()), i + 1
            if not part.strip():
                continue
            key, equals, value = part.partition("=")
            key, value = " ".join(key.split()), value.strip()
            if value.startswith("{") and value.endswith("}"):
                value = value[1:-1].strip()
            if key not in _KNOWN:
                raise self.source.error(offset, f"unknown option {key!r}; moodle.sty knows: "
                                                f"{', '.join(sorted(_KNOWN))}")
            if allowed is not None and key not in allowed:
                raise self.source.error(offset, f"option {key!r} does not apply to an \\item; an \\item takes: "
                                                f"{', '.join(sorted(allowed))}")
            out[_SYNONYMS.get(key, key)] = self._value(key, value, bool(equals), offset)
        if "single" in out:
            out.setdefault("multiple", not out.pop("single"))
        return out

    def _value(self, key: str, value: str, given: bool, at: int) -> Any:
        if key in _FLAGS:
            if not given:
                return True
            if value.lower() not in ("true", "false"):
                raise self.source.error(at, f"option {key}={value!r}: write true or false")
            return value.lower() == "true"
        if key in _TEXTS:
            return value
        if not given or not value:
            raise self.source.error(at, f"option {key!r} needs a value: {key}=...")
        if key in _ONE_OF:
            if value not in _ONE_OF[key]:
                raise self.source.error(at, f"option {key}={value!r}: valid values are {', '.join(_ONE_OF[key])}")
            return value
        if not _NUMBER.fullmatch(value) or not math.isfinite(float(value)):
            raise self.source.error(at, f"option {key}={value!r} is not a number")
        if key == "tolerance" and float(value) < 0:
            raise self.source.error(at, f"option tolerance={value!r}: a tolerance cannot be negative")
        return float(value)

    # --- one question ----------------------------------------------------------------------------------------

    def question(self, env: _Env, inherited: dict[str, Any], concept: ConceptSpec) -> ItemSpec | None:
        own, title_latex, body = self._heading(env)
        title = _plain(_Markdown(self.source, env.start, located=False).convert(title_latex))
        items = self.source.commands(body, env.end, env.children, {"item"})
        if not items:
            raise self.source.error(env.begin, f"{env.name} question {title!r} has no \\item answers")
        answers = [self._answer(position, items[n + 1][0] if n + 1 < len(items) else env.end, env.name)
                   for n, (position, _) in enumerate(items)]
        question = _Question(env, title, {**inherited, **own}, "", answers)
        question.prompt = self._markdown(question, self.source.text[body:items[0][0]], body) or title
        kinds = {"multi": self._multi, "truefalse": self._multi, "numerical": self._numerical,
                 "shortanswer": self._short_answer}
        meta: dict[str, Any] = {"title": title, "line": self.source.line(env.begin), "type": env.name}
        fields = kinds[env.name](question, meta)
        if fields is None:
            return None
        solution = self._markdown(question, question.options.get("feedback", ""), env.begin, located=False)
        if question.notes:
            self.issue(meta["line"], f"question {title!r}: {'; '.join(sorted(question.notes))}", "latex-kept",
                       "warning")
        item_id = _slug(title, max_length=80) if title else f"{concept.slug}-q{len(concept.items) + 1}"
        return ItemSpec(id=self._unique(item_id), prompt=question.prompt, solution=solution, **fields,
                        extra={"latex": meta})

    def _answer(self, position: int, stop: int, kind: str) -> _Answer:
        """`\\item`, `\\item*`, `\\item[options]`, `\\item[options]*` and the answer text after them."""
        i = position + len("\\item")
        starred = self.source.text.startswith("*", i)
        i += 1 if starred else 0
        options: dict[str, Any] = {}
        j = self.source.skip_spaces(i)
        if self.source.text.startswith("[", j):
            raw, i = self.source.group(j, stop, "the options of \\item")
            allowed = _ITEM_OPTIONS if kind == "numerical" else _ITEM_OPTIONS - {"tolerance"}
            options = self._options(raw, j + 1, allowed)
            if self.source.text.startswith("*", i):
                starred, i = True, i + 1
        return _Answer(self.source.text[i:stop], position, i, starred, options)

    def _markdown(self, question: _Question, latex: str, position: int, *, located: bool = True) -> str:
        converter = _Markdown(self.source, position, located=located)
        out = converter.convert(latex)
        question.notes |= converter.kept
        return out

    def _skip(self, question: _Question, message: str, category: str) -> None:
        self.issue(self.source.line(question.env.begin), f"{question.env.name} question {question.title!r} {message}",
                   category)

    def _multi(self, q: _Question, meta: dict[str, Any]) -> dict[str, Any] | None:
        """multi and truefalse: the starred \\item (or fraction=100) is the answer."""
        fractions = [a.options.get("fraction", 100.0 if a.starred else 0.0) for a in q.answers]
        right = [n for n, f in enumerate(fractions) if f >= 100]
        if q.options.get("multiple") or len(right) > 1 or (not right and any(f > 0 for f in fractions)):
            self._skip(q, "takes several right answers (a multiple-response question); our items have one: skipped",
                       "multiple-response")
            return None
        if not right:
            raise self.source.error(q.env.begin, f"{q.env.name} question {q.title!r} has no right answer: "
                                                 "mark it with \\item*")
        if q.env.name == "truefalse" and len(q.answers) != 2:
            raise self.source.error(q.env.begin, f"truefalse question {q.title!r} needs two \\item (true and false), "
                                                 f"not {len(q.answers)}")
        choices = []
        for n, answer in enumerate(q.answers):
            choice = self._markdown(q, answer.latex, answer.text_at)
            if q.env.name == "truefalse":
                choice = choice or ("True", "False")[n]
            if not choice:
                raise self.source.error(answer.at, f"question {q.title!r}: an \\item with no choice text")
            if choice in choices:
                raise self.source.error(answer.at, f"question {q.title!r} lists the choice {choice!r} twice")
            choices.append(choice)
        if len(choices) < 2:
            raise self.source.error(q.env.begin, f"multi question {q.title!r} needs at least two choices")
        partial = [choices[n] for n, f in enumerate(fractions) if 0 < f < 100]
        if partial:
            self.issue(meta["line"], f"question {q.title!r}: partial credit for {', '.join(map(repr, partial))} "
                       "is not kept; those choices are graded wrong", "partial-credit", "warning")
        answer = q.answers[right[0]]
        if answer.options.get("feedback"):
            meta["feedback_correct"] = self._markdown(q, answer.options["feedback"], answer.at, located=False)
        feedback = {choices[n]: self._markdown(q, a.options["feedback"], a.at, located=False)
                    for n, a in enumerate(q.answers) if n != right[0] and a.options.get("feedback")}
        return {"kind": "multiple_choice", "answer": choices[right[0]], "choices": choices, "feedback": feedback}

    def _numerical(self, q: _Question, meta: dict[str, Any]) -> dict[str, Any] | None:
        """Every \\item is right unless its fraction says otherwise; its tolerance, else the question's."""
        values: list[tuple[_Answer, float | int, float]] = []
        for answer in q.answers:
            text = re.sub(r"\\[,;! ]|\\num\b|\\\(|\\\)|[{}$\s]", "", answer.latex).replace("−", "-")
            fraction = answer.options.get("fraction", 100.0)
            if text == "*":
                self.issue(self.source.line(answer.at), f"question {q.title!r}: the answer '*' (anything, "
                           f"fraction {fraction:g}) cannot be matched here: left out", "wildcard", "warning")
                continue
            if not _NUMBER.fullmatch(text) or not math.isfinite(float(text)):
                hint = " (write a decimal point, not a comma)" if re.fullmatch(r"[-+]?\d+,\d+", text) else ""
                written = " ".join(answer.latex.split())[:40]
                raise self.source.error(answer.at, f"numerical question {q.title!r}: the answer {written!r} is not "
                                                   f"a number{hint}")
            values.append((answer, _as_number(text), fraction))
        right = [v for v in values if v[2] >= 100]
        if not right:
            if len(values) < len(q.answers):
                self._skip(q, "accepts any answer ('*'): nothing to check, skipped", "wildcard")
                return None
            raise self.source.error(q.env.begin, f"numerical question {q.title!r} has no right answer (an \\item "
                                                 "without fraction=, or with fraction=100)")
        answer, value, _ = right[0]
        tolerance = answer.options.get("tolerance", q.options.get("tolerance"))
        if len(right) > 1:
            meta["answers"] = [{"value": v, "tolerance": a.options.get("tolerance", q.options.get("tolerance"))}
                               for a, v, _ in right]
            self.issue(meta["line"], f"question {q.title!r} has {len(right)} right answers: the first is the key, "
                       "the others are kept in extra", "several-right", "warning")
        partial = [_format_number(v) for _, v, f in values if 0 < f < 100]
        if partial:
            self.issue(meta["line"], f"question {q.title!r}: partial credit for {', '.join(partial)} is not kept; "
                       "those answers are graded wrong", "partial-credit", "warning")
        if answer.options.get("feedback"):
            meta["feedback_correct"] = self._markdown(q, answer.options["feedback"], answer.at, located=False)
        feedback = {_format_number(v): self._markdown(q, a.options["feedback"], a.at, located=False)
                    for a, v, f in values if f < 100 and a.options.get("feedback") and v != value}
        return {"kind": "numeric", "answer": value, "tolerance": tolerance, "feedback": feedback}

    def _short_answer(self, q: _Question, meta: dict[str, Any]) -> dict[str, Any] | None:
        """Every \\item at fraction 100 (the default) is accepted; the others are wrong answers with feedback."""
        accepted: list[str] = []
        feedback: dict[str, str] = {}
        wildcards = 0
        for answer in q.answers:
            text = _plain(self._markdown(q, answer.latex, answer.text_at))
            fraction = answer.options.get("fraction", 100.0)
            where = self.source.line(answer.at)
            if not text:
                raise self.source.error(answer.at, f"shortanswer question {q.title!r}: an \\item with no answer text")
            if "*" in answer.latex:
                wildcards += 1
                self.issue(where, f"question {q.title!r}: the answer {answer.latex.strip()!r} uses the wildcard "
                           "'*', which the checker does not read: left out", "wildcard", "warning")
            elif fraction >= 100:
                accepted.append(text)
                if answer.options.get("feedback") and len(accepted) == 1:
                    meta["feedback_correct"] = self._markdown(q, answer.options["feedback"], answer.at, located=False)
            else:
                self.issue(where, f"question {q.title!r}: the answer {text!r} (fraction {fraction:g}) is graded "
                           "wrong" + (", with its feedback" if answer.options.get("feedback") else ""),
                           "partial-credit", "warning")
                if answer.options.get("feedback"):
                    feedback[text] = self._markdown(q, answer.options["feedback"], answer.at, located=False)
        if not accepted:
            if wildcards:
                self._skip(q, "has no right answer without a wildcard: skipped", "wildcard")
                return None
            raise self.source.error(q.env.begin, f"shortanswer question {q.title!r} has no right answer (an \\item "
                                                 "without fraction=, or with fraction=100)")
        if q.options.get("usecase"):
            self.issue(meta["line"], f"question {q.title!r} asks for case-sensitive answers; the checker ignores "
                       "case", "case-sensitive", "warning")
        return {"kind": "short_text", "answer": accepted[0], "accept": accepted[1:], "feedback": feedback}

    def _unique(self, base: str) -> str:
        item_id, n = base, 2
        while item_id in self.used_ids:
            item_id, n = f"{base}-{n}", n + 1
        self.used_ids.add(item_id)
        return item_id


class _Markdown:
    """Text-mode LaTeX to Markdown with maths: maths is kept as written (`\\(..\\)` becomes `$..$`, `\\[..\\]` and
    equation environments `$$..$$`); \\textbf, \\emph, lists, `\\\\` and paragraphs become Markdown; a command it
    does not know is kept as written and named in `kept`. `position` is where the text starts in the file, or
    (`located=False`, an option's value) the line that errors name."""

    def __init__(self, source: _Source, position: int, *, located: bool = True) -> None:
        self.source, self.position, self.located = source, position, located
        self.kept: set[str] = set()
        self.lists: list[str] = []
        self.latex = ""
        self.depth = 0  # groups inside groups: the reader recurses once per level

    def convert(self, latex: str) -> str:
        self.latex = latex
        out = self._run(0, len(latex))
        out = re.sub(f"[ \t]*{_BREAK}", _BREAK, re.sub(r"[ \t]+", " ", out))
        out = re.sub(f"{_BREAK}(?=\\s*(?:{_PARA}|{_NEWLINE}|$))|^\\s*{_BREAK}", "", out)
        out = out.replace(_PARA, "\n\n").replace(_NEWLINE, "\n").replace(_BREAK, "\\\n")
        out = "\n".join(line.strip() for line in out.split("\n"))
        return re.sub(r"\n{3,}", "\n\n", out).strip()

    def _error(self, i: int, message: str) -> CourseFormatError:
        return self.source.error(self.position + (i if self.located else 0), message)

    def _run(self, i: int, stop: int) -> str:
        self.depth += 1
        if self.depth > _MAX_NESTING:
            raise self._error(i, f"groups nest more than {_MAX_NESTING} deep")
        out: list[str] = []
        s = self.latex
        while i < stop:
            ch = s[i]
            if ch == "$" or s.startswith(("\\(", "\\["), i):
                text, i = self._maths(i)
                out.append(text)
            elif ch == "\\":
                text, i = self._command(i, stop)
                out.append(text)
            elif ch == "{":
                end = self._closing(i, stop)
                out.append(self._run(i + 1, end))
                i = end + 1
            elif ch.isspace():
                j = i
                while j < stop and s[j].isspace():
                    j += 1
                out.append(_PARA if s.count("\n", i, j) >= 2 else " ")
                i = j
            elif s.startswith("---", i) or s.startswith("--", i):
                dashes = 3 if s.startswith("---", i) else 2
                out.append("—" if dashes == 3 else "–")
                i += dashes
            elif s.startswith(("``", "''"), i):
                out.append("“" if ch == "`" else "”")
                i += 2
            else:
                out.append(" " if ch == "~" else ch)
                i += 1
        self.depth -= 1
        return "".join(out)

    def _closing(self, i: int, stop: int) -> int:
        depth = 0
        while i < stop:
            if self.latex[i] == "\\":
                i += 2
                continue
            depth += {"{": 1, "}": -1}.get(self.latex[i], 0)
            if depth == 0:
                return i
            i += 1
        raise self._error(i, "'{' is never closed")

    def _argument(self, i: int, stop: int) -> tuple[str, int]:
        """The `{...}` argument at `i` (after spaces) as Markdown, or "" when there is none."""
        while i < stop and self.latex[i].isspace():
            i += 1
        if i < stop and self.latex[i] == "{":
            end = self._closing(i, stop)
            return self._run(i + 1, end), end + 1
        return "", i

    def _optional(self, i: int) -> int:
        """Skip a `[...]` optional argument at `i`."""
        if self.latex.startswith("[", i):
            end = self.latex.find("]", i)
            return end + 1 if end > 0 else i
        return i

    def _maths(self, i: int) -> tuple[str, int]:
        s = self.latex
        if s.startswith("$$", i):
            opener, closer, display = "$$", "$$", True
        elif s.startswith("\\[", i):
            opener, closer, display = "\\[", "\\]", True
        elif s.startswith("\\(", i):
            opener, closer, display = "\\(", "\\)", False
        else:
            opener, closer, display = "$", "$", False
        j = i + len(opener)
        while j < len(s) and not s.startswith(closer, j):
            j += 2 if s[j] == "\\" else 1
        if j >= len(s):
            raise self._error(i, f"maths opened with {opener} is not closed by {closer}")
        return self._formula(s[i + len(opener):j], display), j + len(closer)

    @staticmethod
    def _formula(tex: str, display: bool) -> str:
        tex = " ".join(tex.split())
        return f"{_PARA}$${tex}$${_PARA}" if display else f"${tex}$"

    def _command(self, i: int, stop: int) -> tuple[str, int]:
        match = _COMMAND.match(self.latex, i, stop)
        if match is None:
            return "\\", i + 1
        name, end = match.group(1), match.end()
        if name.isalpha() and self.latex.startswith("*", end) and name + "*" in _DROP_ONE_ARGUMENT:
            name, end = name + "*", end + 1
        if name == "\\":
            return _BREAK, self._optional(end)
        if name in _ACCENTS:
            letter, end = self._argument(end, stop)
            if not letter and end < stop:
                letter, end = self.latex[end], end + 1
            return unicodedata.normalize("NFC", letter[:1] + _ACCENTS[name] + letter[1:]), end
        if name in _SYMBOLS:
            if name.isalpha():  # LaTeX drops the spaces after a command word: `\\oe uvre` is œuvre
                end += len(self.latex[end:stop]) - len(self.latex[end:stop].lstrip(" \t"))
            return _SYMBOLS[name], end
        if name in _WRAPS:
            text, end = self._argument(end, stop)
            return _WRAPS[name].format(text.strip()), end
        if name in _DROP_ONE_ARGUMENT:
            return "", self._argument(end, stop)[1]
        if name == "href":
            url, end = self._argument(end, stop)
            text, end = self._argument(end, stop)
            return f"[{text}]({url.replace(chr(92) + '_', '_')})", end
        if name == "includegraphics":
            file, end = self._argument(self._optional(end), stop)
            self.kept.add(f"figure {file!r} not imported")
            return "", end
        if name == "item" and self.lists:
            return f"{_NEWLINE}{_LISTS[self.lists[-1]]}", self._optional(end)
        if name in ("begin", "end"):
            return self._environment(name, end, stop)
        self.kept.add(f"\\{name} kept as written")
        if self.latex.startswith("{", end):  # its argument too, braces and all
            close = self._closing(end, stop)
            return f"{match.group(0)}{{{self._run(end + 1, close)}}}", close + 1
        return match.group(0), end

    def _environment(self, which: str, i: int, stop: int) -> tuple[str, int]:
        """Lists and centring become Markdown; equations become display maths; others stay as written."""
        found_name = re.compile(r"\s*\{([^{}]*)\}").match(self.latex, i, stop)
        if found_name is None:
            self.kept.add(f"\\{which} kept as written")
            return f"\\{which}", i
        name, end = found_name.group(1).strip(), found_name.end()
        if name in _LISTS:
            if which == "begin":
                self.lists.append(name)
                return _NEWLINE, end
            if self.lists:
                self.lists.pop()
            return _PARA, end
        if name in _BLOCKS:
            return _PARA, end
        if name in _DISPLAY_MATHS and which == "begin":
            found = re.compile(rf"\\end\s*\{{{re.escape(name)}\}}").search(self.latex, end, stop)
            if found is None:
                raise self._error(i, f"\\begin{{{name}}} is not closed")
            return self._formula(_DISPLAY_MATHS[name].format(self.latex[end:found.start()]), True), found.end()
        self.kept.add(f"\\{which}{{{name}}} kept as written")
        return self.latex[i - len(which) - 1:end], end


def _plain(markdown: str) -> str:
    """A Markdown line as plain text (titles, short answers): maths delimiters, emphasis and escapes dropped."""
    text = re.sub(r"\$\$?(.*?)\$\$?", r"\1", markdown.replace("\\$", "\ue003"), flags=re.DOTALL)
    text = re.sub(r"(\*\*|\*|`)(\S(?:.*?\S)?)\1", r"\2", text)
    return " ".join(text.replace("\ue003", "$").replace("\\_", "_").replace("\\\n", " ").split())


def _slug(text: str, *, max_length: int = 60) -> str:
    """`slugify` of the text with its accents taken off (Catégorie -> categorie, not cat-gorie)."""
    return slugify(unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode(), max_length=max_length)


def _as_number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _format_number(value: float | int) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
