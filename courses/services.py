"""Writes to the curriculum. Each service opens its own transaction."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Max
from django.db.models.deletion import Collector

from courses import importing, versioning
from courses.background import task_start
from courses.format import ITEM_STATUS_KEY, CourseSpec, ItemSpec
from courses.importers.result import MISSING_FIGURE_RE, safe_relative_path
from courses.models import Concept, ContentVersion, Course, ImportJob, Item, Membership
from courses.params import CourseSettings
from courses.selectors import course_asset_root
from courses.signals import course_imported

UNPUBLISHED = (Item.Status.REVIEW, Item.Status.REJECTED)
ITEM_FIELDS = ("kind", "prompt", "answer", "choices", "tolerance", "units", "variables", "accept", "params", "hints",
               "feedback", "authored_difficulty", "solution", "attribution", "extra", "order")


def _item_fields(spec: ItemSpec, order: int) -> dict:
    """An item spec as Item fields (`ITEM_FIELDS`)."""
    return {
        "kind": spec.kind,
        "prompt": spec.prompt,
        "answer": spec.answer,
        "choices": spec.choices,
        "tolerance": spec.tolerance,
        "units": spec.units or "",
        "variables": spec.variables,
        "accept": spec.accept,
        "params": spec.params,
        "hints": spec.hints,
        "feedback": spec.feedback,
        "authored_difficulty": spec.difficulty,
        "solution": spec.solution,
        "attribution": spec.attribution,
        "extra": spec.extra,
        "order": order,
    }


@transaction.atomic
def course_import(*, spec: CourseSpec, origin: str = Item.Origin.AUTHORED, assets: dict[str, bytes] | None = None) -> Course:
    """Create or update a course from a parsed spec. Idempotent: re-importing updates in place, never duplicates.

    Items and concepts that are no longer in the spec are removed; students' attempts on removed items go
    with them (the tutor keeps its knowledge state per concept slug). `assets` (course-relative path -> bytes,
    e.g. figures) are written once the database transaction has committed.
    """
    course, _ = Course.objects.update_or_create(
        slug=spec.slug,
        defaults={"title": spec.title, "description": spec.description, "settings": spec.settings.to_dict(),
                  "attribution": spec.attribution},
    )
    concepts: dict[str, Concept] = {}
    stored = {(i.concept_id, i.slug): i for i in Item.objects.filter(concept__course=course)}
    new_items: list[Item] = []
    changed: list[Item] = []
    keep: set[int] = set()
    for order, c in enumerate(spec.concepts):
        concept, _ = Concept.objects.update_or_create(
            course=course, slug=c.slug,
            defaults={"title": c.title, "order": order, "lesson": c.lesson, "pain_first": c.pain_first,
                      "guess_first": c.guess_first, "guess_choices": c.guess_choices, "guess_answer": c.guess_answer,
                      "explanation": c.explanation, "prerequisites_inferred": c.prerequisites_inferred,
                      "params": c.params.to_dict(), "key_ideas": c.key_ideas, "misconceptions": c.misconceptions,
                      "misconception_ideas": c.misconception_ideas, "probes": c.probes, "extra": c.extra},
        )
        concepts[c.slug] = concept
        for i, item in enumerate(c.items):
            fields = _item_fields(item, i)
            # An exported course keeps unpublished items as `extra.status`; they stay out of students' sight.
            # Otherwise a new item is published and a stored one keeps the status faculty gave it.
            status = fields["extra"].get(ITEM_STATUS_KEY)
            existing = stored.get((concept.pk, item.id))
            if existing is None:
                new_items.append(Item(concept=concept, slug=item.id, difficulty=item.difficulty or 0.0, origin=origin,
                                      status=status if status in UNPUBLISHED else Item.Status.PUBLISHED, **fields))
                continue
            keep.add(existing.pk)
            if status in UNPUBLISHED:
                fields["status"] = status
            if existing.authored_difficulty != item.difficulty:
                fields["difficulty"] = item.difficulty or 0.0
            if any(getattr(existing, key) != value for key, value in fields.items()):
                for key, value in fields.items():
                    setattr(existing, key, value)
                changed.append(existing)
    # In bulk: one statement per few hundred items, not two per item (a 1,800-item course held the database's
    # write lock for the whole import). Saving the course row above is what tells the caches (`course_imported`
    # and the content version) that everything changed.
    Item.objects.filter(pk__in=[i.pk for i in stored.values() if i.pk not in keep]).delete()
    Item.objects.bulk_update(changed, [*ITEM_FIELDS, "status", "difficulty"], batch_size=500)
    Item.objects.bulk_create(new_items, batch_size=500)
    course.concepts.exclude(slug__in=concepts).delete()
    for c in spec.concepts:
        concepts[c.slug].prerequisites.set([concepts[p] for p in c.prerequisites])
    if assets:
        transaction.on_commit(lambda: _assets_write(spec.slug, assets))
    return course


def _assets_write(slug: str, assets: dict[str, bytes]) -> None:
    root = course_asset_root(slug)
    for rel, data in assets.items():
        target = root / safe_relative_path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


@transaction.atomic
def membership_set(*, user: AbstractBaseUser, course: Course, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(user=user, course=course, defaults={"role": role})
    return membership


# --- Authoring: every change is versioned ---------------------------------------------------------------


def _version(*, course: Course, obj: Course | Concept | Item, user: AbstractBaseUser | None, action: str,
             before: dict | None, after: dict | None, reverts: ContentVersion | None = None) -> ContentVersion:
    return ContentVersion.objects.create(
        course=course, kind=versioning.kind_of(obj), object_id=obj.pk, label=versioning.label_of(obj),
        action=action, before=before, after=after, reverts=reverts, user=user if user and user.is_authenticated else None,
    )


def _lock_graph(course: Course) -> None:
    # Two authors drawing arrows at once could each pass the cycle check and together close a cycle:
    # changes to one course's graph take turns on the course row.
    Course.objects.select_for_update().filter(pk=course.pk).first()


def _course_item_slug_taken(course: Course, slug: str, exclude_pk: int | None = None) -> bool:
    # The folder format needs item ids unique across the course, not only within a concept.
    return Item.objects.filter(concept__course=course, slug=slug).exclude(pk=exclude_pk).exists()


@transaction.atomic
def course_settings_update(*, course: Course, user: AbstractBaseUser, title: str, description: str,
                           settings: dict) -> Course:
    """Change the title, description and some settings; `ParamsError` (nothing saved) for a value that cannot be
    used."""
    before = versioning.snapshot(course)
    course.title, course.description = title, description
    course.settings = CourseSettings.parse({**course.settings, **settings}).to_dict()
    course.save(update_fields=["title", "description", "settings", "updated_at"])
    _version(course=course, obj=course, user=user, action=ContentVersion.Action.UPDATE, before=before,
             after=versioning.snapshot(course))
    return course


@transaction.atomic
def concept_create(*, course: Course, user: AbstractBaseUser, fields: dict, prerequisites: list[str]) -> Concept:
    """Create a concept. `fields` are Concept fields (slug, title, lesson, ...); prerequisites are slugs."""
    _lock_graph(course)
    if course.concepts.filter(slug=fields["slug"]).exists():
        raise versioning.ContentError(f"a concept named {fields['slug']!r} already exists in this course")
    versioning.check_acyclic(course, fields["slug"], prerequisites)
    fields = {"order": (course.concepts.aggregate(m=Max("order"))["m"] or 0) + 1, **fields}
    concept = Concept.objects.create(course=course, **fields)
    concept.prerequisites.set(course.concepts.filter(slug__in=prerequisites))
    _version(course=course, obj=concept, user=user, action=ContentVersion.Action.CREATE, before=None,
             after=versioning.snapshot(concept))
    return concept


@transaction.atomic
def concept_update(*, concept: Concept, user: AbstractBaseUser, fields: dict,
                   prerequisites: list[str] | None = None) -> Concept:
    """Edit a concept; with `prerequisites`, replace its prerequisites (a cycle raises PrerequisiteCycle)."""
    course = concept.course
    before = versioning.snapshot(concept)
    new_slug = fields.get("slug", concept.slug)
    if new_slug != concept.slug and course.concepts.filter(slug=new_slug).exists():
        raise versioning.ContentError(f"a concept named {new_slug!r} already exists in this course")
    if prerequisites is not None:
        _lock_graph(course)
        versioning.check_acyclic(course, concept.slug, prerequisites)
    for key, value in fields.items():
        setattr(concept, key, value)
    if fields:  # only what the author changed: a generation job may be writing its progress to `extra`
        concept.save(update_fields=list(fields))
    if prerequisites is not None:
        had = set(concept.prerequisites.values_list("slug", flat=True))
        concept.prerequisites.set(course.concepts.filter(slug__in=prerequisites))
        # a person changed the inferred arrows: they are theirs now. Saving other fields leaves the guess to confirm
        # (concepts_confirm_inferred), as the course page asks.
        if concept.prerequisites_inferred and set(prerequisites) != had:
            concept.prerequisites_inferred = False
            concept.save(update_fields=["prerequisites_inferred"])
    after = versioning.snapshot(concept)
    if after != before:
        _version(course=course, obj=concept, user=user, action=ContentVersion.Action.UPDATE, before=before,
                 after=after)
    return concept


@transaction.atomic
def concepts_confirm_inferred(*, course: Course, user: AbstractBaseUser) -> int:
    """Faculty have looked at an importer's guessed prerequisites and accept them as they are."""
    confirmed = 0
    for concept in course.concepts.filter(prerequisites_inferred=True):
        before = versioning.snapshot(concept)
        concept.prerequisites_inferred = False
        concept.save(update_fields=["prerequisites_inferred"])
        _version(course=course, obj=concept, user=user, action=ContentVersion.Action.UPDATE, before=before,
                 after=versioning.snapshot(concept))
        confirmed += 1
    return confirmed


