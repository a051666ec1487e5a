"""The student's side: what the tutor believes they know, every answer they gave, where they are in the loop."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from courses.models import Concept, Course, Item


class KnowledgeRecord(models.Model):
    """One student's knowledge state in one course, as the learner model's compact blob."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="knowledge")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    blob = models.TextField(default="")  # learner_model.knowledge.KnowledgeState.to_blob()
    policy = models.JSONField(default=dict)  # the policy's review cards, concept in progress, recent items
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
    mastery_after = models.FloatField(null=True)
    feedback = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"])]

    def __str__(self) -> str:
        return f"attempt {self.client_id} ({'right' if self.correct else 'wrong'})"


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
        DONE = "done"  # the whole course is mastered

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tutor_sessions")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    concept = models.ForeignKey(Concept, on_delete=models.SET_NULL, null=True, related_name="+")
    phase = models.CharField(max_length=10, choices=Phase.choices, default=Phase.PAIN)
    item = models.ForeignKey(Item, on_delete=models.SET_NULL, null=True, related_name="+")
    item_p_correct = models.FloatField(null=True)
    step_kind = models.CharField(max_length=10, blank=True)  # "placement", "learn" or "review"
    placement = models.JSONField(null=True, blank=True)  # learner_model.placement.Placement.to_dict() while it runs
    introduced = models.JSONField(default=list, blank=True)  # concept slugs whose explanation the student has seen
    hints_shown = models.PositiveSmallIntegerField(default=0)
    last_attempt = models.ForeignKey(Attempt, on_delete=models.SET_NULL, null=True, related_name="+")
    reason = models.TextField(blank=True)  # one line the student can read: why this concept / item
    explanation = models.TextField(blank=True)  # the text streamed for the current concept, once complete
    step = models.UUIDField(default=uuid.uuid4)  # changes on every transition; forms carry it to reject stale clicks
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "course"], name="session_one_per_course")]

    def __str__(self) -> str:
        return f"session of user {self.user_id} in course {self.course_id} ({self.phase})"
