"""Faculty authoring under /teach/: roles, the prerequisite graph, versions and revert, review queue,
preview, try-it, settings, export and import."""

import io
import uuid
import zipfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from courses import selectors, services
from courses.format import load_course
from courses.importers import load_folder
from courses.models import Concept, ContentVersion, ImportJob, Item, Membership
from courses.versioning import PrerequisiteCycle
from tutor import services as tutor_services

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def celery_inline():
    """Run the import task in-process even when REDIS_URL points Celery at a broker (no worker in tests)."""
    from tutor.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def _login(client, user):
    client.force_login(user)
    return client


def _item_post(item: Item, **changes) -> dict:
    from courses.forms import ItemForm

    data = {k: ("" if v is None else v) for k, v in ItemForm.initial_for(item).items()}
    data.update(changes)
    return data


def _authoring_urls(course, concept, item, version_pk):
    s = course.slug
    return [
        reverse("teach:course", args=[s]), reverse("teach:edge_add", args=[s]),
        reverse("teach:edge_remove", args=[s]), reverse("teach:settings", args=[s]),
        reverse("teach:concept_new", args=[s]), reverse("teach:concept", args=[s, concept.slug]),
        reverse("teach:concept_delete", args=[s, concept.slug]), reverse("teach:item_new", args=[s, concept.slug]),
        reverse("teach:item", args=[s, item.pk]), reverse("teach:item_delete", args=[s, item.pk]),
        reverse("teach:try", args=[s]), reverse("teach:preview", args=[s]), reverse("teach:review", args=[s]),
        reverse("teach:review_decide", args=[s, item.pk]), reverse("teach:history", args=[s]),
        reverse("teach:revert", args=[s, version_pk]), reverse("teach:export", args=[s]),
        reverse("dashboard", args=[s]), reverse("dashboard_csv", args=[s]),
    ]


def test_a_prerequisite_that_closes_a_cycle_is_rejected_with_the_cycle_named(client, prof, course):
    _login(client, prof)
    response = client.post(reverse("teach:edge_add", args=[course.slug]), {"concept": "a", "prerequisite": "c"},
                           HTTP_HX_REQUEST="true")
    text = response.content.decode()
    assert 'id="graph-error"' in text
    assert "a → c → b → a" in text or "c → b → a → c" in text or "b → a → c → b" in text
    assert not course.concepts.get(slug="a").prerequisites.exists()
    with pytest.raises(PrerequisiteCycle) as exc:
        services.concept_update(concept=course.concepts.get(slug="a"), user=prof, fields={}, prerequisites=["c"])
    assert exc.value.cycle[0] == exc.value.cycle[-1] and set(exc.value.cycle) == {"a", "b", "c"}


def test_an_acyclic_prerequisite_is_drawn_in_the_graph(client, prof, course):
    _login(client, prof)
    client.post(reverse("teach:edge_add", args=[course.slug]), {"concept": "c", "prerequisite": "a"})
    page = client.get(reverse("teach:course", args=[course.slug])).content.decode()
    assert 'data-edge="a->c"' in page and 'data-edge="a->b"' in page
    assert ContentVersion.objects.filter(kind="concept", label="concept c", action="update").count() == 1


def test_a_student_gets_403_on_every_authoring_url(client, alice, prof, course):
    tutor_services.enrollment_create(user=alice, course=course)
    concept = course.concepts.get(slug="a")
    item = concept.items.first()
    version = services.item_update(item=item, user=prof, fields={"prompt": "changed"})
    _login(client, alice)
    for url in _authoring_urls(course, concept, item, ContentVersion.objects.get(object_id=version.pk).pk):
        assert client.get(url).status_code in (403, 405), url
        assert client.post(url, {}).status_code == 403, url
    assert client.get(reverse("teach:import")).status_code == 403


def test_faculty_of_one_course_cannot_edit_another(client, prof, course, other_course):
    concept = other_course.concepts.get(slug="a")
    item = concept.items.first()
    _login(client, prof)
    assert client.get(reverse("teach:course", args=[course.slug])).status_code == 200
    assert client.post(reverse("teach:item", args=[other_course.slug, item.pk]),
                       _item_post(item, prompt="hijacked")).status_code == 403
    assert client.post(reverse("teach:settings", args=[other_course.slug]), {"title": "x"}).status_code == 403
    assert client.get(reverse("teach:concept", args=[other_course.slug, "a"])).status_code == 403
    # an item of course B reached through course A's URL is not found
    assert client.get(reverse("teach:item", args=[course.slug, item.pk])).status_code == 404
    item.refresh_from_db()
    assert item.prompt != "hijacked"


