"""Two of a concept's terms swapped in an explanation: a sentence that says of one term what a key idea says of
another ("a parameter is a number calculated from a sample", where the key idea says it of a statistic), a word for
its opposite ("... only when the limit of the numerator is not zero"), or two words in each other's places
("continuous implies differentiable").

The teach-back scorer's coverage is a soft bag of words: a sentence with the right words in the wrong places covers
the idea it garbles, and the student is told the idea came across. This reads the words, in order, instead
(`term_swaps`): a clause of the explanation swaps a key idea's claim when one such edit puts it right, and put right
it says nearly all of the claim in the claim's order. Only a sentence that follows the key idea's wording is caught;
one in the student's own words is not, and a three-word claim is too short to tell a swap from a rewording.

A swap found so is a suspicion: the beginner asks which of the two terms was meant (`swap_probe`), and the student's
reply decides (`picks`). The figures (caught, false alarms, on explanations written blind for imported courses) are
in benchmarks/RESULTS.md, from benchmarks/teachback_swaps.py.

No Django, no model: words, a Snowball stemmer and the stop words the scorer passes in.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from inference.teachback_words import MATH, negated, negations, prose, reply_text
from inference.teachback_words import words as _words

# Clauses (each keeps its own end: "... like 0.333..."): a sentence's parts on either side of a semicolon, a dash,
# a contrast ("..., while a parameter ..."), a "because", or ", and" / ", so" / ", since" (a plain hyphen is a minus
# more often: "(b - a)").
_CLAUSE = re.compile(r"(?<=[.!?;:])\s+|\n+|,?\s+(?:but|while|whereas|whilst|unlike|instead|because)\s+|"
                     r",\s+(?:and|so|since)\s+|\s+(?:\u2013|\u2014|--)\s+")
_NUMBERS = frozenset("one two three four five six seven eight nine ten".split())  # counts, not terms
_NEGATED_WITHIN = 3  # words: "not the parameter", "isn't really the statistic"


@dataclass(frozen=True)
class Swap:
    idea: int  # the key idea the clause garbles
    right: str  # the idea's term the clause leaves out, as the idea writes it ("statistic")
    wrong: str  # the other idea's term said in its place, as the student wrote it ("parameter")
    sentence: str  # the explanation's clause that says it
    # "substituted": `wrong` said where the idea has `right`; "exchanged": both said, each in the other's place
    # (`right` is the one the idea says first)
    kind: str = "substituted"


@functools.cache
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def _stem(word: str) -> str:
    return str(_stemmer().stemWord(word))


def _content(text: str, stop: Collection[str]) -> list[tuple[str, str]]:
    """(stem, word) of the content words of `text`'s prose (formulas left out), in order."""
    words = [w.removesuffix("'s") for w in _words(prose(text).replace("\u2019", "'"))]
    return [(_stem(w), w) for w in words if len(w) >= 3 and w not in stop and w not in _NUMBERS and "'" not in w]


def clauses(text: str) -> list[str]:
    """`text` cut into clauses; a formula is never cut ("$y_2 - y_1$")."""
    formulas: list[str] = []

    def hold(match: re.Match[str]) -> str:
        formulas.append(match.group())
        return f"\x00{len(formulas) - 1}\x00"

    held = MATH.sub(hold, text)
    parts = [c.strip(" ,") for c in _CLAUSE.split(held) if c and c.strip(" ,.;:")]
    return [re.sub(r"\x00(\d+)\x00", lambda m: formulas[int(m.group(1))], part) for part in parts]


