"""What the TA-bot searches: documents (a lesson, a hint, a worked solution, an item stem, a faculty answer,
an uploaded Markdown or PDF file) and the chunks they are cut into, each linked to the exact place it comes from.

Nothing here embeds or ranks (that is `inference/retrieval.py`), and nothing knows Django. Answer keys are never
made into documents: `course_documents` reads item stems, hints and solutions, never `answer`.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from courses.format import CourseSpec

DOCUMENT_KINDS = ("lesson", "explanation", "item", "hint", "solution", "faculty_answer", "upload")
MAX_CHUNK_CHARS = 900  # ~180 words: under MiniLM's 256-token window, small enough to quote


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

    @property
    def version(self) -> str:
        """A hash of everything that ends up in the chunks: equal versions need no reindexing."""
        payload = "\x1f".join((self.url, self.title, self.text, self.kind, self.concept, self.item_id))
        return hashlib.sha1(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Chunk:
    id: str  # f"{doc_id}::{n}"
    doc_id: str
    url: str  # the exact place: document url + "#" + anchor of the heading the chunk sits under
    title: str  # document title, plus " › heading" when the chunk is under one
    text: str  # the chunk's Markdown, verbatim from the document
    kind: str
    concept: str = ""
    item_id: str = ""


# --- documents from course content --------------------------------------------------------------------


def course_documents(spec: CourseSpec, base_url: str | None = None) -> list[Document]:
    """Every text of a course a student may read, as documents. Never an item's answer key.

    URLs follow `<base_url>/<concept>/` for lessons and `<base_url>/<concept>/items/<item>/` for items;
    pass the tutor's own prefix as `base_url` (default `/courses/<slug>`).
    """
    base = (base_url if base_url is not None else f"/courses/{spec.slug}").rstrip("/")
    docs: list[Document] = []
    for concept in spec.concepts:
        page = f"{base}/{concept.slug}/"
        for kind, heading, text in (("lesson", "Lesson", concept.lesson),
                                    ("explanation", "Explanation", concept.explanation)):
            if text.strip():
                docs.append(Document(id=f"{concept.slug}#{kind}", url=page, title=concept.title,
                                     text=f"## {heading}\n\n{text}", kind=kind, concept=concept.slug))
        for item in concept.items:
            where = f"{page}items/{item.id}/"
            title = f"{concept.title}: exercise {item.id}"
            stem = item.prompt
            if item.choices:  # the choices, never which one is right
                stem += "\n\n" + "\n".join(f"- {choice}" for choice in item.choices)
            common = {"concept": concept.slug, "item_id": item.id, "attribution": item.attribution}
            docs.append(Document(id=f"item/{item.id}#stem", url=where, title=title,
                                 text=f"## Exercise\n\n{stem}", kind="item", **common))
            if item.hints:
                hints = "\n\n".join(f"## Hint {n}\n\n{hint}" for n, hint in enumerate(item.hints, start=1))
                docs.append(Document(id=f"item/{item.id}#hints", url=where, title=title, text=hints,
                                     kind="hint", **common))
            if item.solution.strip():
                docs.append(Document(id=f"item/{item.id}#solution", url=where, title=title,
                                     text=f"## Worked solution\n\n{item.solution}", kind="solution", **common))
    return docs


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def faculty_answer_document(*, id: str, url: str, question: str, answer: str, concept: str = "") -> Document:
    """A faculty answer to an earlier question. Who asked is never part of it; e-mail addresses are cut."""
    text = f"## Question\n\n{_EMAIL.sub('[address removed]', question)}\n\n## Answer\n\n{_EMAIL.sub('[address removed]', answer)}"
    return Document(id=id, url=url, title="Answered by faculty", text=text, kind="faculty_answer", concept=concept)


def markdown_document(*, id: str, url: str, title: str, text: str, concept: str = "") -> Document:
    return Document(id=id, url=url, title=title, text=text, kind="upload", concept=concept)


def pdf_documents(*, id: str, url: str, title: str, data: bytes | Path, concept: str = "") -> list[Document]:
    """One document per PDF page, linked as `url#page=N` (what browsers' PDF viewers open at)."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data) if isinstance(data, bytes) else data)
    docs = []
    for number, page in enumerate(reader.pages, start=1):
        text = (page.extract_text() or "").strip()
        if text:
            docs.append(Document(id=f"{id}#page={number}", url=f"{url}#page={number}", title=f"{title}, page {number}",
                                 text=text, kind="upload", concept=concept))
    return docs


# --- chunking -----------------------------------------------------------------------------------------

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def slugify(heading: str) -> str:
    """The anchor markdown-it's anchors plugin gives a heading (mdit_py_plugins.anchors.slugify)."""
    return re.sub(r"[^\w\u4e00-\u9fff\- ]", "", heading.strip().lower().replace(" ", "-"))


def chunk_document(doc: Document, max_chars: int = MAX_CHUNK_CHARS) -> list[Chunk]:
    """Split at headings, then pack paragraphs up to `max_chars`; a longer paragraph splits at sentences.

    Each chunk's text is a verbatim slice of the document (so a quote of it is found where its link points)
    and its url carries the anchor of the heading above it.
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
        for text in _pack(section, max_chars):
            url = f"{doc.url.split('#')[0]}#{slugify(heading)}" if heading else doc.url
            title = f"{doc.title} › {heading}" if heading else doc.title
            chunks.append(Chunk(id=f"{doc.id}::{len(chunks)}", doc_id=doc.id, url=url, title=title, text=text,
                                kind=doc.kind, concept=doc.concept, item_id=doc.item_id))
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