def test_a_ta_edits_items_but_not_settings_or_concepts(client, bob, course):
    services.membership_set(user=bob, course=course, role=Membership.Role.TA)
    item = course.concepts.get(slug="a").items.get(slug="algebra-a-num")
    _login(client, bob)
    response = client.post(reverse("teach:item", args=[course.slug, item.pk]), _item_post(item, prompt="What is $3+1$?"))
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.prompt == "What is $3+1$?"
    assert client.get(reverse("teach:settings", args=[course.slug])).status_code == 403
    assert client.post(reverse("teach:concept", args=[course.slug, "a"]), {"slug": "a", "title": "x"}).status_code == 403
    assert client.get(reverse("teach:concept_new", args=[course.slug])).status_code == 403
    assert client.get(reverse("teach:export", args=[course.slug])).status_code == 403
    assert client.get(reverse("teach:review", args=[course.slug])).status_code == 200


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def test_a_figure_missing_from_an_imported_source_is_uploaded_into_its_place(client, prof, course, settings,
                                                                          tmp_path):
    # Imported Intro Stats: six questions wait in the review queue "Its figure (figure1.gif) is missing from the
    # source: add it to the question, then publish", and the item page had no way to add one.
    settings.MEDIA_ROOT = tmp_path
    item = course.concepts.get(slug="a").items.get(slug="algebra-a-num")
    item.prompt = "The results are listed in the table. *(figure figure1.gif is missing from the source)* Find the median."
    item.save()
    _login(client, prof)
    upload = SimpleUploadedFile("Sleep Table.PNG", PNG, content_type="image/png")
    response = client.post(reverse("teach:item", args=[course.slug, item.pk]), {**_item_post(item), "figure": upload})
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.prompt == ("The results are listed in the table. ![sleep-table.png](figures/algebra-a-num/sleep-table.png) "
                           "Find the median.")
    assert (tmp_path / "courses" / course.slug / "figures" / "algebra-a-num" / "sleep-table.png").read_bytes() == PNG
    page = client.get(reverse("teach:item", args=[course.slug, item.pk])).content.decode()
    assert f'src="/media/courses/{course.slug}/figures/algebra-a-num/sleep-table.png"' in page  # the preview shows it

    # with no missing figure in the question, a new one goes after the text
    client.post(reverse("teach:item", args=[course.slug, item.pk]),
                {**_item_post(item), "figure": SimpleUploadedFile("b.gif", b"GIF89a" + b"\x00" * 8)})
    item.refresh_from_db()
    assert item.prompt.endswith("Find the median.\n\n![b.gif](figures/algebra-a-num/b.gif)")


@pytest.mark.parametrize(("name", "data", "says"), [
    ("table.svg", b"<svg onload='alert(1)'/>", "PNG, GIF, JPEG or WebP"),
    ("table.png", b"GIF89a not a png", "is not a PNG image"),
    ("table.jpg", b"\xff\xd8\xff" + b"\x00" * (2 * 2**20), "a figure may be at most 2 MB"),
])
def test_a_figure_that_is_not_the_image_it_says_is_refused_and_nothing_is_saved(client, prof, course, settings,
                                                                             tmp_path, name, data, says):
    settings.MEDIA_ROOT = tmp_path
    item = course.concepts.get(slug="a").items.get(slug="algebra-a-num")
    before = item.prompt
    _login(client, prof)
    response = client.post(reverse("teach:item", args=[course.slug, item.pk]),
                           {**_item_post(item, prompt="Changed."), "figure": SimpleUploadedFile(name, data)})
    assert response.status_code == 200 and says in response.content.decode()
    item.refresh_from_db()
    assert item.prompt == before and not (tmp_path / "courses").exists()