def concept_prerequisite_add(*, concept: Concept, prerequisite: Concept, user: AbstractBaseUser) -> Concept:
    current = list(concept.prerequisites.values_list("slug", flat=True))
    return concept_update(concept=concept, user=user, fields={}, prerequisites=[*current, prerequisite.slug])


def _refuse_if_students_would_lose_work(obj: Concept | Item, noun: str) -> None:
    """Deleting content that other apps' rows point at (students' answers, guesses) would delete those rows
    too, and a revert could not bring them back. Ask for a rejection instead. Found generically, through the
    cascade Django would run, so that `courses/` need not know what the tutor stores."""
    collector = Collector(using="default")
    collector.collect([obj])
    lost = sum(len(rows) for model, rows in collector.data.items() if model._meta.app_label != "courses")
    if lost:
        what = "its items' " if noun == "concept" else ""
        raise versioning.ContentError(
            f"Students have already answered {what}this {noun} ({lost} record{'s' if lost != 1 else ''}); deleting it "
            f"would delete their work. Reject {'its items' if noun == 'concept' else 'it'} instead: students stop "
            "seeing it and their history is kept.")


@transaction.atomic
def concept_delete(*, concept: Concept, user: AbstractBaseUser) -> None:
    course = concept.course
    _refuse_if_students_would_lose_work(concept, "concept")
    for item in concept.items.all():
        _version(course=course, obj=item, user=user, action=ContentVersion.Action.DELETE,
                 before=versioning.snapshot(item), after=None)
    _version(course=course, obj=concept, user=user, action=ContentVersion.Action.DELETE,
             before=versioning.snapshot(concept), after=None)
    concept.delete()


