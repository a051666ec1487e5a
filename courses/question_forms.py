"""The expressions a question shows and the form its key is written in, in the checker's syntax: what a student
could copy back as an answer, and what the course would accept as written (`courses.checking._restates`).

Pure functions of the texts (no Django), cached: the same prompt is read for every student who answers it.
"""

from __future__ import annotations

import functools
import re

from courses.importers.latex import LatexError, latex_to_expression
from courses.rendering import formulas

# A number written in a question's text, outside its formulas: "7,158,000,000", "0.00135", "42".
_NUMBER = re.compile(r"(?<![\w.,$^])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?![\w.]\d|\w)")
_FORMULA = re.compile(r"\$\$.+?\$\$|\$.+?\$", re.S)


@functools.lru_cache(maxsize=8192)
def prompt_expressions(prompt: str) -> tuple[str, ...]:
    """The formulas a question shows (equations and inequalities left out: an answer may well restate one), then
    the numbers its text states outside them, commas dropped."""
    found = [e for e in _expressions(tuple(formulas(prompt))) if not any(sign in e for sign in "=<>")]
    found += [n.replace(",", "") for n in _NUMBER.findall(_FORMULA.sub(" ", prompt))]
    return tuple(dict.fromkeys(found))


@functools.lru_cache(maxsize=8192)
def written_expressions(written: tuple[str, ...]) -> tuple[str, ...]:
    """A key as the course writes it (LaTeX, with or without its dollars), in the checker's syntax."""
    return _expressions(written)


def _expressions(texs: tuple[str, ...]) -> tuple[str, ...]:
    found = []
    for tex in texs:
        try:
            expression = latex_to_expression(tex)
        except LatexError:
            continue
        if expression:
            found.append(expression)
    return tuple(found)