def test_an_edit_creates_a_version_and_revert_restores_it(client, prof, course):
    item = course.concepts.get(slug="a").items.get(slug="algebra-a-num")
    _login(client, prof)
    client.post(reverse("teach:item", args=[course.slug, item.pk]), _item_post(item, prompt="New prompt", answer="5"))
    item.refresh_from_db()
    assert (item.prompt, item.answer) == ("New prompt", 5)
    edit = ContentVersion.objects.get(kind="item", object_id=item.pk)
    assert edit.user == prof and edit.action == "update"
    assert edit.before["prompt"] == "What is $2 + 2$?" and edit.after["prompt"] == "New prompt"
    assert set(edit.changed_fields()) == {"prompt", "answer"}

    response = client.post(reverse("teach:revert", args=[course.slug, edit.pk]))
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.prompt, item.answer) == ("What is $2 + 2$?", 4)
    revert = ContentVersion.objects.filter(kind="item", object_id=item.pk).first()
    assert revert.action == "revert" and revert.reverts == edit and revert.after["prompt"] == "What is $2 + 2$?"
    # the revert is itself revertible: undo the undo
    services.version_revert(version=revert, user=prof)
    item.refresh_from_db()
    assert item.prompt == "New prompt"


def test_a_deleted_concept_comes_back_with_its_prerequisites_on_revert(prof, course):
    c = course.concepts.get(slug="c")
    services.concept_delete(concept=c, user=prof)
    assert not course.concepts.filter(slug="c").exists()
    deletion = ContentVersion.objects.get(kind="concept", action="delete")
    services.version_revert(version=deletion, user=prof)
    restored = course.concepts.get(slug="c")
    assert list(restored.prerequisites.values_list("slug", flat=True)) == ["b"]
    for v in ContentVersion.objects.filter(kind="item", action="delete"):
        services.version_revert(version=v, user=prof)
    assert restored.items.count() == 3


def test_faculty_create_a_concept_with_a_prerequisite_and_an_item(client, prof, course):
    _login(client, prof)
    response = client.post(reverse("teach:concept_new", args=[course.slug]), {
        "slug": "d", "title": "Concept D", "prerequisites": ["c"], "lesson": "Lesson $x$", "pain_first": "",
        "guess_first": "", "guess_choices": "", "explanation": "Why."})
    assert response.status_code == 302
    d = Concept.objects.get(course=course, slug="d")
    assert list(d.prerequisites.values_list("slug", flat=True)) == ["c"]
    response = client.post(reverse("teach:item_new", args=[course.slug, "d"]), {
        "slug": "d-1", "kind": "multiple_choice", "prompt": "Pick 2.", "answer": "2", "choices": "1\n2\n3",
        "status": "published", "hints": "It is even.", "feedback": "1 => Off by one."})
    assert response.status_code == 302, response.content.decode()
    item = d.items.get()
    assert (item.choices, item.hints, item.feedback) == (["1", "2", "3"], ["It is even."], {"1": "Off by one."})
    assert item.origin == "authored" and item.status == "published"
    assert ContentVersion.objects.filter(action="create").count() == 2


def _concept_post(concept: Concept, **changes) -> dict:
    from courses.forms import ConceptForm

    data = {k: v for k, v in ConceptForm(course=concept.course, concept=concept).initial.items() if v is not None}
    return {**data, **changes}


def test_faculty_save_the_right_guess_and_it_exports(client, prof, course):
    a = course.concepts.get(slug="a")
    _login(client, prof)
    response = client.post(reverse("teach:concept", args=[course.slug, "a"]),
                           _concept_post(a, guess_choices="yes\nno", guess_answer="no"))
    assert response.status_code == 302, response.content.decode()
    a.refresh_from_db()
    assert a.guess_answer == "no"
    assert ContentVersion.objects.get(kind="concept", object_id=a.pk).after["guess_answer"] == "no"
    page = client.get(reverse("teach:concept", args=[course.slug, "a"])).content.decode()
    assert 'name="guess_answer"' in page and 'value="no"' in page
    assert selectors.course_spec(course=course).concepts[0].guess_answer == "no"