@transaction.atomic
def item_create(*, concept: Concept, user: AbstractBaseUser, fields: dict) -> Item:
    if _course_item_slug_taken(concept.course, fields["slug"]):
        raise versioning.ContentError(f"an item with id {fields['slug']!r} already exists in this course")
    order = (concept.items.aggregate(m=Max("order"))["m"] or 0) + 1
    fields = {"difficulty": fields.get("authored_difficulty") or 0.0, **fields}
    item = Item.objects.create(concept=concept, order=order, **fields)
    _version(course=concept.course, obj=item, user=user, action=ContentVersion.Action.CREATE, before=None,
             after=versioning.snapshot(item))
    return item


@transaction.atomic
def item_update(*, item: Item, user: AbstractBaseUser, fields: dict) -> Item:
    course = item.concept.course
    if "slug" in fields and _course_item_slug_taken(course, fields["slug"], exclude_pk=item.pk):
        raise versioning.ContentError(f"an item with id {fields['slug']!r} already exists in this course")
    before = versioning.snapshot(item)
    if "authored_difficulty" in fields and fields["authored_difficulty"] != item.authored_difficulty:
        item.difficulty = fields["authored_difficulty"] or 0.0  # a new authored estimate restarts calibration
    for key, value in fields.items():
        setattr(item, key, value)
    item.save()
    after = versioning.snapshot(item)
    if after != before:
        _version(course=course, obj=item, user=user, action=ContentVersion.Action.UPDATE, before=before, after=after)
    return item


