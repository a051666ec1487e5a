"""Scoring a student's explanation of a concept against the concept's key ideas ("teach-back").

Boundaries: this module knows nothing of Django, students or storage. It takes the explanation as text and the
concept's key ideas, misconceptions and source texts as plain strings, and returns plain dataclasses. The tutor's
services store the verdict and turn it into learner-model evidence.

    scorer = ExplanationScorer()                      # the embedding model loads on first use (seconds)
    verdict = scorer.assess(text, ConceptKey(topic="The power rule", key_ideas=(...,), sources=(lesson,)))
    verdict.redo        # None, or why the text cannot be scored ("empty", "copied", "off_topic", ...)
    verdict.score       # 0-5 overall, and each key idea covered / missing / contradicted

How it scores. The explanation is cut into sentences (long ones into pieces), at most `max_tokens` word pieces of
it, and embedded in one batched pass of an int8 copy of all-MiniLM-L6-v2 (the TA-bot's model, which the scorer
quantises for itself and runs with ONNX Runtime, inference/int8_encoder.py: faster on one core). The key ideas, topic
and misconceptions of a concept are course texts: they are embedded once, together, and kept. Each key idea is then
- *covered* to the degree its content words find close contextual token embeddings in the explanation (a soft
  word alignment, BERTScore-style recall) and its sentence embedding finds a close explanation sentence; words of
  the topic itself are left out of the alignment, since naming the topic is not explaining it (Mohler et al.'s
  "question demoting");
- *contradicted* when the explanation seems to say one of the concept's authored misconceptions (measured as a key
  idea is) more fully than the key idea it opposes (the one the author names, "... => 2", else the nearest in
  meaning), and its sentence closest to the misconception does not negate it or call it a mistake. This is a
  suspicion, not a finding: on a check set it accused a third of right explanations (benchmarks/RESULTS.md), so
  the tutor asserts a misconception only when a language model confirms it (`confirmed`) or the student says yes
  to it when the beginner asks, and otherwise lets it steer the beginner's next question.
  A negation alone is no sign of contradiction of a key idea: "a linked list is not fixed in size" says "it can
  grow" (a check for it marked only correct answers on the Mohler dev questions).
The token vectors of both sides first go through a learned low-rank map of MiniLM's token space
(inference/teachback_projection.py), fitted so that the alignment tells graded answers apart. The overall score is a
linear model over the FEATURES that cross-validation by question chose: the alignment recall of all key ideas' content
words, its square (the grade saturates: once most of the ideas' words are said, more of them add less) and a little
alignment precision. The recipe (map, features, penalties) was chosen on some graded short-answer questions and
measured on others it never saw; the map and the weights that ship are that recipe fitted on all 50 of them
(benchmarks/teachback_eval.py --all; figures in benchmarks/RESULTS.md).

Before scoring, `screen` turns away what is not an explanation at all, with a friendly reason: empty, too short,
too long, only symbols, another language, copied from the lesson or a TA-bot reply; `assess` adds off-topic (no
key idea anywhere near), which needs the embeddings.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from inference.int8_encoder import Int8Encoder
from inference.retrieval import Embedder, default_embedder
from inference.teachback_projection import DEFAULT_PATH as DEFAULT_PROJECTION
from inference.teachback_projection import Projection, alignment, projection_load
from inference.teachback_swaps import Swap, term_swaps
from inference.teachback_words import negations, prose, reply_text
from inference.teachback_words import words as _words

STATUSES = ("covered", "missing", "contradicted")
REDO_REASONS = ("empty", "too_short", "too_long", "only_maths", "other_language", "copied", "off_topic")

# The most frequent English function words: an English explanation is a third or more of them, another language
# almost none. MiniLM was trained on English, so an explanation in another language cannot be scored fairly.
_ENGLISH = frozenset("the a an is are was were be of to in on and or that this it its for with as by at from "
                     "you your we they he she i if then so but when what which how why because each".split())
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")


@dataclass(frozen=True)
class ScorerConfig:
    # Screening (no model needed).
    min_words: int = 6  # fewer words than this: "too short", whatever they say
    max_chars: int = 6000  # longer than this: "too long"; a beginner's explanation is a few paragraphs
    min_letter_share: float = 0.5  # under this share of non-space characters being letters: "only maths/symbols"
    min_english_share: float = 0.12  # under this share of English function words among words: "another language"
    shingle_words: int = 6  # copied text is found by shared runs of this many words
    max_copied_share: float = 0.5  # at or over this share of the explanation's runs found in a source: "copied"
    # Off-topic: no key idea sentence-similar at this level and no content word aligned at `covered`.
    min_topic_similarity: float = 0.25
    # Per idea: coverage is `similarity_weight` x the idea's best sentence similarity + the rest x its word-alignment
    # recall, leaving out the words the concept's other key ideas share (`demote_shared_idea_words`). Coverage at or
    # over this: "covered". The rule and the threshold were chosen by balanced accuracy on the 32 concepts of the
    # per-idea check set's dev, test, test2 and test3 splits (teachback_ideas.py; pooled 0.827 against 0.809 for the
    # rule before, 0.5 / all words / 0.58: an unstated idea called clear 12 % instead of 15 %), then run on test4.
    covered: float = 0.54
    # Off topic: no key idea sentence-similar (min_topic_similarity) and none covered at this level, measured over
    # the whole text as the misconception check does (IdeaScore.whole_text), whatever the per-idea rule.
    min_topic_coverage: float = 0.48
    # A misconception is heard at this coverage (and the margin over its idea's, below); chosen with the whole-text
    # coverage on the misconception check set (teachback_misconceptions.py).
    misconception_covered: float = 0.48
    similarity_weight: float = 0.3  # coverage = this x sentence similarity + the rest x word-alignment recall
    idea_scope_sentences: int = 0  # >0: an idea's recall counts only this many of the explanation's closest sentences
    demote_shared_idea_words: bool = True  # an idea's recall leaves out the words other key ideas share
    # A misconception must be said more fully than the key idea it opposes by this much: a right explanation shares
    # most of its words with the wrong one, and coverage moves by a few hundredths with the model's precision.
    contradiction_margin: float = 0.05
    # ... and the explanation's sentence closest to the misconception must not reject it (_rejects). On the check
    # set, right explanations accused 5/24 -> 3/24 on the dev concepts but 8/21 -> 7/21 on the test ones: what the
    # scorer hears stays a suspicion (see `confirmed`).
    contradiction_polarity: bool = True
    contradiction_penalty: float = 2.5  # points off the overall score if every idea is contradicted, pro rata
    # Which key idea a misconception opposes: the one closest to it by "sentence" vector, by "alignment" of their
    # content word pieces (the harmonic mean of the two directions' alignment), or by the mean of the two ("both").
    opposed_by: str = "sentence"
    # Two of the concept's terms swapped ("a parameter is a number calculated from a sample"): a clause that, with
    # one term put back (or two words exchanged), says `swap_min_share` of a key idea's claim in order, more than
    # `swap_min_said` words of it, and is at least `swap_min_precision` that claim (inference/teachback_swaps.py;
    # chosen on two dev sets, benchmarks/teachback_swaps.py). Without it, such a clause covers the idea it garbles.
    hear_swaps: bool = True
    swap_min_share: float = 0.75
    swap_min_said: int = 3
    swap_kinds: tuple[str, ...] = ("terms", "opposites", "exchanged")  # see term_swaps
    swap_min_precision: float = 0.5
    # Cost. The forward pass is linear in the word pieces embedded, so the explanation is capped: past this many
    # pieces (about 400 words) its sentences are not read. A beginner's explanation is a few paragraphs.
    max_tokens: int = 512
    max_piece_words: int = 40  # a sentence longer than this is cut into pieces of this many words (run-on text)
    quantized: bool = True  # score with an int8 copy of the model run by ONNX Runtime (int8_encoder); False: float
    # The learned low-rank map applied to every token vector before the alignment (inference/teachback_projection.py),
    # fitted on the graded answers of all 50 questions for the int8 model; None: MiniLM's own token space.
    projection: Path | None = DEFAULT_PROJECTION
    # The overall 0-5 score: bias + weights . features (FEATURES order), clipped to [0, 5]. Features chosen by
    # cross-validation by question on the dev questions; a feature the choice left out has weight 0. With the
    # projection, the features are those it was fitted with (--train-projection). Fitted by ridge regression on the
    # graded answers of all 50 questions (benchmarks/teachback_eval.py --fit --all prints them).
    weights: tuple[float, ...] = (0.0, 8.3966, -5.3193, 0.4124, 0.0, 0.0)
    bias: float = 1.3971


# The features of the overall score, in the order of ScorerConfig.weights:
# - idea_similarity: mean over key ideas of the cosine to the explanation's closest sentence;
# - alignment_recall: mean over all key ideas' content word pieces of the cosine to the closest content piece of the
#   explanation (contextual token embeddings), and alignment_recall_sq its square;
# - alignment_precision: the same from the explanation's content pieces to the key ideas' (penalises what the key
#   ideas do not say);
# - log_words: log(1 + words), and log_length_ratio: that minus log(1 + the key ideas' words).
FEATURES = ("idea_similarity", "alignment_recall", "alignment_recall_sq", "alignment_precision", "log_words",
            "log_length_ratio")


@dataclass(frozen=True)
class ConceptKey:
    """What a good explanation of one concept contains, as the course states it."""

    topic: str  # the concept's title (or the question): its words are demoted in the alignment
    key_ideas: tuple[str, ...]
    misconceptions: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # texts the explanation must not be copied from: the lesson, TA-bot replies
    # (misconception, the key idea it opposes) where the author said which; the others are guessed (opposed_idea)
    opposes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class IdeaScore:
    idea: str
    status: str  # one of STATUSES
    coverage: float  # 0-1: how much of the idea the explanation says (ScorerConfig.covered decides)
    evidence: str = ""  # the explanation's sentence closest to the idea ("" when nothing is close)
    # (sentence similarity + recall of all its words over the whole text) / 2: what the off-topic screen reads
    whole_text: float = 0.0


@dataclass(frozen=True)
class MisconceptionSignal:
    """What decides whether an explanation says one of the concept's misconceptions (ExplanationScorer.heard)."""

    misconception: str
    idea: int  # the key idea it opposes (ExplanationScorer.opposed_idea)
    coverage: float  # how fully the explanation says the misconception, measured as a key idea's coverage
    idea_coverage: float  # the same for the key idea it opposes
    rejected: bool  # the explanation's sentence closest to it negates it or calls it a mistake (_rejects)


