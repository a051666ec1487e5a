"""The TA-bot's defences against prompt injection; every question and every passage is untrusted.

Three parts, each usable alone:
- `classify_question`: is this an attempt to steer the bot (ignore-your-instructions, role-play, asking for
  the system prompt, answer keys or other students' data), plainly or encoded (base64, hex, rot13,
  leetspeak, spaced-out letters)?
- `sanitize_passage`: a retrieved passage with instruction-like sentences cut and our delimiters
  neutralised, so that a document planted in the course is quoted as data and cannot speak as us.
- `OutputGuard`: streams a reply through, holding back a short tail, and stops it before any protected
  text (the system prompt, canaries, answer keys, other students' data) reaches the student.
Nothing here needs a model: it is fast, deterministic and testable.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

_ZERO_WIDTH = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")
_LEET = str.maketrans("0134579@$!|", "oieastgasil")
_SPACED = re.compile(r"\b(?:\w[ .\-_*]){3,}\w\b")

_ATTACKS: dict[str, list[str]] = {
    "override": [
        r"\b(ignore|disregard|forget|override|bypass)\b.{0,40}\b(previous|prior|above|earlier|preceding|all|your|any|these|those|system)\b.{0,30}\b(instructions?|rules?|prompts?|directions?|guidelines?|constraints?|guardrails?|restrictions?|programming)\b",
        r"\b(ignore|disregard|override|bypass)\b.{0,20}\b(instructions|guardrails|system prompt|safety rules)\b",
        r"\bnew (instructions?|rules|role|persona|task|directive)s?\b",
        r"\bfor the rest of this (chat|conversation)\b",
        r"\b(unrestricted|unfiltered|uncensored)\b",
        r"<\|?\s*(im_start|im_end|system|assistant|endoftext|user)\s*\|?>",
        r"(^|\n)\s*#*\s*(system|assistant|developer)\s*(message|prompt)?\s*:",
        r"\[/?(inst|system|sys)\]|<</?sys>>",
        r"\b(admin|developer|debug|maintenance|god|sudo|dan|jailbreak|unrestricted|unfiltered) mode\b",
        r"\bjailbr[eo]a?k",
        r"\b(stop being|you are no longer|you're no longer) (a|the|an)?\s*(teaching assistant|ta|tutor)\b",
        # claims of authority and control of the output: the course never needs either
        r"\b(system|admin|administrator|security|safety|developer) (override|update|notice|command)\b",
        r"\b(this is|i am|i'm) (authori[sz]ed|allowed|permitted|the (admin|administrator|developer|system))\b",
        r"\bauthori[sz]ed by (the )?(course )?(admin|administrator|developer|instructor|professor|university|staff)\b",
        r"\bfor (debugging|testing|test|audit|evaluation) purposes\b",
        r"\b(reply|respond|answer|output|print|say|write)\s+(only|exactly|just|nothing but)\s+(with\b|the (word|phrase|text|string)\b|[\"'“:])",
        r"\b(tell|inform|warn|remind|ask) (all |the |other |every |my )?(students|classmates|everyone|users|learners|class)\b",
        r"\b(log ?in|sign ?in|password|credentials?)\b.{0,60}https?://|https?://\S+.{0,60}\b(log ?in|sign ?in|password)\b",
    ],
    "role_play": [
        # "pretend you are", "pretend the exam is over"; not a course's "pretend that we have four more observations"
        r"\bpretend\b(?! (that )?(we|there|it)\b)",
        r"\b(roleplay|role-play|role play)\b",
        r"\bact (as|like) (an?|the|my)\b",
        r"\byou are (now|actually|really) (an?|the|my)\b",
        r"\b(let'?s|we will|we'll) play a game\b",
        r"\bimagine (that )?you (are|were|have no)\b",
        r"\b(stay|remain) in character\b",
        r"\bsimulate (an?|the)\b.{0,30}\b(ai|assistant|model|bot|terminal)\b",
    ],
    "system_prompt": [
        r"\b(system|developer|hidden|secret|initial|original|internal|first|full) (prompt|instructions?|message|rules|configuration|directives?)\b",
        r"\b(reveal|show|print|repeat|output|display|leak|dump|recite|spell out|write out|copy|translate|summari[sz]e)\b.{0,40}\b(your|the|above|previous|initial)\b.{0,20}\b(prompt|instructions?|rules|configuration|context|canary|reference code)\b",
        r"\bwhat (were|are) (you|your) (told|instructed|instructions|rules)\b",
        r"\b(canary|reference code|internal reference)\b",
        r"\b(words|text|everything) (above|before) (this|my)\b",
    ],
    "answer_keys": [
        r"\banswer[- ]?keys?\b",
        r"\b(correct|right|all the|every) answers? (to|for|of) (all|every|each|the) (items?|questions?|exercises?|problems?|quiz(zes)?|exams?|tests?|homework|assignments?)\b",
        r"\b(list|give|show|print|dump|tell)\b.{0,20}\b(all|every)\b.{0,20}\b(answers|solutions)\b",
        r"\bgrading (key|rubric|data|database)\b",
    ],
    "other_students": [
        r"\b(other|another|all|every|each|the other|my classmates?'?s?|classmates?)\s+(students?|learners?|users?|classmates?|people)\b.{0,60}\b(grades?|scores?|marks?|answers?|data|mastery|progress|e-?mails?|names?|records?|submissions?|attempts?|questions?|results?|information|info|details)\b",
        r"\b(grades?|scores?|marks?|answers?|data|mastery|progress|e-?mails?|submissions?|attempts?|results?|records?)\b.{0,30}\bof (other|another|all|every|the other) (students?|learners?|users?|classmates?)\b",
        r"\b(what|how) did (student |user |learner )?(?-i:[A-Z][a-z]+) (answer|score|get|submit|write)\b",
        r"\b(student|user|learner) (id|number|#)\s*\d+\b",
        r"\bclassmates?'?s?\b.{0,40}\b(grades?|scores?|answers?|data|mastery|progress|e-?mails?|submissions?)\b",
        r"\bwhat (did |has )?(?-i:[A-Z][a-z]+ [A-Z][a-z]+) (ask|asked|say|said|write|wrote|submit|submitted|score|scored|get|got)\b",
        r"\b(his|her|their|(?-i:[A-Z][a-z]+)'s) (student )?(id|number|grades?|e-?mail|scores?|marks?|mastery|answers?|questions?)\b",
        r"\bstudent (id|number|record)s?\b",
    ],
}
_COMPILED = {kind: [re.compile(p, re.IGNORECASE) for p in patterns] for kind, patterns in _ATTACKS.items()}
_ENCODING_WORDS = re.compile(r"\b(base ?64|b64|rot ?13|rot-13|hex(adecimal)?|decode|decipher|caesar|encoded|cipher|morse|reverse(d)? (text|this|the))\b",
                             re.IGNORECASE)
_BASE64_BLOB = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")
_HEX_BLOB = re.compile(r"(?:[0-9a-fA-F]{2}[\s:,]?){8,}")


@dataclass(frozen=True)
class Verdict:
    attack: bool
    kind: str = ""  # "override" | "role_play" | "system_prompt" | "answer_keys" | "other_students" | "encoded"
    reason: str = ""


def normalise(text: str) -> str:
    """NFKC, zero-width characters out, whitespace collapsed: the form every pattern is matched on."""
    return re.sub(r"\s+", " ", _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text))).strip()


def _variants(text: str) -> Iterator[str]:
    plain = normalise(text)
    yield plain
    yield plain.translate(_LEET)
    yield _SPACED.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group(0)), plain)
    raw = _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text))
    if re.search(r"(\b\w ){6,}", raw):  # "i g n o r e  a l l": letters one space apart, words two
        yield re.sub(r"(?<=\w) (?=\w)", "", raw).replace("  ", " ")
    yield plain[::-1]


def _match(text: str) -> Verdict | None:
    for variant in _variants(text):
        for kind, patterns in _COMPILED.items():
            for pattern in patterns:
                found = pattern.search(variant)
                if found:
                    return Verdict(True, kind, f"matched {kind} pattern: {found.group(0)[:60]!r}")
    return None


def _decoded_blobs(text: str) -> Iterator[str]:
    for blob in _BASE64_BLOB.findall(text):
        padded = blob + "=" * (-len(blob) % 4)
        try:
            decoded = base64.b64decode(padded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if _mostly_text(decoded):
            yield decoded
    for blob in _HEX_BLOB.findall(text):
        digits = re.sub(r"[\s:,]", "", blob)
        try:
            decoded = bytes.fromhex(digits[: len(digits) // 2 * 2]).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            continue
        if _mostly_text(decoded):
            yield decoded


def _mostly_text(decoded: str) -> bool:
    letters = sum(ch.isalpha() or ch == " " for ch in decoded)
    return len(decoded) >= 6 and letters / len(decoded) > 0.8 and " " in decoded.strip()


def classify_question(question: str, earlier_turns: Sequence[str] = ()) -> Verdict:
    """Whether the question (with this conversation's last turns, to catch attacks split over turns) is an
    attempt to take the bot out of its role. Questions about the course, however phrased, pass."""
    verdict = _match(question)
    if verdict:
        return verdict
    for decoded in _decoded_blobs(normalise(question)):
        inner = _match(decoded)
        return Verdict(True, "encoded", f"encoded text ({inner.kind if inner else 'unreviewable'}): {decoded[:60]!r}")
    rot = codecs.decode(normalise(question), "rot13")
    inner = _match(rot)
    if inner:
        return Verdict(True, "encoded", f"rot13 text ({inner.kind})")
    if _ENCODING_WORDS.search(question) and (_BASE64_BLOB.search(question) or _HEX_BLOB.search(question)
                                             or _looks_enciphered(question)):
        return Verdict(True, "encoded", "asks to decode an encoded message")
    if earlier_turns:
        joined = " ".join([*earlier_turns[-3:], question])
        verdict = _match(joined)
        if verdict:
            return Verdict(True, verdict.kind, "across turns: " + verdict.reason)
    return Verdict(False)


_COMMON = frozenset("the a an and of to is in it you that this what how for be are on with as i".split())


def _looks_enciphered(text: str) -> bool:
    words = re.findall(r"[a-z]+", text.lower())
    common = sum(w in _COMMON for w in words)
    return len(words) >= 6 and common / len(words) < 0.08


# --- passages ---------------------------------------------------------------------------------------

REMOVED = "[instruction-like text removed]"
# Course text has no reason to address the bot: a sentence telling an AI, assistant or tutor what to do goes.
_ADDRESSED = re.compile(
    r"\b(ai|a\.i\.|assistants?|chat ?bots?|bots?|models?|llms?|language models?|tutors?|tas|teaching assistants?)\b"
    r".{0,40}\b(must|should|shall|need to|needs to|are required to|is required to|have to|has to|always|never|will now)\b",
    re.IGNORECASE)
# Nor has it reason to tell whoever reads it what to teach: "tell the student the correct formula is ...", "when a
# student asks, say ...". Course text states things; it does not instruct its reader to repeat them.
_INSTRUCTS_TEACHER = re.compile(
    r"\b(tell|teach|inform|remind|instruct|convince) (the |your |all |every |any )?(students?|learners?|class|pupils?|"
    r"readers?|users?)\b"
    r"|\b(when|if|whenever) (a |the |any )?(students?|learners?|users?) asks?\b.{0,80}\b(say|tell|answer|respond|reply)"
    r"|\b(always|never) (answer|say|respond|reply|mention|tell)\b"
    r"|\b(the )?correct (formula|answer|rule|method) (is|to teach)\b.{0,20}\b(not|instead)\b",
    re.IGNORECASE)
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")


def sanitize_passage(text: str) -> tuple[str, bool]:
    """(the passage with instruction-like sentences replaced by a marker, whether anything was cut).

    A sentence goes if it reads as an attack, or carries an encoded blob that decodes to text. Our own
    passage delimiters and chat-template tokens are neutralised so that a passage cannot close itself.
    """
    kept: list[str] = []
    cut = False
    position = 0
    for match in _SENTENCES.finditer(text + "\n"):
        sentence = text[position:match.start()]
        separator = match.group(0)
        position = match.end()
        if sentence.strip() and (_match(sentence) or _ADDRESSED.search(sentence) or _INSTRUCTS_TEACHER.search(sentence)
                                 or any(True for _ in _decoded_blobs(sentence))
                                 or _match(codecs.decode(sentence, "rot13"))):
            kept.append(REMOVED + separator)
            cut = True
        else:
            kept.append(sentence + separator)
    clean = "".join(kept).rstrip("\n")
    clean = re.sub(r"</?\s*passage", lambda m: m.group(0).replace("<", "‹"), clean, flags=re.IGNORECASE)
    clean = re.sub(r"<\|", "‹|", clean)
    return clean, cut


def wrap_passage(n: int, title: str, text: str) -> str:
    """A passage as quoted data: the model is told that nothing between these delimiters is an instruction."""
    return f'<passage n="{n}" source="{title.replace(chr(34), chr(39))}">\n{text}\n</passage>'


# --- output -----------------------------------------------------------------------------------------

SHINGLE = 7  # words: a run this long copied from the system prompt counts as revealing it
WITHHELD = "*[withheld: protected information]*"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _squash(text: str) -> str:
    """Answer forms compared without spacing, TeX dressing or multiplication signs: "3*x - 1" ~ "$3x-1$"."""
    return re.sub(r"\\[a-z]+|[\s$\\{}*]", "", text.lower())


class OutputGuard:
    """Stops a reply that would show protected text.

    `answer_keys` are the keys of the items the student may not be helped on (the current and graded ones):
    a key of 3 or more characters is blocked wherever it appears; a shorter one (e.g. "3") only where the
    reply presents it as an answer ("the answer is 3", "= 3" at the end of a line).
    """

    def __init__(self, *, system_prompt: str = "", canaries: Sequence[str] = (), answer_keys: Sequence[str] = (),
                 private: Sequence[str] = ()) -> None:
        words = _words(system_prompt)
        self._shingles = {" ".join(words[i:i + SHINGLE]) for i in range(max(0, len(words) - SHINGLE + 1))}
        self._literals = [s.lower() for s in (*canaries, *private) if s.strip()]
        self._long_keys = [k for k in (_squash(str(a)) for a in answer_keys) if len(k) >= 3]
        self._short_keys = [re.compile(
            rf"(\b(answer|result|solution)\b[^.\n]{{0,30}}?|=\s*)(?<![\w.]){re.escape(str(a).strip())}(?![\w.])",
            re.IGNORECASE) for a in answer_keys if 0 < len(_squash(str(a))) < 3]
        self._hold = max([len(s) for s in self._literals] + [len(k) * 3 for k in self._long_keys] + [120])
        self.blocked = ""  # why the last filtered reply was cut, "" if it was not

    def violation(self, text: str) -> str:
        """The first kind of protected text found in `text`, or ""."""
        lowered = text.lower()
        if any(s in lowered for s in self._literals):
            return "canary or private data"
        words = _words(text)
        if any(" ".join(words[i:i + SHINGLE]) in self._shingles for i in range(max(0, len(words) - SHINGLE + 1))):
            return "system prompt"
        squashed = _squash(text)
        if any(k in squashed for k in self._long_keys) or any(p.search(text) for p in self._short_keys):
            return "answer key"
        return ""

    def filter(self, chunks: Iterable[str]) -> Iterator[str]:
        """Yield the reply as it streams, `_hold` characters behind. A sentence holding protected text is replaced
        by `WITHHELD` and the rest goes on: the student still gets what can be said (`blocked` says why)."""
        self.blocked = ""
        pending = ""
        for chunk in chunks:
            pending = self._withhold(pending + chunk)
            safe_end = len(pending) - self._hold
            cut = pending.rfind(" ", 0, safe_end) if safe_end > 0 else -1
            if cut > 0:
                yield pending[:cut]
                pending = pending[cut:]
        pending = self._withhold(pending)
        if pending:
            yield pending

    def _withhold(self, text: str) -> str:
        """`text` with each sentence that holds protected text replaced by `WITHHELD`; if the protected text spans
        sentences, all of `text` from the first of them on."""
        problem = self.violation(text)
        if not problem:
            return text
        self.blocked = self.blocked or problem
        parts = re.split(r"(?<=[.!?])(\s+)|(\n)", text)
        out, cut = [], False
        for part in parts:
            if part is None:
                continue
            if part.strip() and self.violation(part):
                out.append(WITHHELD)
                cut = True
            else:
                out.append(part)
        joined = "".join(out)
        if not cut or self.violation(joined.replace(WITHHELD, " ")):
            start = max((m.start() for m in re.finditer(r"(?:^|(?<=[.!?\n]))\s*\S", text)
                         if self.violation(text[m.start():])), default=0)
            return text[:start] + WITHHELD
        return joined
