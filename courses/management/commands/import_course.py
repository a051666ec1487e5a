from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from courses.format import CourseFormatError
from courses.importers import IMPORTERS, detect_format, load_any
from courses.models import Item, Membership
from courses.services import course_import, membership_set
from courses.signals import course_imported


class Command(BaseCommand):
    help = ("Import (or update in place) a course: a course folder (course.yaml + concepts/*.md), an OATutor "
            "content source (folder or .tar.gz), a Moodle GIFT file, or a LaTeX quiz file written with moodle.sty "
            "(.tex). Nothing is imported if the input is malformed.")

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--format", choices=sorted(IMPORTERS), default=None,
                            help="input format (detected from the path when omitted)")
        parser.add_argument("--course-name", default=None, help="OATutor: import only problems of this courseName")
        parser.add_argument("--faculty", action="append", default=[], metavar="USERNAME",
                            help="make this existing user faculty of the course (repeatable), as an upload in the "
                                 "browser makes its uploader")

    def handle(self, *args, path: str, format: str | None, course_name: str | None, faculty: list[str],
               **options):
        settings.TUTOR_BACKGROUND_INLINE = True  # the jobs it starts (the TA index) finish before it exits
        users = get_user_model().objects.filter(username__in=faculty)
        unknown = sorted(set(faculty) - {u.get_username() for u in users})
        if unknown:
            raise CommandError(f"--faculty: no user named {', '.join(map(repr, unknown))}; nothing was imported")
        extra = {"course_name": course_name} if course_name else {}
        try:
            result = load_any(path, format=format, **extra)
        except CourseFormatError as exc:
            raise CommandError(str(exc)) from None
        except ValueError as exc:
            raise CommandError(f"{path}: {exc}") from None
        origin = Item.Origin.AUTHORED if (format or detect_format(path)) == "folder" else Item.Origin.IMPORTED
        course = course_import(spec=result.spec, origin=origin, assets=result.assets)
        for user in users:
            membership_set(user=user, course=course, role=Membership.Role.FACULTY)
        items = sum(len(c.items) for c in result.spec.concepts)
        self.stdout.write(f"Imported {course.slug!r}: {len(result.spec.concepts)} concepts, {items} items."
                          + (f" Faculty: {', '.join(u.get_username() for u in users)}." if users else ""))
        # Listeners (the TA-bot's search index) refresh what they derive from the course.
        course_imported.send(sender=self.__class__, course=course)
        if result.report:
            self.stdout.write(f"{len(result.skipped())} parts could not be used, "
                              f"{len(result.report) - len(result.skipped())} warnings:")
            for issue in result.report[:50]:
                self.stdout.write(f"  [{issue.severity}] {issue.path}: {issue.message}")
            if len(result.report) > 50:
                self.stdout.write(f"  ... and {len(result.report) - 50} more")