@dataclass(frozen=True)
class ExplanationScore:
    score: float  # 0-5, like the graders of the evaluation data
    ideas: tuple[IdeaScore, ...]
    misconceptions_heard: tuple[str, ...] = ()  # suspected by the scorer; see `ExplanationScorer.confirmed`
    features: tuple[float, ...] = ()  # FEATURES, for the benchmark and for debugging a surprising score
    signals: tuple[MisconceptionSignal, ...] = ()  # per misconception, what `heard` decided on
    swaps: tuple[Swap, ...] = ()  # key ideas said of the wrong term, suspected (see `ExplanationScorer.confirmed`)

    def with_status(self, status: str) -> list[str]:
        return [i.idea for i in self.ideas if i.status == status]

    @property
    def share_covered(self) -> float:
        return sum(i.status == "covered" for i in self.ideas) / len(self.ideas) if self.ideas else 0.0


@dataclass(frozen=True)
class Assessment:
    redo: str | None  # None when scored; otherwise one of REDO_REASONS
    message: str = ""  # what the student is told when asked to redo
    score: ExplanationScore | None = None


REDO_MESSAGES = {
    "empty": "There is nothing to read yet. Explain the idea in a few sentences, as you would to a friend.",
    "too_short": "That is a bit short for a beginner to follow. Try a few sentences: what it is, and why it works.",
    "too_long": "That is longer than a beginner can take in. Pick the main points and explain them in a few "
                "short paragraphs.",
    "only_maths": "A beginner needs words, not only symbols. Say in plain sentences what the formula means "
                  "and why it holds; a formula can help, but it cannot be the whole explanation.",
    "other_language": "This tutor can only understand explanations in English for now. Could you explain it in "
                      "English?",
    "copied": "That looks copied from the lesson or an earlier answer. Close it and explain the idea in your own "
              "words: that is where the learning happens.",
    "off_topic": "That does not seem to be about this concept yet. Explain the idea the lesson is about, in "
                 "your own words.",
}