def test_saving_a_concept_from_the_browser_changes_only_what_the_author_changed(client, prof, course):
    a = course.concepts.get(slug="a")
    Concept.objects.filter(pk=a.pk).update(lesson="First paragraph.\n\nSecond paragraph.", prerequisites_inferred=True)
    a.refresh_from_db()
    post = _concept_post(a, key_ideas="One idea.\r\nAnother idea.\r\nA third idea.")
    post["lesson"] = post["lesson"].replace("\n", "\r\n")  # as a browser sends every textarea
    _login(client, prof)
    response = client.post(reverse("teach:concept", args=[course.slug, "a"]), post)
    assert response.status_code == 302, response.content.decode()
    a.refresh_from_db()
    assert a.lesson == "First paragraph.\n\nSecond paragraph."
    assert a.key_ideas == ["One idea.", "Another idea.", "A third idea."]
    assert a.prerequisites_inferred  # the arrows were not touched: still the importer's guess, still to confirm
    version = ContentVersion.objects.get(kind="concept", object_id=a.pk)
    assert {k for k in version.after if version.after[k] != version.before[k]} == {"key_ideas"}


def test_changing_an_inferred_concepts_prerequisites_makes_them_the_authors(client, prof, course):
    b = course.concepts.get(slug="b")
    Concept.objects.filter(pk=b.pk).update(prerequisites_inferred=True)
    b.refresh_from_db()
    _login(client, prof)
    client.post(reverse("teach:concept", args=[course.slug, "b"]), _concept_post(b, prerequisites=[]))
    b.refresh_from_db()
    assert list(b.prerequisites.all()) == [] and not b.prerequisites_inferred


def test_a_right_guess_that_is_not_a_choice_is_refused(client, prof, course):
    a = course.concepts.get(slug="a")
    _login(client, prof)
    response = client.post(reverse("teach:concept", args=[course.slug, "a"]),
                           _concept_post(a, guess_choices="yes\nno", guess_answer="maybe"))
    assert response.status_code == 200
    assert "must be one of the guess choices" in response.content.decode()
    a.refresh_from_db()
    assert a.guess_answer == ""


def test_a_concept_version_recorded_before_the_right_guess_existed_still_reverts(prof, course):
    a = course.concepts.get(slug="a")
    services.concept_update(concept=a, user=prof, fields={"title": "Renamed", "guess_answer": "yes"})
    edit = ContentVersion.objects.get(kind="concept", object_id=a.pk)
    del edit.before["guess_answer"]  # as versions written before the field was added hold it
    edit.save(update_fields=["before"])
    services.version_revert(version=edit, user=prof)
    a.refresh_from_db()
    assert (a.title, a.guess_answer) == ("Concept A", "")


def test_an_item_is_validated_like_the_folder_format(client, prof, course):
    _login(client, prof)
    response = client.post(reverse("teach:item_new", args=[course.slug, "a"]), {
        "slug": "bad", "kind": "multiple_choice", "prompt": "?", "answer": "4", "choices": "1\n2", "status": "published"})
    assert response.status_code == 200
    assert "must be one of the choices" in response.content.decode()
    response = client.post(reverse("teach:item_new", args=[course.slug, "a"]), {
        "slug": "algebra-b-num", "kind": "numeric", "prompt": "?", "answer": "4", "status": "published"})
    assert "already exists in this course" in response.content.decode()


def test_review_queue_items_never_reach_the_students_session(client, alice, prof, course):
    a = course.concepts.get(slug="a")
    for item in a.items.exclude(slug="algebra-a-sym"):
        services.item_review(item=item, user=prof, status=Item.Status.REVIEW)
    tutor_services.enrollment_create(user=alice, course=course)
    tutor_services.guess_record(user=alice, course=course, client_id=uuid.uuid4(), text="yes")
    served = set()
    for _ in range(4):
        session = tutor_services.practice_start(user=alice, course=course)
        served.add(session.item.slug)
        tutor_services.attempt_record(user=alice, course=course, client_id=uuid.uuid4(), item_id=session.item_id,
                                      answer="0")
        session = tutor_services.session_advance(user=alice, course=course)
    assert served == {"algebra-a-sym"}

    _login(client, prof)
    page = client.get(reverse("teach:review", args=[course.slug])).content.decode()
    assert "algebra-a-num" in page and "algebra-a-mc" in page and "algebra-a-sym" not in page
    num = a.items.get(slug="algebra-a-num")
    response = client.post(reverse("teach:review_decide", args=[course.slug, num.pk]), {"status": "published"},
                           HTTP_HX_REQUEST="true")
    assert "approved" in response.content.decode()
    assert list(selectors.review_queue(course=course).values_list("slug", flat=True)) == ["algebra-a-mc"]


