"""What the TA-bot searches: documents (a lesson, a hint, a worked solution, an item stem, a faculty answer,
an uploaded Markdown or PDF file) and the chunks they are cut into, each linked to the exact place it comes from.

Nothing here embeds or ranks (that is `inference/retrieval.py`), and nothing knows Django or the course format:
the tutor turns a course into the plain `CourseText` below. Answer keys are never made into documents:
`CourseText` has no field for them. Which passages *compute* a key is decided by the tutor with its answer
checker and recorded on the chunk (`Chunk.reveals`).

One chunk, one idea: a hint is one chunk, indexed with its exercise's question (`context`) but quoting only
the hint; the rest of a worked example is indexed with the problem it works (the section's lead paragraph).
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

# "outline": text that only says where a concept sits in the course (an importer's lesson stub: the lesson's name,
# its objectives, its sibling topics). Indexed, so the course's scope and concept matching see it; never quoted.
DOCUMENT_KINDS = ("lesson", "explanation", "item", "hint", "solution", "faculty_answer", "upload", "outline")
MAX_CHUNK_CHARS = 900  # ~180 words: under MiniLM's 256-token window, small enough to quote
CONTEXT_CHARS = 400  # of a chunk's context (its exercise's question, its section's lead) kept for indexing


# --- the course, as plain data ------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemText:
    """What a student may read of an exercise: never its key."""

    id: str
    prompt: str
    choices: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()
    solution: str = ""  # the worked solution
    attribution: str = ""
    number: int = 0  # its place among its concept's exercises, as the concept's page lists them (0: named by its id)


@dataclass(frozen=True)
class ConceptText:
    slug: str
    title: str
    lesson: str = ""
    explanation: str = ""
    items: tuple[ItemText, ...] = ()
    outline: bool = False  # the lesson only names the concept's place in the course: indexed, never quoted
    topics: tuple[str, ...] = ()  # names of the course's lessons/sections that teach it: part of the course's scope


@dataclass(frozen=True)
class CourseText:
    slug: str
    title: str
    concepts: tuple[ConceptText, ...] = ()


@dataclass(frozen=True)
class Document:
    id: str  # stable across reindexing, e.g. "derivatives/power-rule#lesson" or "item/pr-3/hints"
    url: str  # where a student reads it, without an anchor: the chunk adds "#<heading slug>"
    title: str
    text: str  # Markdown
    kind: str  # one of DOCUMENT_KINDS
    concept: str = ""  # concept slug, "" for course-wide documents
    item_id: str = ""  # hints, solutions and stems: the item they belong to (integrity filtering)
    attribution: str = ""
    context: str = ""  # indexed with every chunk, never quoted: a hint's exercise question
    topic: str = ""  # what the document is about in a few words (the concept's title): indexed, never quoted

    @property
    def version(self) -> str:
        """A hash of everything that ends up in the chunks: equal versions need no reindexing."""
        payload = "\x1f".join((self.url, self.title, self.text, self.kind, self.concept, self.item_id, self.context,
                               self.topic))
        return hashlib.sha1(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Chunk:
    id: str  # f"{doc_id}::{n}"
    doc_id: str
    url: str  # the exact place: document url + "#" + anchor of the heading the chunk sits under
    title: str  # document title, plus " › heading" when the chunk is under one
    text: str  # the chunk's Markdown, verbatim from the document: what is quoted
    kind: str
    concept: str = ""
    item_id: str = ""
    context: str = ""  # indexed with the text, never quoted (see Document.context and chunk_document)
    topic: str = ""
    # Exercises whose key this passage states or computes (decided by the tutor's answer checker when the index is
    # built): it is not quoted to a student who has not attempted all of them.
    reveals: tuple[str, ...] = field(default=())

    def with_reveals(self, item_ids: Iterable[str]) -> Chunk:
        return replace(self, reveals=tuple(sorted(set(item_ids))))


# --- documents from course content --------------------------------------------------------------------


def course_documents(course: CourseText, base_url: str | None = None) -> list[Document]:
    """Every text of a course a student may read, as documents. Never an item's answer key.

    URLs follow `<base_url>/<concept>/` for lessons and `<base_url>/<concept>/items/<item>/` for items;
    pass the tutor's own prefix as `base_url` (default `/courses/<slug>`).
    """
    base = (base_url if base_url is not None else f"/courses/{course.slug}").rstrip("/")
    docs: list[Document] = []
    for concept in course.concepts:
        page = f"{base}/{concept.slug}/"
        lesson_kind = "outline" if concept.outline else "lesson"
        for kind, heading, text in ((lesson_kind, "Lesson", concept.lesson),
                                    ("explanation", "Explanation", concept.explanation)):
            if text.strip():
                doc_kind = "lesson" if kind == "outline" else kind  # the document id stays put when a lesson is rewritten
                docs.append(Document(id=f"{concept.slug}#{doc_kind}", url=page, title=concept.title,
                                     text=f"## {heading}\n\n{text}", kind=kind, concept=concept.slug,
                                     topic=concept.title))
        for item in concept.items:
            where = f"{page}items/{item.id}/"
            title = f"{concept.title}: exercise {item.number or item.id}"
            stem = item.prompt
            if item.choices:  # the choices, never which one is right
                stem += "\n\n" + "\n".join(f"- {choice}" for choice in item.choices)
            common = {"concept": concept.slug, "item_id": item.id, "attribution": item.attribution,
                      "topic": concept.title}
            docs.append(Document(id=f"item/{item.id}#stem", url=where, title=title,
                                 text=f"## Exercise\n\n{stem}", kind="item", **common))
            question = _plain(item.prompt)[:CONTEXT_CHARS]
            if item.hints:
                hints = "\n\n".join(f"## Hint {n}\n\n{hint}" for n, hint in enumerate(item.hints, start=1))
                docs.append(Document(id=f"item/{item.id}#hints", url=where, title=title, text=hints,
                                     kind="hint", context=question, **common))
            if item.solution.strip():
                docs.append(Document(id=f"item/{item.id}#solution", url=where, title=title,
                                     text=f"## Worked solution\n\n{item.solution}", kind="solution",
                                     context=question, **common))
    return docs


_MARKUP = re.compile(r"!\[[^\]]*\]\([^)]*\)|[*_#>`]+")


def _plain(markdown: str) -> str:
    """Markdown without images and emphasis marks, whitespace collapsed: for indexing, never for quoting."""
    return re.sub(r"\s+", " ", _MARKUP.sub(" ", markdown)).strip()


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def faculty_answer_document(*, id: str, url: str, question: str, answer: str, concept: str = "") -> Document:
    """A faculty answer to an earlier question. Who asked is never part of it; e-mail addresses are cut."""
    text = f"## Question\n\n{_EMAIL.sub('[address removed]', question)}\n\n## Answer\n\n{_EMAIL.sub('[address removed]', answer)}"
    return Document(id=id, url=url, title="Answered by faculty", text=text, kind="faculty_answer", concept=concept)


def markdown_document(*, id: str, url: str, title: str, text: str, concept: str = "") -> Document:
    return Document(id=id, url=url, title=title, text=text, kind="upload", concept=concept, topic=title)


def pdf_documents(*, id: str, url: str, title: str, data: bytes | Path, concept: str = "") -> list[Document]:
    """One document per PDF page, linked as `url#page=N` (what browsers' PDF viewers open at)."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data) if isinstance(data, bytes) else data)
    docs = []
    for number, page in enumerate(reader.pages, start=1):
        text = (page.extract_text() or "").strip()
        if text:
            docs.append(Document(id=f"{id}#page={number}", url=f"{url}#page={number}", title=f"{title}, page {number}",
                                 text=text, kind="upload", concept=concept, topic=title))
    return docs


# --- chunking -----------------------------------------------------------------------------------------

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def slugify(heading: str) -> str:
    """The anchor markdown-it's anchors plugin gives a heading (mdit_py_plugins.anchors.slugify)."""
    return re.sub(r"[^\w\u4e00-\u9fff\- ]", "", heading.strip().lower().replace(" ", "-"))


def chunk_document(doc: Document, max_chars: int = MAX_CHUNK_CHARS) -> list[Chunk]:
    """Split at headings, then pack paragraphs up to `max_chars`; a longer paragraph splits at sentences.

    Each chunk's text is a verbatim slice of the document (so a quote of it is found where its link points)
    and its url carries the anchor of the heading above it. Its `context` is the document's (a hint's exercise
    question); a section's later chunks that have none get the start of the section's first chunk, which states what
    the rest works on (a worked example's problem). A chunk of nothing but markup is left out.
    """
    sections: list[tuple[str, list[str]]] = [("", [])]
    for line in doc.text.splitlines():
        match = _HEADING.match(line)
        if match:
            sections.append((match.group(2), []))
        else:
            sections[-1][1].append(line)
    chunks: list[Chunk] = []
    for heading, lines in sections:
        section = "\n".join(lines)
        lead = ""
        for text in _pack(section, max_chars):
            if not _plain(text):
                continue
            url = f"{doc.url.split('#')[0]}#{slugify(heading)}" if heading else doc.url
            title = f"{doc.title} › {heading}" if heading else doc.title
            context = doc.context or lead
            chunks.append(Chunk(id=f"{doc.id}::{len(chunks)}", doc_id=doc.id, url=url, title=title, text=text,
                                kind=doc.kind, concept=doc.concept, item_id=doc.item_id, context=context,
                                topic=doc.topic))
            lead = lead or _plain(text)[:CONTEXT_CHARS]
    return chunks


_PARAGRAPH = re.compile(r"\S(?:.*?\S)??(?=\s*\n\s*\n|\s*\Z)", re.DOTALL)
_SENTENCE = re.compile(r"\S.*?(?:[.!?](?=\s)|\Z)", re.DOTALL)


def _pack(section: str, max_chars: int) -> Iterable[str]:
    """Consecutive paragraphs (or sentences of an over-long one) joined while they fit: verbatim slices."""
    spans: list[tuple[int, int]] = []
    for paragraph in _PARAGRAPH.finditer(section):
        if paragraph.end() - paragraph.start() <= max_chars:
            spans.append(paragraph.span())
        else:
            spans.extend((paragraph.start() + m.start(), paragraph.start() + m.end())
                         for m in _SENTENCE.finditer(paragraph.group(0)))
    start = end = -1
    for s, e in spans:
        if start >= 0 and e - start > max_chars:
            yield section[start:end]
            start = -1
        if start < 0:
            start = s
        end = e
    if start >= 0:
        yield section[start:end]
