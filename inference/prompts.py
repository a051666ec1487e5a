"""Every prompt the tutor sends a model, each a function of the student's state as plain dataclasses.

A prompt function returns a complete `GenerationRequest`: the messages, the limits, and the authored
text a student gets instead if the model is down (see `inference.fallback`). The tutor's services build
`StudentContext` from database rows; nothing here knows where it came from.

Rules the prompts keep, and that the tests check:
- an explanation names what the student already knows and answers their last wrong answer;
- a hint never contains the answer until the student has made `REVEAL_AFTER` attempts: the key is not
  even in the prompt, so the model cannot leak it; `withhold` also strips it from any stream;
- feedback on a wrong answer names the likely misconception, without giving the answer away early.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from inference.base import GenerationRequest, Message

ITEM_EXAMPLE_PROMPT = "Differentiate x^3 with respect to x."  # shown to the generator; copies are duplicates
REVEAL_AFTER = 3  # attempts after which a hint may show the worked answer
_LESSON_CHARS = 4000  # of lesson text sent to the model; long lessons are cut, their start kept

_TUTOR = ("You are a patient tutor for one student. Be brief and concrete (under 150 words), use the "
          "student's own words, and never make up facts beyond the lesson. Write plain Markdown; maths as "
          "$...$.")


@dataclass(frozen=True)
class ConceptBrief:
    """What the course says about one concept."""

    slug: str
    title: str
    lesson: str = ""
    explanation: str = ""
    pain_first: str = ""
    guess_first: str = ""
    prerequisites: tuple[str, ...] = ()  # titles


@dataclass(frozen=True)
class ItemContext:
    """The exercise the student is working on."""

    prompt: str
    answer: str  # the key; kept out of hint prompts until REVEAL_AFTER attempts
    hints: tuple[str, ...] = ()  # authored hint ladder, first rung first
    feedback: str = ""  # the authored misconception note matched to the last wrong answer, if any
    solution: str = ""


@dataclass(frozen=True)
class StudentContext:
    concept: ConceptBrief
    known: tuple[str, ...] = ()  # titles of concepts the student has mastered, closest first
    shaky: tuple[str, ...] = ()  # prerequisites the knowledge model is unsure about
    item: ItemContext | None = None
    last_wrong_answer: str | None = None
    attempts: int = 0  # on the current item
    question: str = ""  # what the student typed, when they asked something


def _lesson(concept: ConceptBrief) -> str:
    text = concept.lesson.strip()
    return text if len(text) <= _LESSON_CHARS else text[:_LESSON_CHARS] + "\n[...]"


def _known(ctx: StudentContext) -> str:
    if not ctx.known:
        return "The student has not mastered any related concept yet; start from everyday experience."
    line = "The student already knows: " + ", ".join(ctx.known[:6]) + ". Build on that explicitly, by name."
    if ctx.shaky:
        line += " They are unsure about: " + ", ".join(ctx.shaky[:4]) + "; recall it in one sentence if you use it."
    return line


def _request(kind: str, system: str, user: str, authored: str, max_tokens: int, **kw: object) -> GenerationRequest:
    return GenerationRequest(kind=kind, messages=(Message("system", system), Message("user", user)),
                             authored=authored, max_tokens=max_tokens, **kw)  # type: ignore[arg-type]


def _first_paragraph(text: str) -> str:
    return text.strip().split("\n\n", 1)[0] if text.strip() else ""


def pain_first(ctx: StudentContext) -> GenerationRequest:
    """Before the lesson: a short scenario where the student feels the need for the concept."""
    c = ctx.concept
    user = (f"Concept: {c.title}\n\nLesson:\n{_lesson(c)}\n\n{_known(ctx)}\n\n"
            f"Write a short, concrete situation (3-5 sentences) in which the student tries to solve a problem "
            f"with only what they already know and gets stuck or finds it painfully slow: the problem that "
            f"{c.title} solves. End with the question they cannot yet answer. Do not explain {c.title}.")
    authored = c.pain_first or _first_paragraph(c.lesson)
    return _request("pain_first", _TUTOR, user, authored, max_tokens=220, temperature=0.7)


def guess_prompt(ctx: StudentContext) -> GenerationRequest:
    """Before the lesson: a question the student answers by guessing, so that the lesson answers them."""
    c = ctx.concept
    user = (f"Concept: {c.title}\n\nLesson:\n{_lesson(c)}\n\n{_known(ctx)}\n\n"
            f"Ask the student ONE question about {c.title} that they can guess at before the lesson, "
            f"with a definite answer the lesson reveals. Give no hint of the answer. One or two sentences.")
    authored = c.guess_first or f"Before we start: what do you think {c.title} is for? Take a guess."
    return _request("guess_prompt", _TUTOR, user, authored, max_tokens=120, temperature=0.7)


def explanation(ctx: StudentContext) -> GenerationRequest:
    """Explain the concept from what the student knows; if they just got it wrong, start from that answer."""
    c = ctx.concept
    parts = [f"Concept: {c.title}", f"Lesson:\n{_lesson(c)}", _known(ctx)]
    if ctx.item and ctx.last_wrong_answer:
        parts.append(f"The student just answered {ctx.last_wrong_answer!r} to: {ctx.item.prompt}\n"
                     f"Start by saying what is reasonable in that answer and where the reasoning goes wrong.")
        if ctx.item.feedback:
            parts.append(f"The course's note on this mistake: {ctx.item.feedback}")
    if ctx.question:
        parts.append(f"The student asks: {ctx.question}")
    parts.append(f"Explain {c.title} again in a different way from the lesson, with one worked example "
                 f"that is NOT the exercise above.")
    return _request("explanation", _TUTOR, "\n\n".join(parts), c.explanation or c.lesson, max_tokens=400)


def hint(ctx: StudentContext, level: int) -> GenerationRequest:
    """Rung `level` (1 = gentlest) of the hint ladder for the current item."""
    if ctx.item is None:
        raise ValueError("a hint needs the item the student is working on")
    item, level = ctx.item, max(1, level)
    may_reveal = ctx.attempts >= REVEAL_AFTER
    rung = {1: "Name the idea or rule that applies, as a question. No computation.",
            2: "Point to the first step and what to do in it, without doing the step."}.get(
        level, "Do the first step for them and leave the rest." if not may_reveal
        else "Walk through the solution step by step; the answer may now be given.")
    parts = [f"Concept: {ctx.concept.title}", f"Exercise: {item.prompt}", _known(ctx),
             f"Attempts so far: {ctx.attempts}."]
    if ctx.last_wrong_answer:
        parts.append(f"Their last answer was {ctx.last_wrong_answer!r}, which is wrong.")
    if may_reveal:
        parts.append(f"Correct answer: {item.answer}" + (f"\nWorked solution: {item.solution}" if item.solution else ""))
    else:
        parts.append("Do NOT state the final answer or any expression equivalent to it.")
    parts.append(f"Hint level {level}: {rung}")
    authored = item.hints[min(level, len(item.hints)) - 1] if item.hints else (
        item.solution if may_reveal and item.solution else f"Look back at the rule for {ctx.concept.title}.")
    return _request("hint", _TUTOR, "\n\n".join(parts), authored, max_tokens=150,
                    metadata={"level": level, "may_reveal": may_reveal})


def feedback(ctx: StudentContext) -> GenerationRequest:
    """Feedback on a wrong answer that names the likely misconception."""
    if ctx.item is None or not ctx.last_wrong_answer:
        raise ValueError("feedback needs the item and the student's wrong answer")
    item = ctx.item
    may_reveal = ctx.attempts >= REVEAL_AFTER
    parts = [f"Concept: {ctx.concept.title}", f"Exercise: {item.prompt}", f"Correct answer (for you): {item.answer}",
             f"The student answered: {ctx.last_wrong_answer}", _known(ctx)]
    if item.feedback:
        parts.append(f"The course's note on this mistake: {item.feedback}")
    parts.append("In two or three sentences: name the most likely misconception that produces exactly this "
                 "answer (e.g. 'multiplied the exponent instead of subtracting one'), and say how to check it. "
                 + ("You may give the correct answer." if may_reveal else
                    "Do NOT give the correct answer: the student will try again."))
    authored = item.feedback or "Not quite. Check each step against the rule, then try again."
    return _request("feedback", _TUTOR, "\n\n".join(parts), authored, max_tokens=150,
                    metadata={"may_reveal": may_reveal})


def item_generation(concept: ConceptBrief, n: int, kinds: tuple[str, ...] = ("numeric", "symbolic", "multiple_choice"),
                    existing: tuple[str, ...] = (), seed: int | None = None) -> GenerationRequest:
    """Ask for `n` practice items as JSON, each with a `check` the verifier recomputes the key from."""
    from inference.items import batch_schema  # the schema lives with its parser

    example = {"items": [{"kind": "symbolic", "prompt": ITEM_EXAMPLE_PROMPT,
                          "answer": "3*x**2", "variables": ["x"], "check": "diff(x**3, x)", "choices": [],
                          "hints": ["Which rule applies to a power of x?"], "solution": "Power rule: 3x^2.",
                          "difficulty": "easy"}]}
    avoid = "\n".join(f"- {p}" for p in existing[:30]) or "(none yet)"
    user = (f"Concept: {concept.title}\n\nLesson:\n{_lesson(concept)}\n\n"
            f"Write {n} new practice items of these kinds: {', '.join(kinds)}.\n"
            "For every item give `check`: a SymPy expression that computes the answer from the problem "
            "(use diff, integrate, limit, Rational, sqrt, at(expr, x, value) to evaluate at a point, ...) and "
            "that uses the problem's own numbers and variables, so that the key can be verified by machine. "
            "For multiple_choice, `answer` is the text of the one correct choice and the other choices are "
            "plausible mistakes. Use ** for powers in answer and check.\n"
            f"Do not repeat these existing items:\n{avoid}\n\nExample of the format:\n{json.dumps(example)}")
    return GenerationRequest(kind="item", messages=(Message("system", "You write exercises for a course. "
                                                             "Answer with JSON only."), Message("user", user)),
                             max_tokens=220 * n + 100, temperature=0.7, seed=seed, json_schema=batch_schema(n))


_NOVICE = ("You are a curious beginner who has never studied this subject. A student is explaining an idea to you. "
           "Ask like a real beginner: short, plain words, no jargon, one question only, never the answer.")


def novice_follow_up(concept: ConceptBrief, explanation: str, missing_idea: str, authored: str,
                     asked: tuple[str, ...] = ()) -> GenerationRequest:
    """Teach-back: the beginner's one follow-up question after the student's explanation, aimed at a key idea the
    explanation left out or got wrong. The idea steers the question but must not be given away by it: the student
    is to say it. `authored` (a course probe) is what the student gets without a model."""
    before = "\n".join(f"- {q}" for q in asked) or "(none)"
    user = (f"Topic: {concept.title}\n\nThe student's explanation to you:\n{explanation[:_LESSON_CHARS]}\n\n"
            f"(For you only, never repeat it: the explanation did not make this clear: {missing_idea})\n\n"
            f"Questions you already asked:\n{before}\n\n"
            "Ask ONE short question (under 25 words) that a confused beginner would ask and that can only be "
            "answered by explaining that point. Do not state the point, do not quiz, do not praise.")
    return _request("novice_follow_up", _NOVICE, user, authored, max_tokens=60, temperature=0.3)


def misconception_check(concept: ConceptBrief, explanation: str, misconception: str) -> GenerationRequest:
    """Teach-back: does the student's explanation claim a misconception the scorer suspects? The answer is one word,
    yes or no. No authored fallback: without a model (or when it is down) nothing is confirmed, and the tutor does
    not tell a student they hold a misconception on the scorer's word alone."""
    user = (f"Topic: {concept.title}\n\nA student's explanation:\n{explanation[:_LESSON_CHARS]}\n\n"
            f"Common wrong belief: {misconception}\n\n"
            "Does the student's explanation claim this wrong belief is true? A student who warns against it, says "
            "the opposite, or does not mention it does not claim it. Answer with one word: yes or no.")
    return _request("misconception_check", "You check students' explanations carefully and answer yes or no.",
                    user, "", max_tokens=3)