def test_markdown_preview_renders_math_and_drops_scripts(client, prof, course):
    _login(client, prof)
    response = client.post(reverse("teach:preview", args=[course.slug]),
                           {"field": "lesson", "lesson": "**Bold** $x^2$ <script>alert(1)</script>"})
    html = response.content.decode()
    assert "<strong>Bold</strong>" in html and 'class="math inline"' in html and "<script>" not in html


def test_try_it_as_a_student_grades_with_the_tutors_checker(client, prof, course):
    item = course.concepts.get(slug="a").items.get(slug="algebra-a-sym")
    _login(client, prof)
    url = reverse("teach:try", args=[course.slug])
    right = client.post(url, {**_item_post(item), "student_answer": "3x^2"}).content.decode()
    assert 'data-correct="1"' in right
    wrong = client.post(url, {**_item_post(item), "student_answer": "x^2"}).content.decode()
    assert 'data-correct="0"' in wrong and "Keep the coefficient 3." in wrong
    # the unsaved form is what is tried: change the key without saving
    edited = client.post(url, {**_item_post(item, answer="x**2"), "student_answer": "x^2"}).content.decode()
    assert 'data-correct="1"' in edited
    unreadable = client.post(url, {**_item_post(item), "student_answer": "3x^^"}).content.decode()
    assert "Can't read that" in unreadable


def test_settings_form_updates_the_course_and_records_a_version(client, prof, course):
    _login(client, prof)
    response = client.post(reverse("teach:settings", args=[course.slug]), {
        "title": "Algebra", "description": "d", "target_low": "0.6", "target_high": "0.8",
        "mastery_threshold": "0.9", "review_retention": "0.8", "auto_publish_verified": "on",
        "placement_questions": "0"})
    assert response.status_code == 302
    course.refresh_from_db()
    assert course.settings["target_band"] == [0.6, 0.8] and course.settings["auto_publish_verified"] is True
    assert course.title == "Algebra"
    bad = client.post(reverse("teach:settings", args=[course.slug]), {
        "title": "Algebra", "target_low": "0.8", "target_high": "0.7", "mastery_threshold": "0.9",
        "review_retention": "0.8"})
    assert bad.status_code == 200 and "above the lowest" in bad.content.decode()
    version = ContentVersion.objects.get(kind="course")
    services.version_revert(version=version, user=prof)
    course.refresh_from_db()
    assert course.title == "Test algebra" and course.settings["target_band"] == [0.70, 0.85]


def _export(client, course) -> bytes:
    response = client.get(reverse("teach:export", args=[course.slug]))
    assert response["Content-Type"] == "application/zip"
    return response.content


def test_export_is_a_course_folder_that_loads_back(client, prof, course, tmp_path):
    services.item_review(item=Item.objects.get(slug="algebra-c-mc"), user=prof, status=Item.Status.REVIEW)
    _login(client, prof)
    zipfile.ZipFile(io.BytesIO(_export(client, course))).extractall(tmp_path)
    spec = load_course(tmp_path / course.slug)
    assert [c.slug for c in spec.concepts] == ["a", "b", "c"]
    assert spec.concepts[1].prerequisites == ["a"]
    assert [(i.id, i.extra) for i in spec.concepts[2].items] == [
        ("algebra-c-num", {}), ("algebra-c-mc", {"status": "review"}), ("algebra-c-sym", {})]
    assert spec.concepts[0].items[2].feedback == {"x**2": "Keep the coefficient 3."}


def test_reimporting_an_exported_zip_updates_the_course_in_place(client, prof, course,
                                                                 django_capture_on_commit_callbacks):
    _login(client, prof)
    services.item_review(item=Item.objects.get(slug="algebra-c-mc"), user=prof, status=Item.Status.REVIEW)
    data = _export(client, course)
    services.item_review(item=Item.objects.get(slug="algebra-c-mc"), user=prof, status=Item.Status.PUBLISHED)
    item = Item.objects.get(slug="algebra-a-num")
    services.item_update(item=item, user=prof, fields={"prompt": "Edited here"})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("teach:import"), {"file": _upload("algebra.zip", data)})
    job = ImportJob.objects.get()
    assert response.url == reverse("teach:import_job", args=[job.pk])
    page = client.get(response.url).content.decode()
    job.refresh_from_db()
    assert job.status == "done"
    assert "Updated Test algebra: 3 concepts, 8 items; 1 more wait in the review queue" in page
    assert 'hx-trigger="every 1s"' not in page  # finished: the page stops polling
    assert Item.objects.get(pk=item.pk).prompt == "What is $2 + 2$?"  # same row, updated
    assert Concept.objects.filter(course=course).count() == 3
    waiting = Item.objects.get(slug="algebra-c-mc")  # the exported status comes back, and leaves no trace
    assert waiting.status == Item.Status.REVIEW and "status" not in waiting.extra


