"""Turning retrieved passages into a TA-bot reply a student can read: short, clean, cited.

- `clean_passage`: a course text as a student should see it: importer artefacts (a literal "\\n", a figure the
  reply cannot show, maths whose delimiters or braces do not balance) repaired or shown as plain text.
- `extract`: the extractive answer (no model): the best passage's most relevant sentences first, then what the
  next passages add, at most `ANSWER_WORDS` words and `MAX_CITATIONS` sources, duplicates dropped. Every sentence
  is quoted verbatim (after cleaning) under its source: the course's words, never restated as the tutor's.
- `bounded`: a model's stream that stops when it repeats itself or runs past `MAX_MODEL_WORDS`.
- `supported`: a model's sentences kept only where a cited passage supports them (their terms are in it).

Nothing here searches or knows Django; passages come in as `Citation`-like (n, text) pairs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from inference.retrieval import tokenize, topic_terms

ANSWER_WORDS = 90  # the extractive answer's quotes, at most (the sources' titles come on top)
FIRST_PASSAGE_WORDS = 70  # of the best passage, before the next passages may add anything
MAX_CITATIONS = 3
MAX_MODEL_WORDS = 160  # a model's reply is cut at the first sentence end past this
REPEAT_NGRAM = 4  # words: a run this long seen REPEAT_TIMES in a model's reply means it is looping
REPEAT_TIMES = 3
SUPPORT_SHARE = 0.6  # of a model sentence's topic terms that must occur in the passage it cites
NEAR_DUPLICATE = 0.7  # token overlap (Jaccard) above which a passage adds nothing to the ones before it
REPEATED_SENTENCE = 0.8  # share of a sentence's terms already in one quoted sentence: it says nothing new
SCORED_SENTENCES = 8  # sentences of long passages scored by the embedding model per reply
FOLLOW_SHARE = 0.8  # a further sentence of a passage is quoted only if it scores this share of the passage's best
PASSAGE_SHARE = 0.75  # a further passage is quoted only if its relevance is this share of the best passage's


# --- cleaning ------------------------------------------------------------------------------------------

_LITERAL_NEWLINE = re.compile(r"\\n(?![a-z])")  # "\n" typed as two characters; "\neq", "\nu" are TeX
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
# `\$` is a dollar sign, in text ("\$5") and in maths ("$\$20.00$"): never a delimiter
_MATH_SPAN = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<!\\)\$((?:\\.|[^\\$])+)\$", re.DOTALL)
_DELIMITER = re.compile(r"(?<!\\)\$")


def clean_passage(text: str) -> str:
    """A passage as it is quoted: importer artefacts repaired, maths that would not typeset shown as plain code."""
    text = _LITERAL_NEWLINE.sub("\n", text)
    text = _IMAGE.sub("(figure: see the linked page)", text)
    text = _MATH_SPAN.sub(_math, text)
    if len(_DELIMITER.findall(text)) % 2:  # a delimiter left open: whatever follows it would typeset as maths
        text = _DELIMITER.sub("", text)
    text = re.sub(r"[ \t]+", " ", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _math(match: re.Match[str]) -> str:
    tex = (match.group(1) or match.group(2) or "").strip()
    if not tex:
        return ""
    if not _balanced(tex) or re.search(r"/[a-z]{2,}\{", tex):  # "/lim{": a backslash typed as a slash
        return "`" + tex.replace("`", "'") + "`"
    whole = match.string
    alone = (match.start() == 0 or whole[match.start() - 1] == "\n") and (
        match.end() == len(whole) or whole[match.end()] == "\n")
    # Display maths keeps its own line; "$$...$$" inside a sentence (as OATutor writes it) becomes inline maths.
    return f"$${tex}$$" if alone and match.group(1) is not None else f"${tex}$"


def _balanced(tex: str) -> bool:
    depth = 0
    for ch in re.sub(r"\\[{}]", "", tex):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0 and tex.count("\\left") == tex.count("\\right")


# --- sentences ------------------------------------------------------------------------------------------

# A sentence ends at ". ", "? ", "! " or a line break, never inside maths.
_PROTECTED = re.compile(r"(?<!\\)\$(?:\\.|[^\\$])*\$|`[^`]*`")


def sentences(text: str) -> list[str]:
    """The passage's sentences, verbatim, maths kept whole. A bold label ("**Completing the Square**") stays with
    the sentence that follows it."""
    shielded = _PROTECTED.sub(lambda m: m.group(0).replace(".", "\x00").replace("\n", "\x01"), text)
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z$(*\"'])|\n\s*\n|\n(?=\s*(?:[-*]|\d+[.)])\s)", shielded)
    out: list[str] = []
    for part in parts:
        part = part.replace("\x00", ".").replace("\x01", "\n").strip()
        if not part:
            continue
        if out and re.fullmatch(r"\*\*[^*]+\*\*:?", out[-1]):  # a label alone: joined to what it labels
            out[-1] = f"{out[-1]} {part}"
        else:
            out.append(part)
    return out


def words(text: str) -> int:
    return len(re.findall(r"\S+", text))


# --- the extractive answer ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    n: int  # the citation it comes from
    text: str


def extract(question: str, passages: Sequence[tuple[int, str, float]], *, limit: int = ANSWER_WORDS,
            first_limit: int = FIRST_PASSAGE_WORDS, max_citations: int = MAX_CITATIONS,
            relevance: Callable[[list[tuple[int, str]]], Sequence[float]] | None = None) -> list[Quote]:
    """Quotes that answer `question`: (citation number, cleaned passage, its relevance to the question) triples in,
    in order of retrieval; out, at most `max_citations` quotes of at most `limit` words together, the most relevant
    of the first three passages first. A passage longer than its share of the words is cut to its sentences most
    about the question: `relevance` scores (citation number, sentence) pairs (e.g. cosine of embeddings, called
    once, for those passages only); without it, shared topic terms do. A passage that repeats one already quoted,
    that has nothing but a label, or that is far less relevant than the best (`PASSAGE_SHARE`) is skipped."""
    terms = set(topic_terms(question))
    # A step that only asks ("Which axis is the transverse axis on?") answers nothing, and its bare answer
    # ("Round to four decimal places. Answer: 0.0011") means nothing without it: both are left out.
    split = [(n, text, score, parts) for n, text, score in passages if _content(text)
             if (parts := [p for p in sentences(text) if not _asks(p) and not _bare_answer(p)]) and _says(parts)]
    if not split:
        return []
    # The sentences of long passages are scored by `relevance`, at most SCORED_SENTENCES of them (the embedding model
    # reads them in one batch, and the reply waits for it); the rest by shared terms.
    long = [(n, s) for n, text, _, parts in split if words(text) > first_limit for s in parts][:SCORED_SENTENCES]
    found = iter(relevance(long) if relevance is not None and long else ())
    sentence_scores = {(n, s): float(next(found)) for n, s in long} if relevance is not None and long else {}
    best = max(score for _, _, score, _ in split)
    lead = max(split[:3], key=lambda entry: entry[2])
    quotes: list[Quote] = []
    seen: list[set[str]] = []
    said: list[set[str]] = []  # the terms of each sentence quoted so far
    used = 0
    for n, text, score, parts in [lead] + [entry for entry in split if entry is not lead]:
        if len(quotes) == max_citations or used >= limit - 8:
            break
        tokens = set(tokenize(text))
        if any(_jaccard(tokens, s) > NEAR_DUPLICATE for s in seen):
            continue
        if quotes and score < PASSAGE_SHARE * best:
            continue  # a later passage must be nearly as much about the question, not just fill the budget
        # A sentence another passage already said (a hint restated in the worked example) is not said twice, and a
        # step's bare heading ("*Step 2.* **Determining k**") says nothing on its own.
        fresh = [p for p in parts if _says([p]) and not _repeats(p, said)]
        scores = [sentence_scores.get((n, p), float(len(terms & set(tokenize(p))))) for p in fresh]
        # After the lead, a passage whose best sentence would have to be cut to fit is left out: a fragment
        # ("... a woman tests positive for …") adds nothing.
        chosen = _best_sentences(fresh, scores, (first_limit if not quotes else limit) - used, cut=not quotes)
        if not chosen:
            continue
        quote = " ".join(chosen) if len(chosen) < 3 else "\n\n".join(chosen)
        quotes.append(Quote(n, quote))
        seen.append(tokens)
        said.extend(set(tokenize(p)) for p in chosen)
        used += words(quote)
    return quotes


def _asks(sentence: str) -> bool:
    """A sentence that is a question (a scaffold step's), label and maths aside."""
    return re.sub(r"\*\*[^*]*\*\*", "", sentence).strip().endswith("?")


def _says(parts: list[str]) -> bool:
    """What is left of a passage still says something: maths, or three words outside labels and asides."""
    rest = re.sub(r"\*\*[^*]*\*\*|\([^)]*\)", " ", " ".join(parts))
    return "$" in rest or len(re.findall(r"[A-Za-z]{3,}", rest)) >= 3


def _bare_answer(sentence: str) -> bool:
    """A scaffold step's "Answer: ..." with hardly any words of its own before it."""
    before, found, _ = sentence.partition("Answer:")
    return bool(found) and len(re.findall(r"[A-Za-z]{3,}", re.sub(r"\*\*[^*]*\*\*|\([^)]*\)", "", before))) < 6


def _content(text: str) -> bool:
    """More than a label or a heading: at least five words outside bold marks and maths."""
    bare = re.sub(r"\*\*[^*]*\*\*|\$[^$]*\$|`[^`]*`", " ", text)
    return len(re.findall(r"[A-Za-z]{2,}", bare)) >= 5


def _repeats(sentence: str, said: list[set[str]]) -> bool:
    terms = set(tokenize(sentence))
    return bool(terms) and any(len(terms & other) >= REPEATED_SENTENCE * len(terms) for other in said)


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def _best_sentences(candidates: list[str], scores: list[float], budget: int, *, cut: bool = True) -> list[str]:
    """The best-scoring sentences, in reading order, within `budget` words; the best one always (cut at the
    budget if it alone is longer, or none at all when not `cut`)."""
    if budget <= 0 or not candidates:
        return []
    order = sorted(range(len(candidates)), key=lambda i: (-scores[i], i))
    chosen: list[int] = []
    total = 0
    for i in order:
        size = words(candidates[i])
        if chosen and (total + size > budget or scores[i] < FOLLOW_SHARE * scores[order[0]]):
            continue
        chosen.append(i)
        total += size
        if total >= budget:
            break
    out = [candidates[i] for i in sorted(chosen)]
    if total > budget and len(out) == 1:
        out = [_cut_words(out[0], budget)] if cut else []
    return out


def _cut_words(text: str, limit: int) -> str:
    """The first `limit` words, never ending inside maths, with an ellipsis."""
    shielded = _PROTECTED.sub(lambda m: m.group(0).replace(" ", "\x00"), text)
    kept = " ".join(shielded.split()[:limit]).replace("\x00", " ")
    return kept.rstrip(",;:") + " …"


# --- a model's reply -------------------------------------------------------------------------------------------


def bounded(stream: Iterator[str], *, max_words: int = MAX_MODEL_WORDS, ngram: int = REPEAT_NGRAM,
            times: int = REPEAT_TIMES) -> Iterator[str]:
    """The stream, stopped where it starts looping (a run of `ngram` words seen `times` times, or a sentence said
    twice) or at the first sentence end past `max_words`. What it yields never includes the repeated run."""
    text = ""
    sent = 0
    for piece in stream:
        text += piece
        stop = _loop_start(text, ngram, times)
        if stop is not None:
            if stop > sent:
                yield text[sent:stop].rstrip()
            return
        if words(text) > max_words:
            end = _sentence_end(text, sent)
            yield text[sent:end]
            return
        safe = text.rfind(" ")
        if safe > sent:
            yield text[sent:safe]
            sent = safe
    if text[sent:]:
        yield text[sent:]


def _loop_start(text: str, ngram: int, times: int) -> int | None:
    """Where the reply's first repetition begins (character offset), or None if it is not looping."""
    spans = [(m.group(0).lower(), m.start()) for m in re.finditer(r"[A-Za-z0-9']+", text)]
    seen: dict[tuple[str, ...], list[int]] = {}
    for i in range(len(spans) - ngram + 1):
        gram = tuple(w for w, _ in spans[i:i + ngram])
        starts = seen.setdefault(gram, [])
        if starts and spans[i][1] < starts[-1] + 1:
            continue
        starts.append(spans[i][1])
        if len(starts) >= times:
            return starts[1]
    said = [s.strip().lower() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 4]
    for i, s in enumerate(said):
        if s in said[:i]:
            return text.lower().find(s, text.lower().find(s) + 1)
    return None


def _sentence_end(text: str, start: int) -> int:
    found = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", text) if m.end() > start]
    return found[-1] if found else len(text)


_CITE = re.compile(r"\s*\[(\d+)\]")


@dataclass(frozen=True)
class Checked:
    text: str  # the sentence as shown, cited
    kept: bool
    cited: tuple[int, ...]


def supported(sentence: str, passages: dict[int, str]) -> Checked:
    """Whether a passage supports the model's `sentence`: most of its topic terms occur in a passage it cites, or
    (uncited) in any passage, which it then cites. A sentence with no topic term (a connective) is kept as is."""
    cited = tuple(int(n) for n in _CITE.findall(sentence) if int(n) in passages)
    bare = _CITE.sub("", sentence).strip()
    terms = set(topic_terms(bare))
    if not terms:
        return Checked(sentence, True, cited)
    # The passages it cites first; a sentence another passage supports is kept, citing that one instead.
    for n in (*cited, *(m for m in passages if m not in cited)):
        have = set(tokenize(passages[n]))
        if len(terms & have) / len(terms) >= SUPPORT_SHARE:
            return Checked(sentence if n in cited else _cite(bare, n), True, (n,))
    return Checked(sentence, False, cited)


def _cite(sentence: str, n: int) -> str:
    """The sentence with [n] before its closing full stop (or at its end)."""
    sentence = re.sub(r"\s+([.!?])", r"\1", sentence).rstrip()
    if sentence[-1:] in ".!?":
        return f"{sentence[:-1]} [{n}]{sentence[-1]}"
    return f"{sentence} [{n}]"


def by_sentence(stream: Iterator[str]) -> Iterator[str]:
    """The stream re-cut at sentence ends (a citation mark after the full stop stays with its sentence)."""
    text = ""
    for piece in stream:
        text += piece
        while True:
            match = re.search(r"[.!?](?:\s*\[\d+\])*(?=\s)|\n\n", text)
            if match is None:
                break
            yield text[:match.end()]
            text = text[match.end():]
    if text.strip():
        yield text