def item_figure_place(*, course: Course, item_slug: str, prompt: str, name: str, data: bytes) -> str:
    """Keep an author's figure among the course's files and return `prompt` showing it: in place of the first
    figure the import found missing from its source, else after the text."""
    rel = f"figures/{item_slug}/{name}"
    target = course_asset_root(course.slug) / safe_relative_path(rel)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    image = f"![{name}]({rel})"
    placed, found = MISSING_FIGURE_RE.subn(lambda _: image, prompt, count=1)
    return placed if found else f"{prompt.rstrip()}\n\n{image}"


def item_review(*, item: Item, user: AbstractBaseUser, status: str) -> Item:
    """Approve (publish) or reject an item from the review queue."""
    if status not in (Item.Status.PUBLISHED, Item.Status.REJECTED, Item.Status.REVIEW):
        raise versioning.ContentError(f"unknown item status {status!r}")
    return item_update(item=item, user=user, fields={"status": status})


@transaction.atomic
def item_delete(*, item: Item, user: AbstractBaseUser) -> None:
    _refuse_if_students_would_lose_work(item, "item")
    _version(course=item.concept.course, obj=item, user=user, action=ContentVersion.Action.DELETE,
             before=versioning.snapshot(item), after=None)
    item.delete()


@transaction.atomic
def version_revert(*, version: ContentVersion, user: AbstractBaseUser) -> ContentVersion:
    """Put the object back as it was before `version`. The revert is itself a new version."""
    course = version.course
    _lock_graph(course)
    current: Course | Concept | Item | None
    if version.kind == ContentVersion.Kind.COURSE:
        current = course
    elif version.kind == ContentVersion.Kind.CONCEPT:
        current = Concept.objects.filter(course=course, pk=version.object_id).first()
    else:
        current = Item.objects.filter(concept__course=course, pk=version.object_id).first()
    before = versioning.snapshot(current) if current is not None else None
    restored = versioning.restore(version)
    obj = restored or current
    return ContentVersion.objects.create(
        course=course, kind=version.kind, object_id=obj.pk if obj is not None else version.object_id,
        label=version.label, action=ContentVersion.Action.REVERT, before=before,
        after=versioning.snapshot(restored) if restored is not None else None, reverts=version,
        user=user if user.is_authenticated else None,
    )


# --- Import jobs: an upload, parsed and imported by a Celery task ---------------------------------------


@transaction.atomic
def import_job_create(*, user: AbstractBaseUser, filename: str, data: bytes, format: str) -> ImportJob:
    from courses.tasks import import_job_run_task

    job = ImportJob.objects.create(user=user, filename=filename, data=data, format=format,
                                   message="Waiting for a worker")
    transaction.on_commit(lambda: task_start(import_job_run_task, job_id=job.pk))
    return job