def idea_check(concept: ConceptBrief, explanation: str, idea: str) -> GenerationRequest:
    """Teach-back: does the student's explanation state a key idea, in any words? The answer is one word, yes or no.
    No authored fallback: without a model (or when it is down) the scorer's verdict stands."""
    user = (f"Topic: {concept.title}\n\nA student's explanation:\n{explanation[:_LESSON_CHARS]}\n\n"
            f"Key idea: {idea}\n\n"
            "Does the student's explanation state this key idea, in any words (an example that makes the same claim "
            "counts)? Using the idea's words without making its claim, or saying something else, does not. Answer "
            "with one word: yes or no.")
    return _request("idea_check", "You check students' explanations carefully and answer yes or no.", user, "",
                    max_tokens=3)


def novice_questions(concept: ConceptBrief, n: int = 5) -> GenerationRequest:
    """For the author, against the curse of knowledge: the questions a beginner would ask reading the lesson, one
    per line. No authored fallback: without a model there is nothing honest to show."""
    user = (f"Here is a lesson on {concept.title}:\n\n{_lesson(concept)}\n\n"
            f"Read it as a beginner would. Write the {n} questions you would most likely ask the author, where the "
            "lesson assumes something you do not know, skips a step, or uses a word it never explains. One question "
            "per line, no numbering, no answers.")
    return _request("novice_questions", _NOVICE, user, "", max_tokens=40 * n + 40, temperature=0.3)


def withhold(chunks: Iterator[str], answers: tuple[str, ...], mask: str = "…") -> Iterator[str]:
    """Stream `chunks`, replacing any occurrence of an answer (even split across chunks) by `mask`.

    A belt to the prompt's braces: a hint before REVEAL_AFTER attempts is streamed through this. Keys
    shorter than two characters are not masked (masking every "2" would garble the hint).
    """
    secrets = sorted({a.strip() for a in answers if len(a.strip()) >= 2}, key=len, reverse=True)
    if not secrets:
        yield from chunks
        return
    keep = max(len(s) for s in secrets) - 1
    pending = ""
    for chunk in chunks:
        pending += chunk
        for secret in secrets:
            pending = pending.replace(secret, mask)
        if len(pending) > keep:
            yield pending[: len(pending) - keep]
            pending = pending[len(pending) - keep:]
    if pending:
        yield pending

