"""Two of a concept's terms swapped in an explanation: a sentence that says of one term what a key idea says of
another ("a parameter is a number calculated from a sample", where the key idea says it of a statistic).

The teach-back scorer's coverage is a soft bag of words: a sentence with the right words in the wrong places covers
the idea it garbles, and the student is told the idea came across. This reads the words instead. A clause of the
explanation *swaps* key idea i when
- it says most of the idea's content words (`min_share` of them, at least `min_said`), but not the term `right`,
- it says instead a term `wrong` of another key idea, one the idea itself does not use,
- `right` and `wrong` are counterparts: each is a term some key idea is about (its first content word: "A statistic
  is ...", "The median ..."), never the same idea's, and
- it does not negate once more or less than the idea ("the median is not pulled by an outlier" says the right thing
  about the median).
A swap found so is a suspicion: the beginner asks which of the two terms was meant, and the student's reply decides
(`picks`). Synonyms and reworded claims pass unseen; the figures are in benchmarks/RESULTS.md (teachback_swaps.py).

No Django, no model: words, a Snowball stemmer and the stop words the scorer passes in.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_MATH = re.compile(r"\$\$.*?\$\$|(?<!\\)\$.*?(?<!\\)\$|\\\(.*?\\\)|\\\[.*?\\\]|\\[A-Za-z]+", re.DOTALL)
# Clauses: a sentence's parts on either side of a semicolon, a contrast ("..., while a parameter ...") or ", and".
_CLAUSE = re.compile(r"[.!?;:]+\s+|\n+|,?\s+(?:but|while|whereas|whilst|unlike|instead)\s+|,\s+and\s+|"
                     r"\s+(?:-|\u2013|\u2014)\s+")
_NEGATIONS = frozenset("not no never cannot none nothing neither nor without".split())
_NEGATED_WITHIN = 3  # words: "not the parameter", "isn't really the statistic"


@dataclass(frozen=True)
class Swap:
    idea: int  # the key idea the clause garbles
    right: str  # the idea's term the clause leaves out, as the idea writes it ("statistic")
    wrong: str  # the other idea's term said in its place, as the student wrote it ("parameter")
    sentence: str  # the explanation's clause that says it


@functools.cache
def _stemmer() -> object:
    import Stemmer

    return Stemmer.Stemmer("english")


def _stem(word: str) -> str:
    return str(_stemmer().stemWord(word))  # type: ignore[attr-defined]


def _content(text: str, stop: Collection[str]) -> list[tuple[str, str]]:
    """(stem, word) of the content words of `text`'s prose (formulas left out), in order."""
    words = [w.lower() for w in _WORD.findall(_MATH.sub(" ", text))]
    return [(_stem(w), w) for w in words if len(w) >= 3 and w not in stop and "'" not in w]


def _negations(text: str) -> int:
    words = [w.lower() for w in _WORD.findall(text)]
    return sum(w in _NEGATIONS or w.endswith("n't") for w in words)


def clauses(text: str) -> list[str]:
    """`text` cut into clauses; a formula is never cut ("$y_2 - y_1$")."""
    formulas: list[str] = []

    def hold(match: re.Match[str]) -> str:
        formulas.append(match.group())
        return f"\x00{len(formulas) - 1}\x00"

    held = _MATH.sub(hold, text)
    parts = [c.strip(" ,") for c in _CLAUSE.split(held) if c and c.strip(" ,")]
    return [re.sub(r"\x00(\d+)\x00", lambda m: formulas[int(m.group(1))], part) for part in parts]


def term_swaps(text: str, key_ideas: Sequence[str], stop: Collection[str], min_share: float = 0.75,
               min_said: int = 2) -> list[Swap]:
    """The key ideas `text` seems to say of the wrong term, at most one swap per idea, in the ideas' order. Each
    clause of a key idea is a claim about its first content word, its term ("The mean is pulled toward an outlier,
    but the median is not": two claims, about "mean" and about "median")."""
    claims = [(n, words) for n, idea in enumerate(key_ideas) for part in clauses(idea)
              if (words := _content(part, stop))]
    negations = [_negations(part) for idea in key_ideas for part in clauses(idea) if _content(part, stop)]
    terms = {words[0][0] for _, words in claims}
    found: dict[int, Swap] = {}
    for clause in clauses(text):
        said = _content(clause, stop)
        said_stems = {s for s, _ in said}
        for (n, words), negated in zip(claims, negations, strict=True):
            right = words[0][0]
            if n in found or right in said_stems:
                continue
            claim_stems = {s for s, _ in words}
            rest = claim_stems - {right}
            kept = rest & said_stems
            if len(kept) < min_said or len(kept) < min_share * len(rest):
                continue
            wrong = next((w for s, w in said if s in terms and s not in claim_stems), None)
            if wrong is None or _negations(clause) % 2 != negated % 2:
                continue
            found[n] = Swap(idea=n, right=words[0][1], wrong=wrong, sentence=clause)
    return [found[n] for n in sorted(found)]


def picks(reply: str, right: str, wrong: str) -> str | None:
    """Which of the two terms `reply` keeps, to "is that X or Y?": the first of them it says that no negation
    shortly before ("not the parameter, the statistic") rules out; None if it keeps neither."""
    targets = {_stem(right.lower()): right, _stem(wrong.lower()): wrong}
    for clause in clauses(reply):
        words = [w.lower() for w in _WORD.findall(clause)]
        for n, word in enumerate(words):
            term = targets.get(_stem(word))
            if term is None:
                continue
            before = words[max(0, n - _NEGATED_WITHIN):n]
            if not any(w in _NEGATIONS or w.endswith("n't") for w in before):
                return term
    return None


SWAP_PROBE = "Wait, you said \u201c{sentence}\u201d Is that \u201c{first}\u201d or \u201c{second}\u201d? I mix those two words up."
_QUOTED_CHARS = 200  # of the student's clause quoted back


def swap_probe(swap: Swap) -> str:
    """The beginner's question about a suspected swap: which of the two terms the student meant. The two come in
    alphabetical order, so the question does not hint at the answer."""
    sentence = swap.sentence if len(swap.sentence) <= _QUOTED_CHARS else \
        swap.sentence[:_QUOTED_CHARS].rsplit(" ", 1)[0] + " \u2026"
    sentence = sentence if sentence[-1:] in ".?!\u2026" else sentence + "."
    first, second = sorted((swap.right, swap.wrong), key=str.lower)
    return SWAP_PROBE.format(sentence=sentence, first=first, second=second)
