"""The student's side: what the tutor believes they know, every answer they gave, where they are in the loop."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models

from courses.models import Concept, Course, Item

if TYPE_CHECKING:
    from learner_model.knowledge import KnowledgeState


class KnowledgeRecord(models.Model):
    """One student's knowledge state in one course, as the learner model's compact blob."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="knowledge")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    blob = models.TextField(default="")  # learner_model.knowledge.KnowledgeState.to_blob()
    policy = models.JSONField(default=dict)  # the policy's review cards, concept in progress, recent items
    # A graded LMS link reaches this student in this course (set at the LTI launch): a change of mastery is sent to
    # the gradebook. Kept here so that an answer, which saves this row anyway, asks nothing more of the database.
    lms_graded = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "course"], name="knowledge_one_per_course")]

    def __str__(self) -> str:
        return f"knowledge of user {self.user_id} in course {self.course_id}"


class Attempt(models.Model):
    """A graded answer. `client_id` comes from the page: a resent answer (double click, reconnect) is stored once."""

    client_id = models.UUIDField(unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attempts")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="attempts")
    concept = models.ForeignKey(Concept, on_delete=models.CASCADE, related_name="+")
    answer = models.TextField()
    normalized = models.TextField(blank=True)
    correct = models.BooleanField()
    hints_used = models.PositiveSmallIntegerField(default=0)
    p_correct_before = models.FloatField(null=True)  # the model's prediction when the item was served
    mastery_before = models.FloatField(null=True)  # the concept's mastery as the page showed it before this answer
    mastery_after = models.FloatField(null=True)
    feedback = models.TextField(blank=True)
    # Too large to check (`CheckResult.unchecked`): stored, counted neither right nor wrong (`correct` is False);
    # whatever learns from attempts (knowledge, calibration, refits, the dashboard's counts) leaves it out.
    ungraded = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"])]

    def __str__(self) -> str:
        return f"attempt {self.client_id} ({'ungraded' if self.ungraded else 'right' if self.correct else 'wrong'})"


class Guess(models.Model):
    """The student's committed prediction before the explanation (guess first). Weak evidence, kept for faculty."""

    client_id = models.UUIDField(unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="guesses")
    concept = models.ForeignKey(Concept, on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"guess {self.client_id}"


class TutorSession(models.Model):
    """Where a student is in the loop, so a reload or a dropped socket resumes exactly there."""

    class Phase(models.TextChoices):
        PLACEMENT = "placement"  # the adaptive diagnostic at enrolment
        PAIN = "pain"  # pain-first problem + guess-first prompt
        EXPLAIN = "explain"  # explanation streamed
        PRACTICE = "practice"  # an item is on screen
        FEEDBACK = "feedback"  # the answer was graded
        TEACH = "teach"  # the student explains the concept just mastered to a beginner (tutor/teachback)
        DONE = "done"  # the whole course is mastered

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tutor_sessions")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    concept = models.ForeignKey(Concept, on_delete=models.SET_NULL, null=True, related_name="+")
    phase = models.CharField(max_length=10, choices=Phase.choices, default=Phase.PAIN)
    item = models.ForeignKey(Item, on_delete=models.SET_NULL, null=True, related_name="+")
    item_p_correct = models.FloatField(null=True)
    item_seed = models.PositiveIntegerField(default=0)  # which variant of a template item is on screen
    item_repeat = models.BooleanField(default=False)  # its worked solution was seen already: weak evidence
    step_kind = models.CharField(max_length=10, blank=True)  # "placement", "learn" or "review"
    placement = models.JSONField(null=True, blank=True)  # learner_model.placement.Placement.to_dict() while it runs
    introduced = models.JSONField(default=list, blank=True)  # concept slugs whose explanation the student has seen
    hints_shown = models.PositiveSmallIntegerField(default=0)
    last_attempt = models.ForeignKey(Attempt, on_delete=models.SET_NULL, null=True, related_name="+")
    reason = models.TextField(blank=True)  # one line the student can read: why this concept / item
    explanation = models.TextField(blank=True)  # the text streamed for the current concept, once complete
    step = models.UUIDField(default=uuid.uuid4)  # changes on every transition; forms carry it to reject stale clicks
    updated_at = models.DateTimeField(auto_now=True)

    # Not a field: the student's knowledge state as the service that returned this session left it (what a read of
    # their KnowledgeRecord would give after its commit), so the stage it renders needs no second read; None on a
    # session read from the database (`tutor.services.session_get`), whose render reads the record.
    knowledge: KnowledgeState | None = None

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "course"], name="session_one_per_course")]

    def __str__(self) -> str:
        return f"session of user {self.user_id} in course {self.course_id} ({self.phase})"