def _job_progress(job: ImportJob, progress: int, message: str) -> None:
    job.progress, job.message = progress, message
    job.save(update_fields=["status", "progress", "message", "updated_at"])


def _statuses_take(spec: CourseSpec) -> dict[str, list[str]]:
    """Item statuses an export recorded in `extra` (see `selectors.course_spec`), removed from the spec."""
    out: dict[str, list[str]] = {}
    for concept in spec.concepts:
        for item in concept.items:
            status = item.extra.pop(ITEM_STATUS_KEY, None)
            if status in (Item.Status.REVIEW, Item.Status.REJECTED):
                out.setdefault(status, []).append(item.id)
    return out


def import_job_run(*, job_id: int) -> ImportJob:
    """Parse the upload and import it in one transaction: a malformed file imports nothing.

    Progress is saved outside that transaction so that the page polling the job sees it move.
    """
    job = ImportJob.objects.get(pk=job_id)
    if job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED):
        return job  # a redelivered task: it already ran
    job.status = ImportJob.Status.RUNNING
    _job_progress(job, 10, f"Reading {job.filename}")
    try:
        result = importing.parse_upload(job.filename, bytes(job.data), job.format)
        spec = result.spec
        existing = Course.objects.filter(slug=spec.slug).first()
        if existing is not None and not Membership.objects.filter(
                user=job.user, course=existing, role=Membership.Role.FACULTY).exists():
            raise importing.ImportFailed(f"a course with slug {spec.slug!r} exists and you are not its faculty")
        n_items = sum(len(c.items) for c in spec.concepts)
        _job_progress(job, 50, f"Read {len(spec.concepts)} concepts and {n_items} items; importing")
        origin = Item.Origin.AUTHORED if job.format == "folder" else Item.Origin.IMPORTED
        statuses = _statuses_take(spec)
        with transaction.atomic():
            course = course_import(spec=spec, origin=origin, assets=result.assets)
            for status, slugs in statuses.items():
                Item.objects.filter(concept__course=course, slug__in=slugs).update(status=status)
            if existing is None:
                membership_set(user=job.user, course=course, role=Membership.Role.FACULTY)
    except importing.ImportFailed as exc:
        job.status, job.error, job.data = ImportJob.Status.FAILED, str(exc), b""
        job.save(update_fields=["error", "data"])
        _job_progress(job, 100, "Import failed; nothing was changed")
        return job
    job.status, job.course = ImportJob.Status.DONE, course
    job.report = [{"path": i.path, "message": i.message, "severity": i.severity, "category": i.category}
                  for i in result.report]
    job.data = b""  # imported: the upload is no longer needed
    job.save(update_fields=["course", "report", "data"])
    verb = "Updated" if existing is not None else "Created"
    published = Item.objects.filter(concept__course=course, status=Item.Status.PUBLISHED).count()
    waiting = Item.objects.filter(concept__course=course, status=Item.Status.REVIEW).count()
    _job_progress(job, 100, f"{verb} {course.title}: {len(spec.concepts)} concepts, {published} items"
                            + (f"; {waiting} more wait in the review queue" if waiting else ""))
    course_imported.send(sender=ImportJob, course=course)  # e.g. the TA-bot indexes the new texts
    return job


# Step size of the online difficulty update; small, so that one student's bad day moves an item little.
CALIBRATION_RATE = 0.05


def item_calibrate(*, item_id: int, predicted: float, correct: bool) -> None:
    """Move an item's difficulty towards what students show: answered worse than predicted, it gets harder.

    Elo-style gradient step on the logit scale, d <- d + rate * (p - y), done in the database so that
    concurrent answers never overwrite each other.
    """
    Item.objects.filter(pk=item_id).update(difficulty=F("difficulty") + CALIBRATION_RATE * (predicted - float(correct)))

