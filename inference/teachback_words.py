"""The words of a student's text as the teach-back checks read them: the scorer's screens and verdicts
(inference/teachback.py) and the swapped-terms check (inference/teachback_swaps.py) share these, so that a word, a
formula, a "not" and a reply mean the same to both. No Django, no model."""

from __future__ import annotations

import re
from collections.abc import Sequence

WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")  # words of letters in any script, with an apostrophe inside
# A formula ($...$, $$...$$, \(...\), \[...\]) or a LaTeX command
MATH = re.compile(r"\$\$.*?\$\$|(?<!\\)\$.*?(?<!\\)\$|\\\(.*?\\\)|\\\[.*?\\\]|\\[A-Za-z]+", re.DOTALL)
NEGATIONS = frozenset("not no never cannot none nothing neither nor without".split())


def words(text: str) -> list[str]:
    """The words of `text`, lower case."""
    return [w.lower() for w in WORD.findall(text)]


def negated(word: str) -> bool:
    return word in NEGATIONS or word.endswith("n't")


def negations(said: Sequence[str]) -> int:
    """How many of the words `said` negate ("not", "never", "isn't")."""
    return sum(negated(w) for w in said)


def prose(text: str) -> str:
    """`text` without its formulas and LaTeX commands: a beginner hears words, not "frac"."""
    return MATH.sub(" ", text)


def reply_text(answer: str) -> str:
    """A reply to the beginner as its words are compared: lower case, straight apostrophes, single spaces."""
    return " ".join(answer.lower().replace("\u2019", "'").split())