# Pairs of words that name opposite or mirror-image things in mathematics and its uses, which students put in each
# other's place: written from general knowledge, not from any course (domain terms like "statistic" and "parameter"
# are found as the key ideas' own terms). Compared as Snowball stems.
OPPOSITES = tuple(tuple(pair.split("/")) for pair in """numerator/denominator top/bottom positive/negative
increase/decrease increasing/decreasing add/subtract addition/subtraction multiply/divide multiplication/division
sum/product sum/difference product/quotient input/output horizontal/vertical left/right upper/lower maximum/minimum
greater/less larger/smaller bigger/smaller higher/lower above/below before/after inside/outside rise/fall up/down
plus/minus odd/even true/false necessary/sufficient open/closed include/exclude inclusive/exclusive
dependent/independent discrete/continuous finite/infinite rational/irrational real/imaginary row/column
radians/degrees sine/cosine sin/cos secant/tangent convergent/divergent concave/convex parallel/perpendicular
domain/range wider/narrower long/short width/height numerator/exponent base/exponent coefficient/exponent
square/root squared/cubed square/cube radius/diameter area/perimeter area/volume slope/intercept union/intersection
reject/accept null/alternative left/right skewed/symmetric strong/weak direct/inverse always/sometimes""".split())


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    """The length of the longest common subsequence of `a` and `b`."""
    row = [0] * (len(b) + 1)
    for x in a:
        diagonal = 0
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], diagonal + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def _edits(claim: list[str], said: list[tuple[str, str]], base: int, terms: set[str],
           opposites: frozenset[frozenset[str]], kinds: Collection[str], once: set[str]
           ) -> Iterator[tuple[str, str, int, str]]:
    """(right, wrong, the longest common subsequence with the claim once put right, kind) for each way of putting
    one swap in `said` right that puts more of the claim in order: a word put back, or two words exchanged (each
    said once in the claim, `once`, and once in `said`)."""
    spoken = [s for s, _ in said]
    for right in claim:
        if right in spoken:
            continue
        for wrong in dict(said):
            if wrong in claim or not (("terms" in kinds and right in terms and wrong in terms)
                                      or ("opposites" in kinds and frozenset((right, wrong)) in opposites)):
                continue
            fixed = _lcs(claim, [right if s == wrong else s for s in spoken])
            if fixed > base:
                yield right, wrong, fixed, "substituted"
    if "exchanged" in kinds:
        shared = [s for s in claim if s in once and spoken.count(s) == 1]  # a word said twice has no one place
        for i, first in enumerate(shared):
            for second in shared[i + 1:]:
                # neighbours on either side are a rewording: "the population's parameter" for "the parameter of the
                # population", "we collect data" for "data are collected"
                if claim.index(second) - claim.index(first) < 2 or abs(spoken.index(second) - spoken.index(first)) < 2:
                    continue
                fixed = _lcs(claim, [second if s == first else first if s == second else s for s in spoken])
                if fixed > base:
                    yield first, second, fixed, "exchanged"


# A claim's opening frame ("In interval notation, a parenthesis ...", "For a continuous variable, ..."): the claim is
# about the first word after it as much as about the frame's first word.
_FRAME = re.compile(r"^\W*(?:in|for|on|at|when|if|once|after|before|to|with|by|under)\b[^,]*,\s*", re.IGNORECASE)


def _heads(claim: str, stop: Collection[str]) -> tuple[str | None, str | None]:
    """The terms a claim is about: its first content word, and the first after an opening frame (or None)."""
    first = words[0][0] if (words := _content(claim, stop)) else None
    frame = _FRAME.match(claim)
    after = _content(claim[frame.end():], stop) if frame else []
    return first, after[0][0] if after else None


@dataclass(frozen=True)
class _Claim:
    """A clause of a key idea, as term_swaps compares it."""

    idea: int
    words: list[tuple[str, str]]  # (stem, word) of its content words, in order
    negations: int
    first: str | None  # its terms (`_heads`)
    after: str | None

    @functools.cached_property
    def surface(self) -> dict[str, str]:  # each stem once, in order, with the word the idea writes
        return dict(self.words)

    @functools.cached_property
    def once(self) -> set[str]:  # the stems it says once (an exchange needs one place for each word)
        stems = [s for s, _ in self.words]
        return {s for s in stems if stems.count(s) == 1}


@functools.cache
def _opposite_stems() -> frozenset[frozenset[str]]:
    return frozenset(frozenset(map(_stem, pair)) for pair in OPPOSITES)


def term_swaps(text: str, key_ideas: Sequence[str], stop: Collection[str], min_share: float = 0.75,
               min_said: int = 3, kinds: Collection[str] = ("terms", "opposites", "exchanged"),
               topic: str = "", min_precision: float = 0.5) -> list[Swap]:
    """The key ideas `text` seems to say with two terms swapped, at most one swap per idea, in the ideas' order.
    Each clause of a key idea is a claim, its content words in order ("The mean is pulled toward an outlier, but the
    median is not": two claims). A clause of the text swaps a claim when, with one word put back, it says the claim's
    content words in the claim's order (their longest common subsequence) more fully than as written, at least
    `min_share` of them and more than `min_said`, and negates as often (mod 2); a word of the `topic` the clause
    does not say is not counted ("It's the change in input ..." need not name "the average rate of change"); and
    the clause is mostly the claim: at least `min_precision` of its content words are in that subsequence (a long
    sentence that mentions the words in passing is not one). The word put back:
    - "terms": both words are terms, the first content word of a claim or the first after its opening frame (what
      it is about, `_heads`): the text says another claim's term where this claim has its own, or another term it
      names ("A parameter is a number calculated from a sample"); a term is put back even where the concept's title
      names it;
    - "opposites": the text says a word's opposite (OPPOSITES: "numerator" for "denominator");
    - "exchanged": two of the claim's own words in each other's places ("continuous implies differentiable"); not
      two neighbours in the claim or in the clause, so that "the population's parameter" for "the parameter of the
      population" or "we collect data" for "data are collected" is not one."""
    opposites = _opposite_stems()
    claims = [_Claim(n, words, negations(_words(part)), *_heads(part, stop)) for n, idea in enumerate(key_ideas)
              for part in clauses(idea) if len(words := _content(part, stop)) > min_said]
    firsts = {c.first for c in claims if c.first}
    framed = {c.after for c in claims if c.after}
    terms = firsts | framed
    topical = {stem for stem, _ in _content(topic, stop)}
    found: dict[int, Swap] = {}
    for clause in clauses(text):
        said = _content(clause, stop)
        spoken = [s for s, _ in said]
        surface = dict(said)
        negated_here = negations(_words(clause)) % 2
        candidates: list[tuple[tuple[bool, bool, float], Swap]] = []  # one clause is one swap: the best reading of it
        for c in claims:
            if c.idea in found or negated_here != c.negations % 2:
                continue
            heads = {h for h in (c.first, c.after) if h}
            for edits, free in (({"terms", "opposites"}, heads), ({"exchanged"}, set())):
                # each word once, where the claim first says it; the topic's words only where the clause says them,
                # but a term put back is put back whether the title names it or not ("a horizontal shift adds k")
                claim = [w for w in c.surface if w not in topical or w in spoken or w in free]
                if len(claim) < min_precision * len(spoken):
                    continue  # the clause is mostly something else, however the claim is put right
                enough = max(min_said + 1, min_share * len(claim))
                base = _lcs(claim, spoken)
                for right, wrong, fixed, kind in _edits(claim, said, base, terms, opposites, edits & set(kinds),
                                                        c.once):
                    if fixed >= enough and fixed >= min_precision * len(spoken):
                        # best: two terms in the same place of their claims ("In interval notation, a parenthesis"
                        # for "..., a bracket", not for "interval"), then a claim about the word put back ("A
                        # statistic is ..."), then the fullest
                        parallel = {right, wrong} <= firsts if right == c.first else {right, wrong} <= framed
                        swap = Swap(idea=c.idea, right=c.surface[right], wrong=surface[wrong], sentence=clause,
                                    kind=kind)
                        candidates.append(((parallel, right in heads, fixed / len(claim)), swap))
        if candidates:
            swap = max(candidates, key=lambda pair: pair[0])[1]
            found[swap.idea] = swap
    return [found[n] for n in sorted(found)]


