"""Faculty authoring pages under /teach/. Thin: check the role, call a service or a selector, render.

Faculty of a course edit everything in it; TAs edit items (and work the review queue) but not the course's
settings or its concepts; students and everyone else get 403.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_ratelimit.core import get_usage

from courses import importing, selectors, services
from courses.background import task_start
from courses.checking import check_answer
from courses.format import dump_course
from courses.forms import ConceptForm, ImportForm, ItemForm, PrerequisiteForm, SettingsForm, preview_source
from courses.item_templates import TemplateError, Variant, instantiate
from courses.models import Concept, ContentVersion, Course, ImportJob, Item, Membership
from courses.params import ParamsError
from courses.rendering import render_markdown
from courses.versioning import ContentError

FACULTY = (Membership.Role.FACULTY,)
STAFF = (Membership.Role.FACULTY, Membership.Role.TA)
MAX_UPLOAD_BYTES = 100 * 1024 * 1024


def teaching_course(request: HttpRequest, slug: str, roles: tuple[str, ...] = STAFF) -> tuple[Course, str]:
    return selectors.course_taught(user=request.user, slug=slug, roles=roles)


def _saved(request: HttpRequest, message: str) -> None:
    """Say on the page a save leads to that it was saved (base.html shows it, as a status screen readers read)."""
    messages.success(request, message, extra_tags="saved")


def _page(request: HttpRequest, template: str, partial: str | None, context: dict) -> HttpResponse:
    """One view per page: htmx requests get only the fragment."""
    return render(request, partial if partial and request.htmx else template, context)


def _wire_previews(form: ConceptForm | ItemForm, course: Course) -> None:
    """Markdown fields preview themselves as the author types or pastes (rendered by the same code students see);
    `input`, not `keyup`: text pasted with the mouse or dropped in fires no key."""
    url = reverse("teach:preview", args=[course.slug])
    for name in form.TEXT_FIELDS:
        form.fields[name].widget.attrs.update({
            "hx-post": url, "hx-trigger": "input changed delay:300ms", "hx-target": f"#preview-{name}",
            "hx-vals": f'{{"field": "{name}"}}', "hx-sync": "this:replace",
        })


def _previews(form: ConceptForm | ItemForm, course: Course) -> list[tuple[object, str]]:
    """(bound field, rendered HTML of its current value) for the Markdown fields, the course's figures shown."""
    assets = selectors.course_asset_url(course)
    return [(form[name], render_markdown(preview_source(name, str(form[name].value() or "")), asset_base=assets))
            for name in form.TEXT_FIELDS]


@login_required
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "courses/index.html", {"courses": selectors.teaching_courses(user=request.user),
                                                  "can_import": _may_import(request)})


@login_required
def course_overview(request: HttpRequest, slug: str) -> HttpResponse:
    course, role = teaching_course(request, slug)
    return render(request, "courses/course.html", _overview_context(course, role))


def _overview_context(course: Course, role: str, **extra: object) -> dict:
    concepts = course.concepts.prefetch_related("items", "prerequisites").order_by("order")
    return {"course": course, "role": role, "is_faculty": role == Membership.Role.FACULTY, "concepts": concepts,
            "graph": selectors.concept_graph_layout(course=course), "edge_form": PrerequisiteForm(course=course),
            "review_count": selectors.review_queue(course=course).count(),
            "inferred_count": course.concepts.filter(prerequisites_inferred=True).count(),
            "teach_back": selectors.course_settings(course=course).teach_back,
            "teach_back_ready": selectors.teach_back_ready(course=course), **extra}