def _upload(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)


def test_an_export_carries_the_courses_figures_and_they_import_back(client, prof, course, settings, tmp_path):
    # An imported OATutor course exported as a zip lost every figure its questions link to.
    settings.MEDIA_ROOT = tmp_path / "media"
    item = course.concepts.get(slug="a").items.get(slug="algebra-a-num")
    _login(client, prof)
    client.post(reverse("teach:item", args=[course.slug, item.pk]),
                {**_item_post(item), "figure": SimpleUploadedFile("t.png", PNG)})
    with zipfile.ZipFile(io.BytesIO(_export(client, course))) as archive:
        assert archive.read(f"{course.slug}/figures/algebra-a-num/t.png") == PNG
        archive.extractall(tmp_path / "out")
    loaded = load_folder(tmp_path / "out" / course.slug)
    assert loaded.assets == {"figures/algebra-a-num/t.png": PNG}
    assert "![t.png](figures/algebra-a-num/t.png)" in next(
        i.prompt for c in loaded.spec.concepts for i in c.items if i.id == "algebra-a-num")


def test_a_malformed_upload_names_file_and_line_and_imports_nothing(client, prof, course,
                                                                   django_capture_on_commit_callbacks):
    _login(client, prof)
    data = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(_export(client, course))) as src, zipfile.ZipFile(data, "w") as dst:
        for name in src.namelist():
            text = src.read(name).decode()
            if name.endswith("concepts/b.md"):
                text = text.replace("kind: multiple_choice", "kind: essay")
            if name.endswith("course.yaml"):
                text = text.replace("title: Test algebra", "title: Renamed")
            dst.writestr(name, text)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("teach:import"), {"file": _upload("algebra.zip", data.getvalue())})
    page = client.get(response.url).content.decode()
    job = ImportJob.objects.get()
    assert job.status == "failed"
    assert job.error.startswith("algebra/concepts/b.md:") and "unknown item kind 'essay'" in job.error
    assert int(job.error.split(":")[1]) > 1  # a line number
    assert "Import failed; nothing was changed" in page and 'id="import-error"' in page
    course.refresh_from_db()
    assert course.title == "Test algebra"


def test_importing_a_new_course_makes_the_uploader_its_faculty(client, prof, course,
                                                              django_capture_on_commit_callbacks):
    _login(client, prof)
    data = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(_export(client, course))) as src, zipfile.ZipFile(data, "w") as dst:
        for name in src.namelist():
            dst.writestr(name.replace("algebra/", "copy/"),
                         src.read(name).decode().replace("algebra-", "copy-")
                         .replace("slug: algebra", "slug: algebra-copy"))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("teach:import"), {"file": _upload("copy.zip", data.getvalue())})
    job = ImportJob.objects.get()
    assert job.status == "done", job.error
    assert selectors.membership_role(user=prof, course=job.course) == "faculty"
    assert job.course.slug == "algebra-copy"


def test_an_unknown_kind_of_file_is_refused_on_upload(client, prof, course):
    _login(client, prof)
    response = client.post(reverse("teach:import"), {"file": _upload("notes.docx", b"x")})
    assert response.status_code == 200 and "unknown kind of file" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_a_gift_upload_is_imported_as_a_new_course_with_the_importers_notes(client, prof, course,
                                                                             django_capture_on_commit_callbacks):
    sample = Path(__file__).parent / "data" / "sample.gift"
    _login(client, prof)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("teach:import"), {"file": _upload("calc-quiz.gift", sample.read_bytes())})
    job = ImportJob.objects.get()
    assert job.status == "done", job.error
    assert job.course.slug == "calc-quiz" and job.course.concepts.exists()
    assert set(Item.objects.filter(concept__course=job.course).values_list("origin", flat=True)) == {"imported"}
    page = client.get(reverse("teach:import_job", args=[job.pk])).content.decode()
    assert f"Created {job.course.title}" in page


