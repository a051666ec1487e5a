from django.core.management.base import BaseCommand, CommandError

from courses.format import CourseFormatError, load_course
from courses.services import course_import


class Command(BaseCommand):
    help = "Import (or update in place) a course folder: course.yaml + concepts/*.md."

    def add_arguments(self, parser):
        parser.add_argument("path")

    def handle(self, *args, path: str, **options):
        try:
            spec = load_course(path)
        except CourseFormatError as exc:
            raise CommandError(str(exc)) from None
        course = course_import(spec=spec)
        items = sum(len(c.items) for c in spec.concepts)
        self.stdout.write(f"Imported {course.slug!r}: {len(spec.concepts)} concepts, {items} items.")