@login_required
@require_POST
def edge_add(request: HttpRequest, slug: str) -> HttpResponse:
    """Draw an edge in the graph: `prerequisite` must be mastered before `concept`. A cycle is refused, named."""
    course, role = teaching_course(request, slug, FACULTY)
    form = PrerequisiteForm(request.POST, course=course)
    error = ""
    if form.is_valid():
        concept = course.concepts.get(slug=form.cleaned_data["concept"])
        prereq = course.concepts.get(slug=form.cleaned_data["prerequisite"])
        try:
            services.concept_prerequisite_add(concept=concept, prerequisite=prereq, user=request.user)
        except ContentError as exc:
            error = str(exc)
    else:
        error = "Choose two concepts."
    context = _overview_context(course, role, graph_error=error, edge_form=form)
    response = _page(request, "courses/course.html", "courses/partials/graph.html", context)
    if error:
        response.status_code = 422 if not request.htmx else 200
    return response


@login_required
@require_POST
def graph_confirm(request: HttpRequest, slug: str) -> HttpResponse:
    course, _ = teaching_course(request, slug, FACULTY)
    services.concepts_confirm_inferred(course=course, user=request.user)
    return redirect("teach:course", slug=course.slug)


@login_required
@require_POST
def edge_remove(request: HttpRequest, slug: str) -> HttpResponse:
    course, role = teaching_course(request, slug, FACULTY)
    concept = get_object_or_404(Concept, course=course, slug=request.POST.get("concept", ""))
    keep = [p for p in concept.prerequisites.values_list("slug", flat=True) if p != request.POST.get("prerequisite")]
    services.concept_update(concept=concept, user=request.user, fields={}, prerequisites=keep)
    return _page(request, "courses/course.html", "courses/partials/graph.html", _overview_context(course, role))


@login_required
def course_settings(request: HttpRequest, slug: str) -> HttpResponse:
    course, role = teaching_course(request, slug, FACULTY)
    form = SettingsForm(request.POST or None, initial=SettingsForm.initial_for(course),
                        teach_back_ready=selectors.teach_back_ready(course=course))
    if request.method == "POST" and form.is_valid():
        try:
            services.course_settings_update(course=course, user=request.user, title=form.cleaned_data["title"],
                                            description=form.cleaned_data["description"],
                                            settings=form.course_settings())
        except ParamsError as exc:
            form.add_error(None, str(exc))
        else:
            _saved(request, "Saved the course settings.")
            return redirect("teach:course", slug=course.slug)
    return render(request, "courses/settings.html", {"course": course, "role": role, "form": form})


@login_required
def concept_new(request: HttpRequest, slug: str) -> HttpResponse:
    course, role = teaching_course(request, slug, FACULTY)
    form = ConceptForm(request.POST or None, course=course)
    _wire_previews(form, course)
    if request.method == "POST" and form.is_valid():
        try:
            concept = services.concept_create(course=course, user=request.user, fields=form.concept_fields(),
                                              prerequisites=form.cleaned_data["prerequisites"])
        except ContentError as exc:
            form.add_error(None, str(exc))
        else:
            _saved(request, f"Saved the new concept {concept.title}.")
            return redirect("teach:concept", slug=course.slug, concept=concept.slug)
    return render(request, "courses/concept_form.html",
                  {"course": course, "role": role, "form": form, "previews": _previews(form, course), "concept": None})


@login_required
def concept_edit(request: HttpRequest, slug: str, concept: str) -> HttpResponse:
    course, role = teaching_course(request, slug, FACULTY)
    obj = get_object_or_404(Concept, course=course, slug=concept)
    form = ConceptForm(request.POST or None, course=course, concept=obj)
    _wire_previews(form, course)
    if request.method == "POST" and form.is_valid():
        try:
            obj = services.concept_update(concept=obj, user=request.user, fields=form.concept_fields(),
                                          prerequisites=form.cleaned_data["prerequisites"])
        except ContentError as exc:
            form.add_error(None, str(exc))
        else:
            _saved(request, f"Saved {obj.title}.")
            return redirect("teach:concept", slug=course.slug, concept=obj.slug)
    return render(request, "courses/concept_form.html", {
        "course": course, "role": role, "form": form, "previews": _previews(form, course), "concept": obj,
        "items": obj.items.order_by("order"),
        **_generation_context(obj),
        "versions": selectors.content_versions(course=course, kind=ContentVersion.Kind.CONCEPT, object_id=obj.pk),
    })


