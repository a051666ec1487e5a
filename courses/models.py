"""Curriculum: courses, their concept graph, lessons and items, and who teaches or takes them.

`courses/` knows nothing of students' sessions or knowledge; that lives in `tutor/`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Course(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    settings = models.JSONField(default=dict)  # courses.params.CourseSettings.to_dict(): read it through that
    attribution = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.title


class Concept(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="concepts")
    slug = models.SlugField(max_length=100)
    title = models.CharField(max_length=200)
    order = models.PositiveIntegerField(default=0)
    lesson = models.TextField(blank=True)
    pain_first = models.TextField(blank=True)
    guess_first = models.TextField(blank=True)
    guess_choices = models.JSONField(default=list, blank=True)
    # The right one of guess_choices, if the course says: the guess then informs the tutor's belief about prior
    # knowledge (tutor.services.guess_record). Never shown to the student, who is told the guess is not graded.
    guess_answer = models.TextField(blank=True)
    explanation = models.TextField(blank=True)
    prerequisites = models.ManyToManyField("self", symmetrical=False, related_name="dependents", blank=True)
    prerequisites_inferred = models.BooleanField(default=False)
    params = models.JSONField(default=dict, blank=True)  # courses.params.ConceptParams.to_dict(): read it through that
    # Teach-back (courses.format.ConceptSpec): lists of short statements; empty for imported courses.
    key_ideas = models.JSONField(default=list, blank=True)
    misconceptions = models.JSONField(default=list, blank=True)
    probes = models.JSONField(default=list, blank=True)
    # misconception -> the key idea it opposes, where the author named one (courses.format.misconception_links)
    misconception_ideas = models.JSONField(default=dict, blank=True)
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["course", "order"]
        constraints = [models.UniqueConstraint(fields=["course", "slug"], name="concept_unique_slug_per_course")]

    def __str__(self) -> str:
        return self.title


class Item(models.Model):
    class Kind(models.TextChoices):
        NUMERIC = "numeric"
        MULTIPLE_CHOICE = "multiple_choice"
        SYMBOLIC = "symbolic"
        SHORT_TEXT = "short_text"
        TEMPLATE = "template"

    class Status(models.TextChoices):
        PUBLISHED = "published"  # shown to students
        REVIEW = "review"  # generated or imported with warnings: waits for faculty
        REJECTED = "rejected"

    class Origin(models.TextChoices):
        AUTHORED = "authored"
        IMPORTED = "imported"
        GENERATED = "generated"

    concept = models.ForeignKey(Concept, on_delete=models.CASCADE, related_name="items")
    slug = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    prompt = models.TextField()
    answer = models.JSONField()  # the key; never rendered to a student before an attempt
    choices = models.JSONField(default=list, blank=True)
    tolerance = models.FloatField(null=True, blank=True)
    units = models.CharField(max_length=40, blank=True)
    variables = models.JSONField(default=list, blank=True)
    accept = models.JSONField(default=list, blank=True)
    params = models.JSONField(default=dict, blank=True)
    hints = models.JSONField(default=list, blank=True)
    feedback = models.JSONField(default=dict, blank=True)
    authored_difficulty = models.FloatField(null=True, blank=True)
    difficulty = models.FloatField(default=0.0)  # calibrated online from real answers
    solution = models.TextField(blank=True)
    attribution = models.TextField(blank=True)
    extra = models.JSONField(default=dict, blank=True)
    order = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PUBLISHED)
    origin = models.CharField(max_length=12, choices=Origin.choices, default=Origin.AUTHORED)

    class Meta:
        ordering = ["concept", "order"]
        constraints = [models.UniqueConstraint(fields=["concept", "slug"], name="item_unique_slug_per_concept")]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    """A person's role in one course. Authorization for everything course-scoped goes through this."""

    class Role(models.TextChoices):
        STUDENT = "student"
        TA = "ta"
        FACULTY = "faculty"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "course"], name="membership_one_role_per_course")]

    def __str__(self) -> str:
        return f"{self.user_id} is {self.role} in {self.course_id}"


class ContentVersion(models.Model):
    """One change to a course, a concept or an item: who, when, and the object before and after, as JSON.

    `before` is null for a creation, `after` null for a deletion. Reverting a version writes a new version.
    """

    class Kind(models.TextChoices):
        COURSE = "course"
        CONCEPT = "concept"
        ITEM = "item"

    class Action(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        DELETE = "delete"
        REVERT = "revert"

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="versions")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    object_id = models.BigIntegerField(null=True)  # pk at the time; a revert of a deletion re-creates it anew
    label = models.CharField(max_length=200)  # what a person reads in the history, e.g. "item power-rule-3"
    action = models.CharField(max_length=10, choices=Action.choices)
    before = models.JSONField(null=True)
    after = models.JSONField(null=True)
    reverts = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["course", "kind", "object_id"])]

    def __str__(self) -> str:
        return f"{self.action} {self.label}"

    def changed_fields(self) -> list[str]:
        before, after = self.before or {}, self.after or {}
        return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))

    def changes(self) -> list[tuple[str, object, object]]:
        """(field, before, after) for each changed field, for the history page."""
        before, after = self.before or {}, self.after or {}
        return [(k, before.get(k), after.get(k)) for k in self.changed_fields()]


class ImportJob(models.Model):
    """An uploaded course file and the progress of importing it (a Celery task), polled by the import page."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    filename = models.CharField(max_length=255)
    format = models.CharField(max_length=20)  # an importer's name: folder (zip), oatutor, gift, latex
    data = models.BinaryField()  # the upload itself: a worker on another machine reads it from the database
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)  # percent
    message = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    report = models.JSONField(default=list, blank=True)  # [{"path", "message", "severity"}] from the importer
    course = models.ForeignKey(Course, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"import of {self.filename} ({self.status})"