# "It's the other way round", "I mixed them up": the student corrects the swap without naming either term.
_OWNED_UP = re.compile(r"\b(?:other way|the reverse|reversed|backwards|the wrong way|swapped|switched|mixed (?:them|those|"
                       r"it|the two)? ?up|mix(?:ed)?-up)\b")


_OPENING = re.compile(r"^\W*(?:(?:yes|yeah|yep|yup|no|nope|nah|oh|oops|ah|hmm+|well|right|okay|ok|sorry)\b\W*)+")


def picks(reply: str, right: str, wrong: str, exchanged: bool = False) -> str | None:
    """Which of the two terms `reply` keeps, to "is that X or Y?" (or, `exchanged`, to "... or is it the other way
    round?", where `right` is the one the key idea says first): the first of them it says that no negation shortly
    before rules out ("not the parameter, the statistic"), its opening "yes" or "no" aside; `right` if it names
    neither but says the swap was one ("the other way round", "I mixed them up"); to the other-way-round question, a
    bare "yes" is `right` and a bare "no" `wrong`; else None."""
    text = reply_text(reply)
    opening = _OPENING.match(text)
    said = text[opening.end():] if opening else text
    targets = {_stem(right.lower()): right, _stem(wrong.lower()): wrong}
    for clause in clauses(said):
        words = _words(clause)
        for n, word in enumerate(words):
            term = targets.get(_stem(word))
            if term is None:
                continue
            before = words[max(0, n - _NEGATED_WITHIN):n]
            if not any(negated(w) for w in before):
                return term
    if _OWNED_UP.search(text):
        return right
    first = _words(opening.group()) if opening and exchanged else []
    yes_or_no = next((w for w in first if w in ("yes", "yeah", "yep", "yup", "no", "nope", "nah")), None)
    return None if yes_or_no is None else right if yes_or_no.startswith("y") else wrong


SWAP_PROBE = "Wait, you said \u201c{sentence}\u201d Is that \u201c{first}\u201d or \u201c{second}\u201d? I mix those two words up."
EXCHANGE_PROBE = ("Wait, you said \u201c{sentence}\u201d Or is it the other way round? I mix up \u201c{first}\u201d and "
                  "\u201c{second}\u201d.")
_QUOTED_CHARS = 200  # of the student's clause quoted back


def swap_probe(swap: Swap) -> str:
    """The beginner's question about a suspected swap: which of the two terms the student meant, or whether the
    two are the other way round. The two come in alphabetical order, so the question does not hint at the answer."""
    sentence = swap.sentence if len(swap.sentence) <= _QUOTED_CHARS else \
        swap.sentence[:_QUOTED_CHARS].rsplit(" ", 1)[0] + " \u2026"
    sentence = sentence if sentence[-1:] in ".?!\u2026" else sentence + "."
    first, second = sorted((swap.right, swap.wrong), key=str.lower)
    probe = EXCHANGE_PROBE if swap.kind == "exchanged" else SWAP_PROBE
    return probe.format(sentence=sentence[:1].upper() + sentence[1:], first=first, second=second)