def _generation_context(concept: Concept) -> dict:
    progress = concept.extra.get("item_generation") if isinstance(concept.extra, dict) else None
    return {"generation": progress, "generating": bool(progress) and progress.get("percent", 100) < 100}


@login_required
def concept_generation(request: HttpRequest, slug: str, concept: str) -> HttpResponse:
    """Start generating items for the concept (POST), or show how far the job has got (GET, polled)."""
    course, role = teaching_course(request, slug, FACULTY)
    obj = get_object_or_404(Concept, course=course, slug=concept)
    error = ""
    retry_after = 0  # seconds, when over the rate limit
    if request.method == "POST":
        try:
            n = max(1, min(20, int(request.POST.get("n", "5"))))
        except ValueError:
            n = 5
        if settings.TUTOR_LLM == "authored":
            error = "Generating items needs a language model: set TUTOR_LLM (see README, Configuration)."
        else:
            # each job calls the model many times: a faculty member starts a bounded number per hour
            limit = settings.TUTOR_RATELIMIT_ITEM_GENERATIONS
            usage = get_usage(request, group="item-generation", key="user", rate=f"{limit}/h",
                              increment=True) if limit else None
            if usage is not None and usage["should_limit"]:
                retry_after = max(1, int(usage["time_left"]))
                error = (f"You have started {limit} generation jobs in the last hour, the most allowed. Review "
                         f"what they produced; you can start another in {max(1, round(retry_after / 60))} min.")
            else:
                from courses.tasks import item_generate_batch_task

                obj.extra = {**obj.extra, "item_generation": {"percent": 0, "message": "Queued", "requested": n}}
                obj.save(update_fields=["extra"])
                task_start(item_generate_batch_task, concept_id=obj.pk, n=n)
                obj.refresh_from_db(fields=["extra"])
    context = {"course": course, "role": role, "concept": obj, "generation_error": error, **_generation_context(obj)}
    response = _page(request, "courses/concept_generation.html", "courses/partials/generation.html", context)
    if retry_after and not request.htmx:  # htmx swaps only 2xx: its partial carries the message with a 200
        response.status_code = 429
        response["Retry-After"] = str(retry_after)
    return response


@login_required
@require_POST
def concept_delete(request: HttpRequest, slug: str, concept: str) -> HttpResponse:
    course, role = teaching_course(request, slug, FACULTY)
    obj = get_object_or_404(Concept, course=course, slug=concept)
    try:
        services.concept_delete(concept=obj, user=request.user)
    except ContentError as exc:
        return render(request, "courses/refused.html", {"course": course, "role": role, "message": str(exc),
                                                        "back": reverse("teach:concept", args=[slug, concept])},
                      status=409)
    return redirect("teach:course", slug=course.slug)


@login_required
def item_new(request: HttpRequest, slug: str, concept: str) -> HttpResponse:
    course, role = teaching_course(request, slug)
    parent = get_object_or_404(Concept, course=course, slug=concept)
    form = ItemForm(request.POST or None, request.FILES or None,
                    initial={"status": Item.Status.PUBLISHED, "kind": "numeric"})
    _wire_previews(form, course)
    if request.method == "POST" and form.is_valid():
        try:
            item = services.item_create(concept=parent, user=request.user, fields=_item_fields(form, course))
        except ContentError as exc:
            form.add_error("slug", str(exc))
        else:
            _saved(request, f"Saved the new item {item.slug}.")
            return redirect("teach:item", slug=course.slug, pk=item.pk)
    return render(request, "courses/item_form.html", _item_context(course, role, form, parent, None))