# --- The TA-bot: the course's texts as searchable chunks, and students' questions ---------------------------


class TAIndex(models.Model):
    """The state of one course's TA search index: bumped `version` tells every process to reload its copy."""

    class Status(models.TextChoices):
        EMPTY = "empty"
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    course = models.OneToOneField(Course, on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField(default=0)  # +1 on every reindex that changed a chunk
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.EMPTY)
    progress = models.PositiveSmallIntegerField(default=0)  # percent of the current reindex
    message = models.CharField(max_length=300, blank=True)
    # A hash of the published items' keys when the passages' `reveals` were last decided: a changed key means every
    # stored passage is judged again (`tutor.ta.sources.passage_reveals`).
    keys_digest = models.CharField(max_length=40, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"TA index of course {self.course_id} v{self.version} ({self.status})"


class TAChunk(models.Model):
    """One searchable passage with its embedding (`inference.retrieval.Chunk` plus the vector)."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    doc_id = models.CharField(max_length=300)
    doc_version = models.CharField(max_length=40)  # Document.version: equal means no re-embedding needed
    chunk_id = models.CharField(max_length=320)
    url = models.CharField(max_length=500)
    title = models.CharField(max_length=500)
    text = models.TextField()
    kind = models.CharField(max_length=20)
    concept = models.CharField(max_length=100, blank=True)
    item_id = models.CharField(max_length=120, blank=True)
    context = models.TextField(blank=True)  # indexed with the text, never quoted (a hint's exercise question)
    topic = models.CharField(max_length=300, blank=True)  # the concept's title, indexed with the text
    reveals = models.JSONField(default=list, blank=True)  # item slugs whose key the passage states or computes
    vector = models.BinaryField()  # 384 little-endian float32 (retrieval.vector_to_bytes)

    class Meta:
        indexes = [models.Index(fields=["course", "doc_id"])]

    def __str__(self) -> str:
        return self.chunk_id


class TADocument(models.Model):
    """A Markdown or PDF file faculty uploaded for the TA to search (and students to read)."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=200)
    filename = models.CharField(max_length=255)
    kind = models.CharField(max_length=10)  # "markdown" or "pdf"
    data = models.BinaryField()
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # Personal data found when it was uploaded (`tutor.ta.privacy.personal_data`): while `held`, it is not indexed
    # until a teacher confirms it may be (or replaces it).
    held = models.BooleanField(default=False)
    findings = models.JSONField(default=list, blank=True)  # [{"kind", "text"}]: what was found, shown masked
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")

    def __str__(self) -> str:
        return self.filename


class TAQuestion(models.Model):
    """A student's question to the TA-bot, its answer, and (when escalated) the faculty's answer."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ta_questions")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    question = models.TextField()
    answer = models.TextField(blank=True)  # Markdown as streamed (the guard already applied)
    outcome = models.CharField(max_length=12, blank=True)  # TAReply.outcome
    reason = models.CharField(max_length=300, blank=True)
    citations = models.JSONField(default=list, blank=True)  # [{"n", "url", "title"}]
    concepts = models.JSONField(default=list, blank=True)  # concept slugs the question was about (light evidence)
    escalated = models.BooleanField(default=False)
    escalated_at = models.DateTimeField(null=True, blank=True)
    faculty_answer = models.TextField(blank=True)
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    answered_at = models.DateTimeField(null=True, blank=True)
    shared = models.BooleanField(default=True)  # the faculty answer goes into the index (without who asked)
    hidden_by_student = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["user", "course", "created_at"]),
                   models.Index(fields=["course", "escalated", "answered_at"])]

    def __str__(self) -> str:
        return f"TA question {self.pk} ({self.outcome})"


# Teach-back rows live with their package; imported here so that the app registers them.
from tutor.teachback.models import TeachBack, TeachBackMessage  # noqa: E402, F401
