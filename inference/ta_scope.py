"""Does the course cover this question? Decided against the course's own scope, not by one cosine cut-off.

Three signals, each from the course itself:
- the best cosine between the question and any of the course's passages, lesson outlines included: far below
  the course's usual range, the question is about something else altogether (off-topic);
- the question's topic words that occur nowhere in the course (after reading misspellings as the course's
  words), or so rarely that the course only mentions them in passing, unless a passage uses them with the question's
  other words: "Taylor" in a derivatives course, "eigenvalues" in College Algebra, but not "Chebyshev" in "whats
  chebyshevs rule" where a hint states Chebyshev's rule. Such a word is what a near-miss question is about when it is
  central to it: with it taken out, the question means something else (its embedding moves by more than
  `CENTRAL_SHIFT`). A word the course lacks but the question does not hinge on
  ("flip the inequality") is not evidence;
- while the embedding model loads (no vectors), the share of the question's topic words the course uses.

A declined question comes with the closest thing the course does cover (the best passage's concept), and the
tutor offers to send it to the teacher. The three thresholds were chosen together on the dev halves of the demo,
College Algebra and Introductory Stats question sets (`benchmarks/ta_eval.py --tune-scope`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from inference.retrieval import SearchIndex, topic_terms

OFF_TOPIC_COSINE = 0.44  # best cosine to any passage below this: not about the course at all
NEAR_COSINE = 0.52  # below this, any topic word the course (nearly) never uses is enough to decline
CENTRAL_SHIFT = 0.26  # 1 - cosine(question, question without its unknown words) above this: they are central
# A word in at most this share of the course's passages counts as unknown: "derivative" in a few of College
# Algebra's 10,000 passages is not a topic the course teaches (in a small course, only absent words count).
RARE_SHARE = 0.002
# A word the course uses rarely is still the course's when a passage that uses it is this close to the question: the
# student is asking about that exercise, in its words ("darts until I hit the centre", "the coach's bench press data").
# A word the course never uses is unknown whatever the cosine.
LOCAL_COSINE = 0.60
# Lexical mode (no embedding model yet): decline below this share of the question's topic terms found in the
# course (chosen on all of benchmarks/data/ta_questions_{demo,oatutor}.json, BM25 only).
LEXICAL_COVERAGE = 0.67
LEXICAL_COVERAGE_WITH_UNKNOWN = 0.85  # with a word the course never or barely uses, most of the rest must be its

_WORDS = re.compile(r"[A-Za-z][A-Za-z'-]*")


@dataclass(frozen=True)
class Signals:
    best: float  # best cosine to any passage, outlines included (lexical: share of topic terms the course uses)
    missing: tuple[str, ...]  # the question's words the course never or barely uses, as the student wrote them
    shift: float  # how far the question's meaning moves without them (0 when none are missing)
    lexical: bool = False
    together: bool = False  # two or more topic words, all the course's, found together in one of its passages


@dataclass(frozen=True)
class ScopeVerdict:
    covered: bool
    reason: str  # for logs and faculty
    missing: tuple[str, ...] = ()
    best: float = 0.0
    nearby: bool = False  # declined, but near the course's topics: a closest lesson is worth naming
    hinges: bool = False  # the question is about its missing words (its meaning moves without them): name them


@dataclass(frozen=True)
class Thresholds:
    off_topic: float = OFF_TOPIC_COSINE
    near: float = NEAR_COSINE
    central: float = CENTRAL_SHIFT


def unknown_words(index: SearchIndex, question: str) -> tuple[str, ...]:
    """The question's words (as written) whose stemmed form occurs in no passage of the course, or in so few that
    the course only mentions it in passing (`RARE_SHARE`)."""
    rare = int(RARE_SHARE * len(index))
    out: list[str] = []
    for word in _WORDS.findall(question):
        if len(word.strip("'-")) < 3:  # a variable ("n", "e"), not a topic
            continue
        terms = topic_terms(word)
        if terms and all(index.term_frequency(t) <= rare for t in terms) and word.lower() not in (
                w.lower() for w in out):
            out.append(word)
    return tuple(out)


def signals(index: SearchIndex, question: str, query_vector: np.ndarray | None, *,
            local: float = LOCAL_COSINE) -> Signals:
    """`question`: as searched (`SearchIndex.prepare_query`). Without `query_vector`, the lexical signals."""
    missing = unknown_words(index, question)
    if missing:
        asked = list(dict.fromkeys(topic_terms(question)))
        rare = {t for w in missing for t in topic_terms(w)}
        missing = tuple(w for w in missing if not _in_company(index, w, asked, rare))
    if query_vector is None:
        return Signals(index.term_coverage(question), missing, 0.0, lexical=True)
    missing = tuple(w for w in missing if not _local(index, w, query_vector, local))
    best = index.best_similarity(query_vector)
    terms = set(topic_terms(question))
    together = not missing and len(terms) >= 2 and index.passages_with_all(terms) > 0
    return Signals(best, missing, _shift(index, question, query_vector, missing) if missing else 0.0,
                   together=together)


def decide(found: Signals, thresholds: Thresholds = Thresholds()) -> ScopeVerdict:
    missing, best = found.missing, found.best
    words = ", ".join(missing)
    if found.lexical:  # no shift without the model: the missing words are taken for the topic
        cut = LEXICAL_COVERAGE_WITH_UNKNOWN if missing else LEXICAL_COVERAGE
        covered = best >= cut
        return ScopeVerdict(covered, f"share of its terms in the course {best:.2f} {'>=' if covered else '<'} {cut}"
                            + (f" (words it never or barely uses: {words})" if missing else ""), missing, best,
                            nearby=bool(missing), hinges=bool(missing))
    # "Who won the World Cup?" lacks only "won" in a statistics course: declined, but not as a course without "won"
    hinges = bool(missing) and found.shift > thresholds.central
    if best < thresholds.off_topic and not found.together:
        return ScopeVerdict(False, f"best cosine to any course passage {best:.2f} < {thresholds.off_topic}", missing,
                            best, hinges=hinges)
    if not missing:
        return ScopeVerdict(True, f"every topic word is the course's; best cosine {best:.2f}"
                            + (" (its words together in a passage)" if found.together else ""), missing, best)
    if best < thresholds.near:
        return ScopeVerdict(False, f"words the course never uses ({words}) and best cosine {best:.2f} "
                            f"< {thresholds.near}", missing, best, nearby=True, hinges=hinges)
    if hinges:
        return ScopeVerdict(False, f"the question hinges on words the course never uses ({words}): without them it "
                            f"means something else (shift {found.shift:.2f})", missing, best, nearby=True,
                            hinges=True)
    return ScopeVerdict(True, f"words the course never uses ({words}) are incidental (shift {found.shift:.2f}); "
                        f"best cosine {best:.2f}", missing, best)


def judge(index: SearchIndex, question: str, query_vector: np.ndarray | None) -> ScopeVerdict:
    """Does the course cover `question` (as searched)? Without `query_vector`, the lexical rule."""
    return decide(signals(index, question, query_vector))


def _local(index: SearchIndex, word: str, query_vector: np.ndarray, local: float) -> bool:
    """Whether every term of `word` is used by a passage at least `local` close to the question (see LOCAL_COSINE)."""
    terms = topic_terms(word)
    return bool(terms) and all(index.term_best_similarity(t, query_vector) >= local for t in terms)


def _in_company(index: SearchIndex, word: str, terms: list[str], rare: set[str]) -> bool:
    """Whether a word the course barely uses (never: it has no passage) is used by one of its passages together with
    the question's other topic words (`terms`, the question's, stemmed; those of its other `rare` words only when it
    has no others): all of them, or all but one of three or more. "whats chebyshevs rule" where a hint states
    Chebyshev's rule; "a paired t test instead of treating it as two separate groups" where a hint says so. A word the course mentions in passing keeps other company ("derivative" in College
    Algebra, not with "find" and "x^3")."""
    own = set(topic_terms(word))
    others = [t for t in terms if t not in rare] or [t for t in terms if t not in own]
    if not own or not others:
        return False
    return index.most_shared(own, others) >= (len(others) if len(others) <= 2 else len(others) - 1)


def _shift(index: SearchIndex, question: str, query_vector: np.ndarray, missing: tuple[str, ...]) -> float:
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in missing) + r")\b", re.IGNORECASE)
    rest = re.sub(r"\s+", " ", pattern.sub(" ", question)).strip()
    if not topic_terms(rest):
        return 1.0
    return 1.0 - float(index.embedder.encode([rest])[0] @ query_vector)