@login_required
def item_edit(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    course, role = teaching_course(request, slug)
    item = get_object_or_404(Item.objects.select_related("concept"), concept__course=course, pk=pk)
    form = ItemForm(request.POST or None, request.FILES or None, initial=ItemForm.initial_for(item))
    _wire_previews(form, course)
    if request.method == "POST" and form.is_valid():
        try:
            services.item_update(item=item, user=request.user, fields=_item_fields(form, course))
        except ContentError as exc:
            form.add_error("slug", str(exc))
        else:
            _saved(request, f"Saved item {item.slug}.")
            return redirect("teach:item", slug=course.slug, pk=item.pk)
    return render(request, "courses/item_form.html",
                  _item_context(course, role, form, item.concept, item, seed=_seed(request)))


def _item_fields(form: ItemForm, course: Course) -> dict:
    """The item as the form has it, with an uploaded figure kept and shown in its question."""
    fields = form.item_fields()
    if form.cleaned_data.get("figure"):
        name, data = form.cleaned_data["figure"]
        fields["prompt"] = services.item_figure_place(course=course, item_slug=fields["slug"], prompt=fields["prompt"],
                                                      name=name, data=data)
    return fields


def _seed(request: HttpRequest) -> int:
    try:
        return int(request.POST.get("seed") or request.GET.get("seed") or 0)
    except ValueError:
        return 0


def _template_variant(item: Item | None, seed: int) -> Variant | None:
    if item is None or item.kind != "template":
        return None
    try:
        return instantiate(selectors.item_spec(item=item), seed)
    except TemplateError:
        return None


def _item_context(course: Course, role: str, form: ItemForm, concept: Concept, item: Item | None,
                  seed: int = 0) -> dict:
    kind = form["kind"].value()
    choices = [c.strip() for c in str(form["choices"].value() or "").splitlines() if c.strip()]
    variant = _template_variant(item, seed)
    return {
        "course": course, "role": role, "form": form, "concept": concept, "item": item, "seed": seed,
        "variant": variant,
        "variant_html": render_markdown(variant.prompt, asset_base=selectors.course_asset_url(course)) if variant else "",
        "previews": _previews(form, course), "try_choices": choices if kind == "multiple_choice" else [],
        "versions": selectors.content_versions(course=course, kind=ContentVersion.Kind.ITEM, object_id=item.pk)
        if item else [],
    }


@login_required
@require_POST
def item_delete(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    course, role = teaching_course(request, slug)
    item = get_object_or_404(Item.objects.select_related("concept"), concept__course=course, pk=pk)
    concept = item.concept
    try:
        services.item_delete(item=item, user=request.user)
    except ContentError as exc:
        return render(request, "courses/refused.html", {"course": course, "role": role, "message": str(exc),
                                                        "back": reverse("teach:item", args=[slug, pk])}, status=409)
    if role == Membership.Role.FACULTY:
        return redirect("teach:concept", slug=course.slug, concept=concept.slug)
    return redirect("teach:course", slug=course.slug)


@login_required
@require_POST
def item_try(request: HttpRequest, slug: str) -> HttpResponse:
    """"Try it as a student": grade an answer against the item as it stands in the form, saved or not,
    with the same checker the tutor uses."""
    course, _ = teaching_course(request, slug)
    form = ItemForm(request.POST)
    context: dict = {"course": course, "form": form}
    if form.is_valid():
        f = form.item_fields()
        key = f["answer"]
        if f["kind"] == "template":  # graded against the variant on screen, as the tutor will
            variant = instantiate(form.item_spec(), _seed(request))
            key, context["variant"] = variant.answer, variant
        context["result"] = check_answer(f["kind"], key, request.POST.get("student_answer", ""),
                                         tolerance=f["tolerance"], units=f["units"] or None, variables=f["variables"],
                                         accept=f["accept"], feedback=f["feedback"],
                                         decimal_comma=selectors.course_settings(course=course).decimal_comma)
        assets = selectors.course_asset_url(course)
        context["feedback_html"] = render_markdown(context["result"].feedback, asset_base=assets)
        context["solution_html"] = render_markdown(f["solution"], asset_base=assets)
    return render(request, "courses/partials/try_result.html", context)


@login_required
@require_POST
def preview(request: HttpRequest, slug: str) -> HttpResponse:
    course, _ = teaching_course(request, slug)
    field = request.POST.get("field", "")
    return HttpResponse(render_markdown(preview_source(field, request.POST.get(field, "")),
                                        asset_base=selectors.course_asset_url(course)))


@login_required
def review_queue(request: HttpRequest, slug: str) -> HttpResponse:
    course, role = teaching_course(request, slug)
    assets = selectors.course_asset_url(course)
    items = [(item, render_markdown(item.prompt, asset_base=assets)) for item in selectors.review_queue(course=course)]
    return render(request, "courses/review.html", {"course": course, "role": role, "items": items})


@login_required
@require_POST
def review_decide(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    course, _ = teaching_course(request, slug)
    item = get_object_or_404(Item, concept__course=course, pk=pk)
    try:
        item = services.item_review(item=item, user=request.user, status=request.POST.get("status", ""))
    except ContentError as exc:
        return HttpResponse(str(exc), status=400)
    if request.htmx:
        return render(request, "courses/partials/review_decided.html", {"course": course, "item": item})
    return redirect("teach:review", slug=course.slug)


@login_required
def history(request: HttpRequest, slug: str) -> HttpResponse:
    course, role = teaching_course(request, slug)
    return render(request, "courses/history.html",
                  {"course": course, "role": role, "versions": selectors.content_versions(course=course)})


@login_required
@require_POST
def version_revert(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    course, role = teaching_course(request, slug)
    version = get_object_or_404(ContentVersion, course=course, pk=pk)
    if version.kind != ContentVersion.Kind.ITEM and role != Membership.Role.FACULTY:
        raise PermissionDenied("Only faculty may revert changes to concepts and settings.")
    try:
        services.version_revert(version=version, user=request.user)
    except ContentError as exc:
        return render(request, "courses/history.html", {
            "course": course, "role": role, "versions": selectors.content_versions(course=course), "error": str(exc)},
            status=409)
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = reverse("teach:history", args=[course.slug])
    _saved(request, "Reverted: the change is undone, and the undo is in the history too.")
    return redirect(next_url)


@login_required
def export(request: HttpRequest, slug: str) -> HttpResponse:
    """The course folder (course.yaml + concepts/*.md, and its figures) as a zip, the same format `import_course`
    reads."""
    course, _ = teaching_course(request, slug, FACULTY)
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="tutor-export-") as tmp:
        root = Path(tmp) / course.slug
        dump_course(selectors.course_spec(course=course), root)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(root.rglob("*")):
                if file.is_file():
                    archive.write(file, f"{course.slug}/{file.relative_to(root).as_posix()}")
            for rel, file in selectors.course_asset_files(course=course):  # its figures, which the text links to
                if rel != "course.yaml" and not rel.startswith("concepts/"):
                    archive.write(file, f"{course.slug}/{rel}")
    response = HttpResponse(buffer.getvalue(), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{course.slug}.zip"'
    return response


def _may_import(request: HttpRequest) -> bool:
    """Staff, or faculty of some course: a TA may not bring in a course (or replace one by re-importing it)."""
    return request.user.is_staff or selectors.is_faculty_anywhere(user=request.user)


@login_required
def import_upload(request: HttpRequest) -> HttpResponse:
    if not _may_import(request):
        raise PermissionDenied("Only faculty may import courses.")
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            fmt = importing.format_for(upload.name)
            if upload.size > MAX_UPLOAD_BYTES:
                raise importing.ImportFailed(f"{upload.name}: larger than {MAX_UPLOAD_BYTES // 2**20} MiB")
        except importing.ImportFailed as exc:
            form.add_error("file", str(exc))
        else:
            job = services.import_job_create(user=request.user, filename=upload.name, data=upload.read(), format=fmt)
            return redirect("teach:import_job", pk=job.pk)
    return render(request, "courses/import.html", {"form": form})


@login_required
def import_job(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        job = selectors.import_job_get(pk=pk, user=request.user)
    except ImportJob.DoesNotExist:
        raise Http404("No such import") from None
    context = {"job": job, "running": job.status in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING),
               "summary": selectors.import_report_summary(job=job)}
    return _page(request, "courses/import_job.html", "courses/partials/import_progress.html", context)