def test_the_import_page_polls_while_the_job_runs(client, prof, course):
    job = ImportJob.objects.create(user=prof, filename="x.zip", format="folder", data=b"", status="running",
                                   progress=50, message="Read 3 concepts and 9 items; importing")
    _login(client, prof)
    fragment = client.get(reverse("teach:import_job", args=[job.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in fragment and 'aria-valuenow="50"' in fragment
    assert "<html" not in fragment  # htmx gets the fragment only
    other = ImportJob.objects.create(user=course.memberships.get().user, filename="y.zip", format="folder", data=b"")
    client.force_login(get_user_model().objects.create_user("mallory", password="pw-mallory-123"))
    assert client.get(reverse("teach:import_job", args=[other.pk])).status_code == 404


def test_a_template_item_is_verified_and_tried_on_a_drawn_variant(client, prof, course):
    _login(client, prof)
    template = {"slug": "power-t", "kind": "template", "prompt": "Differentiate $x^{n}$.", "answer": "n*x**(n-1)",
                "variables": "x", "params": "n: 2, 6", "status": "published"}
    broken = client.post(reverse("teach:item_new", args=[course.slug, "a"]), {**template, "params": ""})
    assert "needs at least one parameter" in broken.content.decode()
    response = client.post(reverse("teach:item_new", args=[course.slug, "a"]), template)
    assert response.status_code == 302
    item = Item.objects.get(slug="power-t")
    page = client.get(reverse("teach:item", args=[course.slug, item.pk]) + "?seed=3").content.decode()
    from courses.item_templates import instantiate

    variant = instantiate(selectors.item_spec(item=item), 3)
    assert f"Differentiate $x^{variant.values['n']}$." not in page  # rendered, not raw
    assert f"n = {variant.values['n']}" in page
    url = reverse("teach:try", args=[course.slug])
    right = client.post(url, {**_item_post(item), "seed": "3", "student_answer": variant.answer}).content.decode()
    assert 'data-correct="1"' in right and variant.answer in right
    generic = client.post(url, {**_item_post(item), "seed": "3", "student_answer": "n*x**(n-1)"}).content.decode()
    assert "Can't read that" in generic or 'data-correct="0"' in generic  # the variant's numbers, not the letters


def test_content_students_have_answered_is_rejected_not_deleted(client, alice, prof, course):
    tutor_services.enrollment_create(user=alice, course=course)
    tutor_services.guess_record(user=alice, course=course, client_id=uuid.uuid4(), text="yes")
    session = tutor_services.practice_start(user=alice, course=course)
    tutor_services.attempt_record(user=alice, course=course, client_id=uuid.uuid4(), item_id=session.item_id,
                                  answer="4")
    _login(client, prof)
    response = client.post(reverse("teach:item_delete", args=[course.slug, session.item_id]))
    assert response.status_code == 409 and "Reject it instead" in response.content.decode()
    assert Item.objects.filter(pk=session.item_id).exists()
    response = client.post(reverse("teach:concept_delete", args=[course.slug, "a"]))
    assert response.status_code == 409 and course.concepts.filter(slug="a").exists()
    # content nobody has answered goes, and can come back
    unanswered = Item.objects.get(slug="algebra-c-num")
    assert client.post(reverse("teach:item_delete", args=[course.slug, unanswered.pk])).status_code == 302
    assert not Item.objects.filter(slug="algebra-c-num").exists()


def test_generating_items_without_a_model_says_what_is_missing(client, prof, course, settings):
    settings.TUTOR_LLM = "authored"
    _login(client, prof)
    url = reverse("teach:concept_generation", args=[course.slug, "a"])
    response = client.post(url, {"n": "3"}, HTTP_HX_REQUEST="true").content.decode()
    assert "needs a language model" in response and "<html" not in response
    assert "item_generation" not in course.concepts.get(slug="a").extra


def test_generation_progress_is_polled_until_done(client, prof, bob, course):
    a = course.concepts.get(slug="a")
    a.extra = {"item_generation": {"percent": 40, "message": "Call 1: 2 of 5 items stored"}}
    a.save(update_fields=["extra"])
    _login(client, prof)
    url = reverse("teach:concept_generation", args=[course.slug, "a"])
    running = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in running and "2 of 5 items stored" in running
    # an author saving the concept meanwhile does not wipe the job's progress
    services.concept_update(concept=a, user=prof, fields={"title": "Renamed A"})
    a.refresh_from_db()
    assert a.extra["item_generation"]["percent"] == 40
    a.extra = {"item_generation": {"percent": 100, "message": "Done: 0 published, 3 for review, 1 rejected"}}
    a.save(update_fields=["extra"])
    done = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' not in done and "3 for review" in done
    services.membership_set(user=bob, course=course, role=Membership.Role.TA)
    client.force_login(bob)
    assert client.post(url, {"n": "3"}).status_code == 403


def oatutor_tarball(second_step: dict | None = None) -> bytes:
    """A one-problem OATutor source: a numeric step, and a second step (by default an essay, which the importer
    reports and skips)."""
    import json
    import tarfile

    step = {"problemType": "TextBox", "answerType": "arithmetic", "stepAnswer": ["$$4$$"]}
    essay = second_step or {"problemType": "TextBox", "answerType": "short-essay", "stepAnswer": [""]}
    files = {
        "src/coursePlans.json": [{"courseName": "Tiny OER", "lessons": [
            {"id": "L1", "name": "Lesson 1", "topics": "Adding", "learningObjectives": {"adding": 0.9}}]}],
        "src/skillModel.json": {"p1a": ["adding"], "p1b": ["adding"]},
        "src/defaultBKTParams.json": {"adding": {"probMastery": 0.2, "probTransit": 0.1, "probSlip": 0.1,
                                                 "probGuess": 0.25}},
        "src/content-pool/p1/p1.json": {"id": "p1", "title": "Two and two", "body": "Add.", "courseName": "Tiny OER",
                                        "lessonId": "L1", "variabilization": {}},
        "src/content-pool/p1/steps/p1a/p1a.json": {"id": "p1a", "stepTitle": "2 + 2?", "stepBody": "",
                                                   "variabilization": {}, **step},
        "src/content-pool/p1/steps/p1a/tutoring/p1aDefaultPathway.json": [],
        "src/content-pool/p1/steps/p1b/p1b.json": {"id": "p1b", "stepTitle": "Why?", "stepBody": "",
                                                   "variabilization": {}, **essay},
        "src/content-pool/p1/steps/p1b/tutoring/p1bDefaultPathway.json": [],
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            data = json.dumps(content).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_an_oatutor_archive_is_imported_with_its_report_in_the_page(client, prof, course,
                                                                    django_capture_on_commit_callbacks):
    _login(client, prof)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("teach:import"), {"file": _upload("tiny.tar.gz", oatutor_tarball())})
    job = ImportJob.objects.get()
    assert job.status == "done", job.error
    items = Item.objects.filter(concept__course=job.course)
    assert list(items.values_list("kind", "answer")) == [("numeric", 4)]
    assert any("short-essay" in r["message"] or "essay" in r["message"] for r in job.report)
    assert not any("tutor-import-" in r["path"] for r in job.report)  # paths as inside the upload
    page = client.get(response.url).content.decode()
    assert "note" in page and "p1b" in page


def test_editing_an_item_keeps_hints_that_span_several_lines(client, prof, course):
    item = Item.objects.get(slug="algebra-a-num")
    services.item_update(item=item, user=prof, fields={"hints": ["**Think**\n\nAdd the ones.", "Count: 2, 3, 4."]})
    _login(client, prof)
    client.post(reverse("teach:item", args=[course.slug, item.pk]), _item_post(item, prompt="What is $2+2$?"))
    item.refresh_from_db()
    assert item.prompt == "What is $2+2$?"
    assert item.hints == ["**Think**\n\nAdd the ones.", "Count: 2, 3, 4."]


def test_faculty_confirm_an_inferred_graph_in_one_step(client, prof, course):
    course.concepts.exclude(slug="a").update(prerequisites_inferred=True)
    _login(client, prof)
    page = client.get(reverse("teach:course", args=[course.slug])).content.decode()
    assert "guessed the prerequisites of 2 concepts" in page
    client.post(reverse("teach:graph_confirm", args=[course.slug]))
    assert not course.concepts.filter(prerequisites_inferred=True).exists()
    assert ContentVersion.objects.filter(kind="concept", action="update").count() == 2
    assert "guessed the prerequisites" not in client.get(reverse("teach:course", args=[course.slug])).content.decode()