def _shingles(words: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def sentences(text: str) -> list[str]:
    """The text cut at sentence ends and line breaks; empty pieces dropped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


class ExplanationScorer:
    """Screens and scores explanations. Thread-safe: the model forward pass holds a lock, nothing else is shared
    but a bounded cache of course texts' embeddings keyed by the text itself (a changed key idea is a new key)."""

    _MAX_BATCH = 32  # texts per forward pass
    _PADDING = 1.5  # a text more than this many times the batch's shortest (+ 8 pieces) starts a new batch
    _CACHE_SIZE = 512  # texts whose embeddings are kept: a course's key ideas, topics and misconceptions

    def __init__(self, config: ScorerConfig | None = None, embedder: Embedder | None = None,
                 cache_dir: Path | None = None) -> None:
        self.config = config or ScorerConfig()
        self._embedder = embedder
        self._cache_dir = cache_dir  # where the int8 graph is kept between processes (int8_encoder); None: not kept
        self._lock = threading.Lock()  # one forward pass at a time: the model runs on one thread per process here
        self._model_lock = threading.Lock()  # held for the whole load (seconds; a build is longer on a busy machine)
        self._scoring_model: Any = None
        self._loader: threading.Thread | None = None
        self._loader_lock = threading.Lock()  # guards `_loader` only: never held while the model loads
        self._projection: Projection | None = None
        self._cache_lock = threading.Lock()
        self._cache: dict[str, tuple[np.ndarray, np.ndarray, list[str]]] = {}

    # --- screening --------------------------------------------------------------------------------------

    def screen(self, text: str, key: ConceptKey) -> str | None:
        """Why `text` cannot be scored as an explanation (one of REDO_REASONS, off-topic aside), or None."""
        c = self.config
        stripped = text.strip()
        if not stripped:
            return "empty"
        if len(stripped) > c.max_chars:
            return "too_long"
        non_space = re.sub(r"\s", "", stripped)
        letters = sum(ch.isalpha() for ch in non_space)
        words = _words(stripped)
        if letters / len(non_space) < c.min_letter_share or len([w for w in words if len(w) > 1]) < 3:
            return "only_maths"
        if len(words) < c.min_words:
            return "too_short"
        if sum(w in _ENGLISH for w in words) / len(words) < c.min_english_share:
            return "other_language"
        runs = _shingles(words, c.shingle_words)
        if runs and key.sources:
            copied = set().union(*(_shingles(_words(s), c.shingle_words) for s in key.sources))
            if len(runs & copied) / len(runs) >= c.max_copied_share:
                return "copied"
        return None

    # --- scoring ----------------------------------------------------------------------------------------

    def assess(self, text: str, key: ConceptKey) -> Assessment:
        """Screen, then score; an explanation near none of the key ideas is off-topic and gets no score."""
        reason = self.screen(text, key)
        if reason is None:
            result = self.score(text, key)
            near = max((i.whole_text for i in result.ideas), default=0.0)
            similar = result.features[0] if result.features else 0.0
            if similar < self.config.min_topic_similarity and near < self.config.min_topic_coverage:
                reason = "off_topic"
            else:
                return Assessment(redo=None, score=result)
        return Assessment(redo=reason, message=REDO_MESSAGES[reason])

    def score(self, text: str, key: ConceptKey) -> ExplanationScore:
        """Score an explanation (already screened) against the key ideas. At least one key idea is required."""
        if not key.key_ideas:
            raise ValueError("a concept needs at least one key idea to score an explanation against")
        c = self.config
        self.prepare(key)
        parts, part_vecs, part_tokens, part_words, part_of = self._encode_explanation(text)  # (S, 384), (T, 384), T
        demoted = set(self._encoded(key.topic)[2]) if key.topic else set()
        rows = self._content_rows(part_words, demoted)
        answer_tokens, answer_parts = part_tokens[rows], part_of[rows]  # (T', 384), (T',)

        ideas: list[IdeaScore] = []
        sims, idea_token_sets, plain = [], [], []
        for idea in key.key_ideas:
            similarity, recall, best, idea_tokens = self._match(idea, part_vecs, answer_tokens, demoted)
            sims.append(similarity)
            idea_token_sets.append(idea_tokens)
            plain.append((max(similarity, 0.0) + max(recall, 0.0)) / 2)
            coverage = self._idea_coverage(idea, key, part_vecs, answer_tokens, answer_parts, demoted, similarity,
                                           recall)
            ideas.append(IdeaScore(idea=idea, status="", coverage=round(coverage, 3),
                                   evidence=parts[best] if similarity >= c.min_topic_similarity else "",
                                   whole_text=round(plain[-1], 3)))

        signals = tuple(self._misconception_signals(parts, part_vecs, answer_tokens, demoted, key, plain))
        # every key idea's content pieces (t, 384) against the explanation's
        recall, precision = alignment(answer_tokens, np.concatenate(idea_token_sets))
        n_words = len(_words(text))
        idea_words = sum(len(_words(i)) for i in key.key_ideas)
        features = (float(np.mean(sims)), recall, recall * recall, precision, float(np.log1p(n_words)),
                    float(np.log1p(n_words) - np.log1p(idea_words)))
        swaps = tuple(term_swaps(text, key.key_ideas, _SWAP_STOP, c.swap_min_share, c.swap_min_said, c.swap_kinds,
                                 key.topic, c.swap_min_precision)) if c.hear_swaps else ()
        return self._verdict(ideas, signals, features, [s.misconception for s in signals if self.heard(s)],
                             swaps=swaps)

    def confirmed(self, result: ExplanationScore, misconceptions: Collection[str],
                  judged: Mapping[str, bool] | None = None, affirmed: Collection[str] = (),
                  swapped: Collection[str] = ()) -> ExplanationScore:
        """`result` with only those of its heard misconceptions that are in `misconceptions` (e.g. the ones a
        language model confirmed): the ideas the others oppose go back to covered or missing, and the score with
        them. `judged`: key ideas a language model says the explanation states (True) or does not (False), or that
        the student was not sure of when asked (False); its word replaces the coverage threshold for those ideas.
        `affirmed`: misconceptions the student said "yes" to when the beginner asked about them (`affirms`), held
        whether the scorer heard them or not. `swapped`: key ideas whose swapped terms the student kept when the
        beginner asked which one was meant (`teachback_swaps.picks`): contradicted."""
        heard = [m for m in result.misconceptions_heard if m in misconceptions]
        heard += [s.misconception for s in result.signals if s.misconception in affirmed and s.misconception not in heard]
        return self._verdict(list(result.ideas), result.signals, result.features, heard, judged or {},
                             result.swaps, swapped)

    def suspected_mixups(self, result: ExplanationScore) -> dict[str, str]:
        """Key idea -> the misconception the scorer heard against it (a suspicion: see `heard`)."""
        return {result.ideas[s.idea].idea: s.misconception for s in result.signals
                if s.misconception in result.misconceptions_heard}

    def _verdict(self, ideas: list[IdeaScore], signals: tuple[MisconceptionSignal, ...],
                 features: tuple[float, ...], heard: list[str],
                 judged: Mapping[str, bool] | None = None, swaps: tuple[Swap, ...] = (),
                 swapped: Collection[str] = ()) -> ExplanationScore:
        """Each idea covered or missing by its coverage (or by `judged`, where it has the idea), contradicted where a
        heard misconception opposes it or the student kept a swapped term (`swapped`); the overall score from the
        features, less a penalty per contradicted idea."""
        c = self.config
        judged = judged or {}
        ideas = [replace(i, status="covered" if judged.get(i.idea, i.coverage >= c.covered) else "missing")
                 for i in ideas]
        for signal in signals:
            if signal.misconception in heard:
                ideas[signal.idea] = replace(ideas[signal.idea], status="contradicted")
        ideas = [replace(i, status="contradicted") if i.idea in swapped else i for i in ideas]
        overall = c.bias + float(np.dot(c.weights, features))
        # Holding a misconception is worse than leaving an idea out, which the linear model (fitted on answers
        # without authored misconceptions) cannot see.
        overall -= c.contradiction_penalty * sum(i.status == "contradicted" for i in ideas) / len(ideas)
        return ExplanationScore(score=round(float(np.clip(overall, 0, 5)), 2), ideas=tuple(ideas),
                                misconceptions_heard=tuple(heard), features=features, signals=signals, swaps=swaps)

    def alignment_tokens(self, text: str, key: ConceptKey) -> tuple[np.ndarray, np.ndarray]:
        """The explanation's content token vectors (T, 384) and all key ideas' (t, 384), as the overall score's
        alignment sees them: what the projection is fitted on (with `projection=None`)."""
        self.prepare(key)
        _, _, part_tokens, part_words, _ = self._encode_explanation(text)
        demoted = set(self._encoded(key.topic)[2]) if key.topic else set()
        ideas = [self._content(*self._encoded(idea)[1:], demoted) for idea in key.key_ideas]
        return self._content(part_tokens, part_words, demoted), np.concatenate(ideas)

    def prepare(self, key: ConceptKey) -> None:
        """Embed the concept's texts (topic, key ideas, misconceptions) not yet kept, in one pass: they do not change
        between students, so only a concept's first explanation in a process pays for them."""
        texts = [t for t in dict.fromkeys((key.topic, *key.key_ideas, *key.misconceptions)) if t]
        missing = [t for t in texts if t not in self._cache]
        if missing:
            self._keep(missing, self._forward(missing))

    def _match(self, statement: str, part_vecs: np.ndarray, answer_tokens: np.ndarray,
               demoted: set[str]) -> tuple[float, float, int, np.ndarray]:
        """How closely the explanation says `statement`: the best sentence similarity, the statement's word-
        alignment recall, the index of that best sentence, and the statement's content token vectors."""
        vec, tokens, words = self._encoded(statement)
        statement_tokens = self._content(tokens, words, demoted)  # (t, 384)
        sentence_sims = part_vecs @ vec  # (S,)
        best = int(np.argmax(sentence_sims))
        recall = float((statement_tokens @ answer_tokens.T).max(axis=1).mean()) if len(statement_tokens) and len(
            answer_tokens) else 0.0
        return float(sentence_sims[best]), recall, best, statement_tokens

    def _idea_coverage(self, idea: str, key: ConceptKey, part_vecs: np.ndarray, answer_tokens: np.ndarray,
                       answer_parts: np.ndarray, demoted: set[str], similarity: float, recall: float) -> float:
        """How fully the explanation states `idea`, 0-1: its best sentence similarity and its word-alignment recall,
        weighted by `similarity_weight`. With `idea_scope_sentences` k, the recall counts only the explanation's k
        sentences closest to the idea (an idea is said in a place, not by its words scattered over the text); with
        `demote_shared_idea_words`, not the idea's words that other key ideas of the concept share."""
        c = self.config
        if c.idea_scope_sentences or c.demote_shared_idea_words:
            own = set(demoted)
            if c.demote_shared_idea_words:
                own |= {w for other in key.key_ideas if other != idea for w in self._encoded(other)[2]}
            vec, tokens, words = self._encoded(idea)
            idea_tokens = self._content(tokens, words, own)
            if not len(idea_tokens):  # every word shared: the idea's own words are all it has
                idea_tokens = self._content(tokens, words, demoted)
            scope = answer_tokens
            if c.idea_scope_sentences:
                closest = np.argsort(-(part_vecs @ vec))[:c.idea_scope_sentences]
                scope = answer_tokens[np.isin(answer_parts, closest)]
            recall = float((idea_tokens @ scope.T).max(axis=1).mean()) if len(idea_tokens) and len(scope) else 0.0
        w = c.similarity_weight
        return w * max(similarity, 0.0) + (1 - w) * max(recall, 0.0)

    def heard(self, signal: MisconceptionSignal) -> bool:
        """Whether the explanation says the misconception: it covers it as a key idea would be covered, more fully
        than the idea it opposes, and its sentence closest to the misconception does not reject it. A right
        explanation shares most of its words with the wrong one, and one that warns against the mix-up says it
        almost word for word ("a constant factor does not disappear"); a model of entailment would tell them apart,
        MiniLM's vectors hardly do (benchmarks/teachback_misconceptions.py: the figures, and how often this is
        still wrong)."""
        c = self.config
        return (signal.coverage >= c.misconception_covered
                and signal.coverage > signal.idea_coverage + c.contradiction_margin
                and not (c.contradiction_polarity and signal.rejected))

    def _misconception_signals(self, parts: list[str], part_vecs: np.ndarray, answer_tokens: np.ndarray,
                               demoted: set[str], key: ConceptKey, idea_coverage: list[float]
                               ) -> list[MisconceptionSignal]:
        """Per misconception, how fully the explanation says it against the key idea it opposes, both measured alike
        (best sentence similarity and recall over the whole text, halved)."""
        if not key.misconceptions:
            return []
        signals = []
        for misconception in key.misconceptions:
            similarity, recall, best, _ = self._match(misconception, part_vecs, answer_tokens, demoted)
            opposed = self.opposed_idea(misconception, key)
            signals.append(MisconceptionSignal(
                misconception=misconception, idea=opposed, coverage=(max(similarity, 0.0) + max(recall, 0.0)) / 2,
                idea_coverage=idea_coverage[opposed], rejected=_rejects(parts[best], misconception)))
        return signals

    def opposed_idea(self, misconception: str, key: ConceptKey) -> int:
        """The index of the key idea `misconception` opposes: the one the author named (`ConceptKey.opposes`), else
        the nearest (`nearest_idea`), which is not the one it opposes for about one in three
        (benchmarks/teachback_mixup_ideas.py)."""
        named = dict(key.opposes).get(misconception)
        return key.key_ideas.index(named) if named in key.key_ideas else self.nearest_idea(misconception, key)

    def nearest_idea(self, misconception: str, key: ConceptKey) -> int:
        """The index of the key idea closest to `misconception` (`ScorerConfig.opposed_by`): the guess at the one it
        opposes where the author named none."""
        by = self.config.opposed_by
        if by not in ("sentence", "alignment", "both"):
            raise ValueError(f"unknown ScorerConfig.opposed_by {by!r}: sentence, alignment or both")
        vec, tokens, words = self._encoded(misconception)
        closeness = np.zeros(len(key.key_ideas))
        if by in ("sentence", "both"):
            closeness += np.stack([self._encoded(i)[0] for i in key.key_ideas]) @ vec
        if by in ("alignment", "both"):
            demoted = set(self._encoded(key.topic)[2]) if key.topic else set()
            own = self._content(tokens, words, demoted)
            for n, idea in enumerate(key.key_ideas):
                theirs = self._content(*self._encoded(idea)[1:], demoted)
                if len(own) and len(theirs):
                    sims = own @ theirs.T
                    recall, precision = float(sims.max(axis=1).mean()), float(sims.max(axis=0).mean())
                    closeness[n] += 2 * recall * precision / max(recall + precision, 1e-9)
        return int(np.argmax(closeness))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit sentence vectors (n, 384) of `texts` by the scorer's model, e.g. to group students' questions."""
        return (self._embedder or default_embedder()).encode(list(texts))

    def closest(self, query: str, candidates: Sequence[str]) -> int:
        """The index of the candidate closest in meaning to `query` (e.g. the authored probe that best asks about a
        missing key idea). Candidates are cached like key ideas: they are course texts."""
        if not candidates:
            raise ValueError("no candidates to choose from")
        vectors = np.stack([self._encoded(c)[0] for c in candidates])  # (n, 384)
        return int(np.argmax(vectors @ self._encoded(query)[0]))

    # --- embeddings -------------------------------------------------------------------------------------

    @staticmethod
    def _content(tokens: np.ndarray, words: list[str], demoted: set[str]) -> np.ndarray:
        """Rows of `tokens` (T, 384) that are content word pieces (`_content_rows`)."""
        keep = ExplanationScorer._content_rows(words, demoted)
        return tokens[keep] if keep else np.zeros((0, tokens.shape[1]), dtype=np.float32)

    @staticmethod
    def _content_rows(words: list[str], demoted: set[str]) -> list[int]:
        """Indices of the content word pieces: no special tokens, punctuation, stop words or demoted (topic) words.
        Sub-word pieces ("##s") count with their word."""
        return [i for i, w in enumerate(words) if w and w not in demoted and w not in _STOP_PIECES and w[0].isalnum()]

    def _encoded(self, text: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """A course text's (sentence vector, token vectors, word pieces), cached by the text itself."""
        hit = self._cache.get(text)
        if hit is None:
            self._keep([text], self._forward([text]))
            hit = self._cache[text]
        return hit

    def _keep(self, texts: list[str], encoded: tuple[np.ndarray, list[np.ndarray], list[list[str]]]) -> None:
        vecs, tokens, words = encoded
        with self._cache_lock:
            for i, text in enumerate(texts):
                if len(self._cache) >= self._CACHE_SIZE:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[text] = (vecs[i], tokens[i], words[i])

    def _encode_explanation(self, text: str) -> tuple[list[str], np.ndarray, np.ndarray, list[str], np.ndarray]:
        """The explanation's pieces (sentences; a run-on one cut every `max_piece_words` words) up to `max_tokens`
        word pieces in all, and their sentence vectors (S, 384), token vectors (T, 384), word pieces (T) and the
        piece each token is from (T,)."""
        c = self.config
        parts = []
        for sentence in sentences(text) or [text.strip()]:
            words = sentence.split()
            parts += [" ".join(words[i:i + c.max_piece_words]) for i in range(0, len(words), c.max_piece_words)]
        encoded = self._tokenized(parts)
        budget, kept = c.max_tokens, 0
        while kept < len(parts) and (kept == 0 or budget >= len(encoded["input_ids"][kept]) - 2):  # less [CLS] [SEP]
            budget -= len(encoded["input_ids"][kept]) - 2
            kept += 1
        vecs, tokens, words_ = self._forward(parts[:kept], {k: v[:kept] for k, v in encoded.items()})
        part_of = np.concatenate([np.full(len(t), i) for i, t in enumerate(tokens)])
        return parts[:kept], vecs, np.concatenate(tokens), [w for ws in words_ for w in ws], part_of

    def _tokenized(self, texts: list[str]) -> dict[str, list[list[int]]]:
        model = self._model()
        return dict(model.tokenizer(texts, truncation=True, max_length=model.max_seq_length))

    def _forward(self, texts: list[str], encoded: dict[str, list[list[int]]] | None = None
                 ) -> tuple[np.ndarray, list[np.ndarray], list[list[str]]]:
        """Batched passes of the scoring model: unit sentence vectors (n, 384) and, per text, unit contextual token
        vectors (T_i, 384) with their word pieces (lower case; "" for the special tokens). `encoded`: the texts
        already tokenised (`_tokenized`), as the explanation's are to count them against the budget."""
        model = self._model()
        tokenizer = model.tokenizer
        special = set(tokenizer.all_special_ids)
        encoded = encoded if encoded is not None else self._tokenized(texts)
        ids = encoded["input_ids"]
        sentence = np.zeros((len(texts), 384), dtype=np.float32)
        tokens: list[np.ndarray] = [np.zeros((0, 384), dtype=np.float32)] * len(texts)
        words: list[list[str]] = [[] for _ in texts]
        # Texts of similar length go through together: a batch is padded to its longest text, and padding is
        # most of the work when one long sentence sits among short ones.
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        batches: list[list[int]] = []
        for i in order:
            if batches and len(batches[-1]) < self._MAX_BATCH and \
                    len(ids[i]) <= self._PADDING * len(ids[batches[-1][0]]) + 8:
                batches[-1].append(i)
            else:
                batches.append([i])
        for batch in batches:
            features = tokenizer.pad({k: [encoded[k][i] for i in batch] for k in encoded.keys()},
                                     return_tensors="np")
            with self._lock:
                token_all, vecs = self._embed(model, features)
            vecs = vecs / np.linalg.norm(vecs, axis=-1, keepdims=True)
            token_all = token_all / np.maximum(np.linalg.norm(token_all, axis=-1, keepdims=True), 1e-12)
            for row, i in enumerate(batch):
                n = len(ids[i])  # padding goes at the end
                sentence[i] = vecs[row]
                tokens[i] = token_all[row, :n]
                if self._projection is not None:  # float32 in, float32 out
                    tokens[i] = self._projection.apply(tokens[i])
                pieces = tokenizer.convert_ids_to_tokens(ids[i])
                words[i] = ["" if t in special else p.removeprefix("##") for t, p in zip(ids[i], pieces, strict=True)]
        return sentence, tokens, words

    @staticmethod
    def _embed(model: Any, features: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """One padded batch through the model: token vectors (B, L, 384) and mean-pooled sentence vectors (B, 384),
        float32, not yet unit length."""
        if isinstance(model, Int8Encoder):
            token_all = model.token_embeddings(features)
            return token_all, model.mean_pooled(token_all, features["attention_mask"])
        import torch

        with torch.inference_mode():
            out = model({k: torch.from_numpy(v) for k, v in features.items()})
        return out["token_embeddings"].numpy(), out["sentence_embedding"].numpy()

    @property
    def loaded(self) -> bool:
        """Whether scoring can start without loading the model first."""
        return self._scoring_model is not None

    def load(self) -> None:
        """Load the scoring model now (seconds: its int8 graph is built from MiniLM's weights by a child process,
        unless the cache folder has it); otherwise the first explanation scored in the process waits for it."""
        self._model()

    def load_in_background(self) -> None:
        """Start `load` in a daemon thread, once, unless the model is loaded: e.g. when a student starts writing, so
        that their explanation does not wait for it. A load that fails there is tried again by the first score.
        Returns at once, also while a load runs: it took the model's lock, and every student who started a teach-back
        during a load waited for all of it in the server (past 30 s on a busy machine: chaos model-kill, CI 46, 49)."""
        with self._loader_lock:
            if self._scoring_model is None and self._loader is None:
                self._loader = threading.Thread(target=self.load, name="teachback-scorer-load", daemon=True)
                self._loader.start()

    def _model(self) -> Any:
        """The scoring model: (config.quantized) an int8 copy of the shared MiniLM run by ONNX Runtime
        (inference/int8_encoder.py), or the shared float model itself, which the TA-bot uses too."""
        if self._scoring_model is None:
            with self._model_lock:
                if self._scoring_model is None:
                    shared = (self._embedder or default_embedder()).sentence_transformer()
                    if self.config.projection is not None:
                        self._projection = projection_load(self.config.projection)
                    self._scoring_model = (Int8Encoder(shared, cache_dir=self._cache_dir) if self.config.quantized
                                           else shared)
        return self._scoring_model


_REJECTIONS = frozenset("mistake mistakes wrong forget forgets forgetting error errors careful avoid trap myth "
                        "misconception incorrect false".split())


def _rejects(sentence: str, statement: str) -> bool:
    """Whether `sentence`, close in meaning to `statement`, rejects it rather than says it: it calls it a mistake
    ("people often forget ...") where the statement does not, or it negates once more or once less than the
    statement ("a constant factor does not disappear" against "a constant factor disappears"). Sentence vectors
    hardly see a "not"; this reads the words."""
    said, stated = _words(sentence), _words(statement)
    if any(w in _REJECTIONS for w in said) and not any(w in _REJECTIONS for w in stated):
        return True
    return negations(said) % 2 != negations(stated) % 2


_AFFIRMATIONS = frozenset("yes yeah yep yup right correct true exactly sure definitely absolutely".split())
_AFFIRMING_OPENINGS = ("that's right", "that is right", "that's true", "that is true", "that's correct",
                       "that is correct", "i think so", "i believe so")


def affirms(answer: str, statement: str) -> bool:
    """Whether `answer`, to a beginner's "is it true that `statement`?", says yes to it: it opens with a yes ("Yes",
    "Right,", "That's true") and does not then negate it ("Right, it isn't")."""
    opening = reply_text(answer)
    words = _words(answer)
    said_yes = bool(words) and (words[0] in _AFFIRMATIONS or opening.startswith(_AFFIRMING_OPENINGS))
    return said_yes and not _rejects(answer, statement)


DOUBT_OPENING_WORDS = 3  # a hedge after more words than this qualifies what the student said, not the claim
# A student who cannot tell whether the beginner's mix-up is right has not got the idea it opposes.
_DOUBT = re.compile(r"\b(?:not (?:sure|certain)|unsure|(?:do not|don't|dont) know|(?:can't|cannot) (?:tell|say)|"
                    r"no (?:idea|clue)|idk|dunno|maybe|"
                    r"perhaps|i guess|possibly|might be|could be|hard to say|i'm confused|confused)\b")
_REJECTING = re.compile(r"^\W*(?:no|nope|nah)\b|\b(?:not|isn't|wrong|false|incorrect|mix-up|myth)\b|n't\b")


def doubts(answer: str) -> bool:
    """Whether `answer`, to a beginner's "is it true that ...?", says the student does not know: it opens with a hedge
    ("I'm not sure", "Hmm, maybe", "I don't know") and its first sentence does not also reject the claim ("No, and I'm
    not sure who says so", "I don't know who told you that, but it's wrong"). A hedge after a statement ("A statistic
    is about a sample, not sure about the rest") is not a doubt about the claim."""
    first = re.split(r"[.!?;]", reply_text(answer) + ".", maxsplit=1)[0]
    hedge = _DOUBT.search(first)
    if hedge is None or len(_words(first[:hedge.start()])) > DOUBT_OPENING_WORDS:
        return False
    return not _REJECTING.search(_DOUBT.sub(" ", first))


def uses_words_of(text: str, texts: Sequence[str]) -> bool:
    """Whether `text` says a word of four letters or more that `texts` (a concept's key ideas, lesson) also use:
    an answer in English, however few of its little words it has."""
    vocabulary = {w for t in texts for w in _words(t) if len(w) >= 4}
    return any(len(w) >= 4 and w in vocabulary for w in _words(text))


def _stop_pieces() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


_STOP_PIECES = _stop_pieces()


# --- the beginner's question without a model or an authored probe ------------------------------------------------

GENERIC_PROBES = (
    "I think I follow the example, but not the whole idea yet. What else should I know to use it myself?",
    "Okay, I think I get that part. Is there anything else to it that I would need to know?",
)
# Words too common to be a concept's term (bm25s's stop words are few: "every", "either" pass them).
_COMMON = frozenset("""about above after again against also always another anything around away back become becomes
before being below between both cannot could does doing done down during each either else enough even ever every
first from further have having here however into itself just keep last less like made make makes many more most much
must never next none often once only other others otherwise over same should since some something still such than
their them then there these thing things those though through thus together under until upon used uses using very want
well were what when where whether which while whole will with within without would your""".split())
_SWAP_STOP = _ENGLISH | _STOP_PIECES | _COMMON  # not terms: a swap is of words that name something
WORD_PROBE = "I keep hearing the word \u201c{word}\u201d with this, and you didn't mention it. Where does it fit in?"
# Without a model the scorer only suspects a mix-up (it hears a third of right explanations say one): the beginner
# asks about it instead of asserting it, and the student's own "yes" is what holds it (`affirms`).
MIXUP_PROBE = "Wait, someone told me \u201c{misconception}\u201d Is that right?"


def mixup_probe(misconception: str) -> str:
    """The beginner's question about a mix-up the scorer suspects the explanation makes."""
    text = misconception.strip()
    return MIXUP_PROBE.format(misconception=text if text[-1:] in ".?!" else text + ".")


def beginner_probe(idea: str, explanation: str, material: Sequence[str], asked: Sequence[str], topic: str = "") -> str:
    """A beginner's question aimed at `idea` when no authored probe is about it (an imported course has none) and no
    model writes one: about a word of the idea the explanation never used, preferring the words the concept's
    `material` (key ideas, lesson) uses most, which are its terms ("parameter") rather than the idea's wording
    ("describing"), and of those the longest; else a generic question not yet in `asked`. It names a word, never the
    idea's claim, nor a word of the `topic` (the beginner knows what the explanation is about)."""
    said = set(_words(prose(f"{explanation} {topic}"))) | {w for q in asked for w in _words(q)}
    counts: dict[str, int] = {}
    for text in material:
        for w in _words(prose(text)):
            counts[w] = counts.get(w, 0) + 1
    unsaid = [w for w in dict.fromkeys(_words(prose(idea)))
              if len(w) >= 4 and w not in said and w not in _ENGLISH and w not in _STOP_PIECES and w not in _COMMON]
    if unsaid:
        # the most used; of those, the longest (a term: "estimate", not "good"); max keeps the first tie
        word = max(unsaid, key=lambda w: (counts.get(w, 0), len(w)))
        question = WORD_PROBE.format(word=word)
        if question not in asked:
            return question
    return next((q for q in GENERIC_PROBES if q not in asked), GENERIC_PROBES[-1])

