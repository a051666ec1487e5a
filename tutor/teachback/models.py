"""A student's teach-back of one concept, and everything they wrote during it. Only the student sees their text;
faculty see anonymised examples (`tutor.teachback.selectors`)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from courses.models import Concept, Course


class TeachBack(models.Model):
    """One explanation of a concept to the tutor's "novice": up to two follow-up questions, and the verdict."""

    class Status(models.TextChoices):
        EXPLAINING = "explaining"  # waiting for the explanation
        FOLLOW_UP = "follow_up"  # the novice asked a question; waiting for the answer
        SCORED = "scored"  # the verdict is shown
        SKIPPED = "skipped"  # the student chose not to explain this time

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="teach_backs")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    concept = models.ForeignKey(Concept, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.EXPLAINING)
    questions = models.JSONField(default=list, blank=True)  # the novice's questions: [{"text", "idea"}]
    notice = models.TextField(blank=True)  # why the last text was turned away (a friendly redo), until the next one
    score = models.FloatField(null=True, blank=True)  # 0-5, inference.teachback.ExplanationScore.score
    ideas = models.JSONField(default=list, blank=True)  # [{"idea", "status", "coverage"}] of the latest scoring
    misconceptions_heard = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    scored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "tutor"
        indexes = [models.Index(fields=["user", "concept", "status"]), models.Index(fields=["concept", "status"])]

    def __str__(self) -> str:
        return f"teach-back {self.pk} of concept {self.concept_id} ({self.status})"


class TeachBackMessage(models.Model):
    """What the student wrote, as written, including what was turned away (`redo` says why)."""

    class Kind(models.TextChoices):
        EXPLANATION = "explanation"
        ANSWER = "answer"  # to a novice's follow-up question

    client_id = models.UUIDField(unique=True)  # from the page: a resent message is stored once
    teach_back = models.ForeignKey(TeachBack, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    text = models.TextField()
    redo = models.CharField(max_length=20, blank=True)  # inference.teachback.REDO_REASONS, or "" when accepted
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "tutor"
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.kind} {self.client_id}"
