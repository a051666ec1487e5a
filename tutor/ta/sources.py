"""A course as the TA-bot's retrieval reads it: `courses.format.CourseSpec` -> `inference.retrieval.CourseText`,
and which passages state or compute an exercise's key (`passage_reveals`), decided with the answer checker.

No database here (benchmarks use it on imported courses); `tutor.ta.services` calls it with the course's rows.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from courses.checking import check_answer
from courses.format import CourseSpec, ItemSpec, worked_in
from courses.importers.latex import LatexError, expression_variables, latex_to_expression
from inference.retrieval import Chunk, ConceptText, CourseText, ItemText


def course_text(spec: CourseSpec) -> CourseText:
    """The texts of a course a student may read. An OATutor import's lesson is an outline the importer wrote (the
    lesson's name, objective and sibling skills), so it is marked as one: searched for scope, never quoted. Exercises
    are numbered in their concept's order, as its page lists them ("exercise 3", not an importer's id)."""
    concepts = []
    for concept in spec.concepts:
        oatutor = concept.extra.get("oatutor") if isinstance(concept.extra, dict) else None
        topics: list[str] = []
        if isinstance(oatutor, dict):
            for lesson in oatutor.get("lessons") or []:
                topics += [str(lesson.get(key, "")) for key in ("name", "topics") if lesson.get(key)]
        concepts.append(ConceptText(
            slug=concept.slug, title=concept.title, lesson=concept.lesson, explanation=concept.explanation,
            outline=oatutor is not None, topics=tuple(dict.fromkeys(topics)),
            items=tuple(ItemText(id=i.id, prompt=i.prompt, choices=tuple(i.choices), hints=tuple(i.hints),
                                 solution=i.solution, attribution=i.attribution, number=n)
                        for n, i in enumerate(concept.items, start=1))))
    return CourseText(slug=spec.slug, title=spec.title, concepts=tuple(concepts))


# --- which passages give a key away ---------------------------------------------------------------------------

_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)", re.DOTALL)
_ANSWER_LINE = re.compile(r"\banswer\b\s*(?:is|:)\s*[*_]*\s*([^\n]+)", re.IGNORECASE)  # "*Answer:* Graph A"
_ANSWER_LIKE = re.compile(r"(?:\banswer\b\s*(?:is|:)?[*_]*|\bresult\b\s*(?:is|:)|=|\bis\b|\bequals\b|\bget\b)\s*"
                          r"(\$\$.+?\$\$|\$.+?\$|[^\s.,;]+(?:\s*[-+*/^]\s*[^\s.,;]+)*)", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?%?|(?<![\w.])-?\d+(?:\.\d+)?%?")
_APPROACH = re.compile(r"[A-Za-z](?:_\{?\w+\}?)?|\\\w+")  # "h", "x_0", "\theta": a variable, before "\to"
_MAX_CANDIDATES = 60  # per passage: a long table of numbers is judged on its first ones
# Characters a key needs, squashed, to count wherever it appears (not only near its exercise); a number needs them in its
# plain value too: a passage elsewhere saying 0.5 does not give away the key "(6/12)", but one saying 1/6 gives away
# 0.1666...
DISTINCTIVE = 6
# Raised when the rule for what a passage gives away changes: indexes judged under an older rule are judged again.
JUDGEMENT_RULE = 3
# A multiple-choice or short-text key found in the hints or solutions of this many other exercises (or lessons) is a
# term the course teaches ("Standard deviation", "Simple random", "right-tailed"), not one exercise's answer.
TERM_SOURCES = 2
_TEXTUAL = ("multiple_choice", "short_text")  # keys compared as text


@dataclass(frozen=True)
class _Key:
    item: ItemSpec
    concept: str
    signature: float | None  # the key's value at fixed points of its variables; None: compared as text
    text: str  # squashed, for multiple choice and short text keys
    problem: str = ""  # the problem the exercise is a step of (`exercise_problems`)
    term: bool = False  # a text key the course uses as a word of its own (`course_terms`)
    setup: tuple[str, ...] = ()  # what shows this exercise in another passage (`_setup`)

    @property
    def distinctive(self) -> bool:
        """Whether a passage anywhere that states this key gives it away: `DISTINCTIVE` characters or more, and for a
        number (a key without variables) its plain value as long: "(6/12)" is 0.5, which a passage elsewhere says
        for its own reasons."""
        if len(self.text) < DISTINCTIVE:
            return False
        return self.signature is None or bool(self.item.variables) or len(f"{self.signature:.6g}") >= DISTINCTIVE

    def stated_by(self, chunk: Chunk, problems: dict[str, str]) -> bool:
        """Whether a passage stating this key gives it away: a text key that is also a term of the course only in
        the hints and solutions of its own problem's steps, or its concept's lesson and worked example."""
        if not self.term:
            return True
        return problems.get(chunk.item_id) == self.problem if chunk.item_id else chunk.concept == self.concept

    def worked_in(self, chunk: Chunk, problems: dict[str, str], shown: str) -> bool:
        """Whether a passage works this exercise: one of its problem's steps' hints or solution, or a passage of
        its concept (a lesson's worked example, another exercise's hint) that shows its question's maths or a run
        of its words (`shown`: the passage with its context, as `_setup` reads it). A short key that a passage of the
        concept computes for something else ("2" in a lesson about x = 1) gives nothing away."""
        if chunk.item_id and problems.get(chunk.item_id) == self.problem:
            return True
        return chunk.concept == self.concept and any(part in shown for part in self.setup)


def _squash(text: str) -> str:
    return re.sub(r"\\[a-z]+|[\s$\\{}*]", "", str(text).lower())


_POINTS = (0.37, 1.21, 2.9, 0.83, 1.7, 0.55)
_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:e[+-]?\d+)?|\.\d+)|([A-Za-z]+)|(\*\*|[-+*/^(),]))")
_FUNCTIONS = {"sqrt": math.sqrt, "ln": math.log, "log": math.log, "exp": math.exp, "sin": math.sin, "cos": math.cos,
              "tan": math.tan, "abs": abs, "Abs": abs}
_CONSTANTS = {"pi": math.pi, "e": math.e, "E": math.e}
MAX_TOKENS = 120  # a longer span is not a key: not evaluated
MAX_POWER = 400.0  # an exponent past this is not evaluated (a float overflows far below it anyway)


class _Unreadable(ValueError):
    pass


def _signature(expression: str, variables: Sequence[str] = ()) -> float | None:
    """The expression's value with each variable at a fixed point, rounded to 6 digits: equal keys have equal
    signatures. A small evaluator of the checker's syntax (numbers, + - * / ^, implicit products, a few functions),
    bounded by construction (tokens, exponent size): a narrowing filter, not the judge (`check_answer` is)."""
    tokens = [m.group(1) or m.group(2) or m.group(3) for m in _TOKEN.finditer(expression)]
    if not tokens or len(tokens) > MAX_TOKENS or "".join(tokens) != re.sub(r"\s+", "", expression):
        return None
    names = sorted({t for t in tokens if t.isalpha() and t not in _FUNCTIONS and t not in _CONSTANTS})
    values = {name: _POINTS[n % len(_POINTS)] + 0.13 * n for n, name in enumerate(names)}
    try:
        value, end = _sum(tokens, 0, values)
    except (_Unreadable, ValueError, ZeroDivisionError, OverflowError, IndexError, TypeError):
        return None
    if end != len(tokens) or not math.isfinite(value):
        return None
    return float(f"{value:.6g}")


def _sum(tokens: list[str], i: int, values: dict[str, float]) -> tuple[float, int]:
    value, i = _product(tokens, i, values)
    while i < len(tokens) and tokens[i] in ("+", "-"):
        op = tokens[i]
        right, i = _product(tokens, i + 1, values)
        value = value + right if op == "+" else value - right
    return value, i


def _product(tokens: list[str], i: int, values: dict[str, float]) -> tuple[float, int]:
    value, i = _power(tokens, i, values)
    while i < len(tokens) and (tokens[i] in ("*", "/") or tokens[i] == "(" or tokens[i][0].isalnum()
                               or tokens[i][0] == "."):
        op = tokens[i] if tokens[i] in ("*", "/") else "*"  # "2x", "3(x+1)": implicit products
        right, i = _power(tokens, i + 1 if tokens[i] in ("*", "/") else i, values)
        value = value * right if op == "*" else value / right
    return value, i


def _power(tokens: list[str], i: int, values: dict[str, float]) -> tuple[float, int]:
    if tokens[i] in ("+", "-"):
        sign = tokens[i]
        value, i = _power(tokens, i + 1, values)
        return (-value if sign == "-" else value), i
    base, i = _atom(tokens, i, values)
    if i < len(tokens) and tokens[i] in ("^", "**"):
        exponent, i = _power(tokens, i + 1, values)
        if abs(exponent) > MAX_POWER:
            raise _Unreadable("exponent too large")
        return float(base ** exponent), i
    return base, i


def _atom(tokens: list[str], i: int, values: dict[str, float]) -> tuple[float, int]:
    token = tokens[i]
    if token == "(":
        value, i = _sum(tokens, i + 1, values)
        if i >= len(tokens) or tokens[i] != ")":
            raise _Unreadable("unbalanced")
        return value, i + 1
    if token in _FUNCTIONS:
        if i + 1 >= len(tokens) or tokens[i + 1] != "(":
            raise _Unreadable("function without argument")
        value, i = _sum(tokens, i + 2, values)
        base = None
        if i < len(tokens) and tokens[i] == ",":
            base, i = _sum(tokens, i + 1, values)
        if i >= len(tokens) or tokens[i] != ")":
            raise _Unreadable("unbalanced")
        result = math.log(value, base) if base is not None else _FUNCTIONS[token](value)
        return float(result), i + 1
    if token in _CONSTANTS:
        return _CONSTANTS[token], i + 1
    if token in values:
        return values[token], i + 1
    return float(token), i + 1


def keys_digest(spec: CourseSpec) -> str:
    """A hash of what the judgement reads besides the passage: the rule's version, every item's key, what shows its
    exercise elsewhere, whether its lesson works it, and which text keys are terms. When it changes, what each passage
    gives away is judged again."""
    payload = json.dumps([JUDGEMENT_RULE, sorted((i.id, i.kind, str(i.answer), list(i.accept), list(_setup(i)),
                                                  worked_in(i.prompt, c.explanation, c.lesson))
                                                 for c in spec.concepts for i in c.items),
                          sorted(course_terms(spec, exercise_problems(spec)))])
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()


def exercise_problems(spec: CourseSpec) -> dict[str, str]:
    """Each exercise's problem. The steps an importer made of one problem (an OATutor problem's parts) share its
    scenario, and one step's hints may state another's answer; any other exercise is a problem of its own."""
    problems = {}
    for concept in spec.concepts:
        for item in concept.items:
            meta = item.extra.get("oatutor") if isinstance(item.extra, dict) else None
            problems[item.id] = str(meta.get("problem_id") or item.id) if isinstance(meta, dict) else item.id
    return problems


def course_terms(spec: CourseSpec, problems: dict[str, str]) -> frozenset[str]:
    """The squashed multiple-choice and short-text keys that the course uses as words of its own: each is found in
    the hints or worked solutions of `TERM_SOURCES` or more problems other than its own, counting concepts' lessons
    and worked examples. Such a passage teaches the term; it does not say which exercise's right choice it is. Read
    from the course itself, not from the passages judged, so a reindex of a few texts judges as a full one does."""
    keys: dict[str, set[str]] = {}  # key -> the problems it answers
    texts: dict[str, list[str]] = {}  # problem -> its steps' hints and solutions
    for concept in spec.concepts:
        for item in concept.items:
            texts.setdefault(problems[item.id], []).extend([*item.hints, item.solution])
            if item.kind in _TEXTUAL and item.answer is not None and (text := _squash(item.answer)):
                keys.setdefault(text, set()).add(problems[item.id])
    sources = [(problem, _squash(" ".join(parts))) for problem, parts in texts.items()]
    sources += [("", _squash(f"{concept.lesson} {concept.explanation}")) for concept in spec.concepts]
    return frozenset(text for text, own in keys.items()
                     if sum(text in source for problem, source in sources if problem not in own) >= TERM_SOURCES)


def _key_of(item: ItemSpec, concept: str, problem: str = "", terms: frozenset[str] = frozenset()) -> _Key | None:
    if item.answer is None or str(item.answer).strip() == "":
        return None
    if item.kind == "numeric":
        try:
            return _Key(item, concept, float(f"{float(item.answer):.6g}"), _squash(item.answer), problem=problem,
                        setup=_setup(item))
        except (TypeError, ValueError):
            return None
    if item.kind in ("symbolic", "template"):
        return _Key(item, concept, _signature(str(item.answer), item.variables), _squash(item.answer),
                    problem=problem, setup=_setup(item))
    text = _squash(item.answer)
    return _Key(item, concept, None, text, problem=problem, term=text in terms)


SETUP_WORDS = 6  # a run of this many words of an exercise's question, found in a passage, shows that exercise
_SETUP_MATHS = 4  # squashed characters a formula of the question needs to show it ("(1,3)", not "2")


def _setup(item: ItemSpec) -> tuple[str, ...]:
    """The squashed formulas of an exercise's question (but its key) and its runs of `SETUP_WORDS` words: a passage
    holding one of them is about this exercise."""
    maths = {_squash(next(g for g in m.groups() if g is not None)) for m in _MATH.finditer(item.prompt)}
    words = _words(item.prompt)
    runs = {"".join(words[i:i + SETUP_WORDS]) for i in range(len(words) - SETUP_WORDS + 1)}
    key = _squash(item.answer)
    return tuple(sorted(m for m in maths if len(m) >= _SETUP_MATHS and m != key) + sorted(runs))


def _words(text: str) -> list[str]:
    """The words of a text outside its maths, lower case."""
    return re.findall(r"[a-z0-9]+", _MATH.sub(" ", text).lower())


def _candidates(text: str) -> list[tuple[str, bool]]:
    """Spans of a passage that could be an exercise's answer, each with whether it is stated as a result: its maths,
    what follows "answer is"/"=" (stated), and its other numbers (not: "with $(1, 3)$", "$x^2 - 4$")."""
    stated = [next(g for g in m.groups() if g is not None) for m in _MATH.finditer(text)]
    stated += [m.group(1).strip("$") for m in _ANSWER_LIKE.finditer(text)]
    for span in list(stated):  # "x = 3" inside a formula: its right-hand side is a candidate too
        if "=" in span:
            stated.append(span.rsplit("=", 1)[1])
        # a limit's value ("= 8 + h \to 8"), not a variable's approach ("as $h \to 0$")
        before, arrow, after = span.rpartition("\\to")
        if arrow and not _APPROACH.fullmatch(before.rsplit("=", 1)[-1].strip()):
            stated.append(after)
    found = {s.strip(): True for s in stated if s.strip()}
    for m in _NUMBER.finditer(text):
        found.setdefault(m.group(0).strip(), False)
    return list(found.items())[:_MAX_CANDIDATES]


def _as_expression(span: str) -> str | None:
    try:
        return latex_to_expression(span.replace("%", ""))
    except (LatexError, ValueError):
        return None


@dataclass(frozen=True)
class CourseKeys:
    """The keys passages are judged against (`course_keys`): read from the course once, for every batch judged."""
    by_value: dict[float, list[_Key]]
    by_text: dict[str, list[_Key]]
    problems: dict[str, str]  # exercise -> its problem (`exercise_problems`)


def course_keys(spec: CourseSpec, *, item_ids: set[str] | None = None) -> CourseKeys:
    """The course's keys by value and by text, with what shows each exercise and which text keys are terms.
    `item_ids`: only these exercises. An exercise its concept's explanation or lesson works through (an imported
    concept's worked example) has no key to keep: every student reads it worked before practising, and practice
    serves it last (`courses.selectors.worked_in_lesson`)."""
    by_value: dict[float, list[_Key]] = {}
    by_text: dict[str, list[_Key]] = {}
    problems = exercise_problems(spec)
    terms = course_terms(spec, problems)
    for concept in spec.concepts:
        for item in concept.items:
            secret = not worked_in(item.prompt, concept.explanation, concept.lesson)
            key = (_key_of(item, concept.slug, problems[item.id], terms)
                   if secret and (item_ids is None or item.id in item_ids) else None)
            if key is not None and key.signature is not None:
                by_value.setdefault(key.signature, []).append(key)
            if key is not None and key.text:
                by_text.setdefault(key.text, []).append(key)
    return CourseKeys(by_value, by_text, problems)


def passage_reveals(chunks: Iterable[Chunk], spec: CourseSpec | None = None, *, item_ids: set[str] | None = None,
                    keys: CourseKeys | None = None) -> list[Chunk]:
    """Each chunk with `reveals` set to the exercises whose key it states or computes.

    A passage reveals an exercise when one of its maths spans, numbers or "answer is ..." spans is graded right by
    `courses.checking.check_answer` against the exercise's key. Candidates are narrowed by value first (the key's
    value at fixed points of its variables, `_signature`), so the checker runs only on likely matches. A distinctive
    key (`_Key.distinctive`: `DISTINCTIVE` characters or more, in a number's plain value too) counts wherever it
    appears; any other only where a passage works its exercise (`_Key.worked_in`: its problem's hints and solution,
    or a passage of its concept showing the question's maths or words), as "2" or "0.5" elsewhere says nothing about
    this exercise. Multiple-choice and short-text keys count as text, in an answer-like span near their exercise, or
    anywhere for a long one; a text key that is also a term of the course (`course_terms`) only in its own problem's
    passages and its concept's lesson. `item_ids`: only these exercises. `keys` instead of `spec`: read from the
    course already (`course_keys`), for a reindex judging many batches.
    """
    if keys is None:
        if spec is None:
            raise TypeError("passage_reveals needs the course's spec or its keys")
        keys = course_keys(spec, item_ids=item_ids)
    # An exercise stem asks and a course outline names: neither states an answer.
    return [c if c.kind in ("item", "outline") else c.with_reveals(_revealed(c, keys.by_value, keys.by_text,
                                                                             keys.problems))
            for c in chunks]


def _near(key: _Key, chunk: Chunk) -> bool:
    return chunk.item_id == key.item.id or (bool(chunk.concept) and chunk.concept == key.concept)


def _revealed(chunk: Chunk, by_value: dict[float, list[_Key]], by_text: dict[str, list[_Key]],
              problems: dict[str, str]) -> set[str]:
    found: set[str] = set()
    text = chunk.text
    answer_like = {_squash(m.group(1)) for m in _ANSWER_LIKE.finditer(text)}
    answer_like |= {_squash(m.group(1).strip().rstrip(".")) for m in _ANSWER_LINE.finditer(text)}
    squashed_text = _squash(text)
    for span in answer_like:
        found |= {k.item.id for k in by_text.get(span, ()) if k.item.kind in _TEXTUAL
                  and (_near(k, chunk) or len(span) >= DISTINCTIVE) and k.stated_by(chunk, problems)}
    for squashed, keys in by_text.items():
        if len(squashed) >= 12 and squashed in squashed_text:
            found |= {k.item.id for k in keys if k.item.kind in _TEXTUAL and k.stated_by(chunk, problems)}
    passage = f"{text} {chunk.context}"
    shown = f"{_squash(passage)}\n{''.join(_words(passage))}"  # its maths as `_setup` squashes it, then its words
    for span, stated in _candidates(text):
        expression = _as_expression(span)
        if expression is None:
            continue
        signature = _signature(expression, expression_variables(expression))
        for key in by_value.get(signature, []) if signature is not None else []:
            # a short key ("3") counts where a passage works its exercise and states it as a result, not wherever
            # the number occurs: "with $(1, 3)$ and $(4, 12)$" or "$x^2 - 4$" in its own hints gives nothing away
            if key.item.id in found or not (key.distinctive or (stated and key.worked_in(chunk, problems, shown))):
                continue
            if _checks(key.item, expression):
                found.add(key.item.id)
    return found


def _checks(item: ItemSpec, answer: str) -> bool:
    result = check_answer(item.kind if item.kind != "template" else "symbolic", item.answer, answer,
                          tolerance=item.tolerance, units=item.units, variables=item.variables or None,
                          accept=item.accept or None)
    return result.correct
