from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from courses import selectors as course_selectors
from courses.background import jobs_running, jobs_wait
from courses.format import CourseFormatError
from courses.importers import load_any
from courses.models import Course, Item
from courses.services import course_import
from tutor import llm
from tutor.smoke import course_smoke


class Command(BaseCommand):
    help = ("Walk a course as simulated students do in a browser (enrol, placement, every concept's loop, the "
            "map, the TA-bot) and report what broke. COURSE is a course slug, or a course file to import first.")

    def add_arguments(self, parser):
        parser.add_argument("course")
        parser.add_argument("--concepts", type=int, default=None,
                            help="stop after this many concepts (default: the whole course)")
        parser.add_argument("--max-items", type=int, default=60, help="questions per concept before giving up")
        parser.add_argument("--no-ta", action="store_true", help="do not ask the TA-bot")

    def handle(self, *args, course: str, concepts: int | None, max_items: int, no_ta: bool, **options):
        target = course_selectors.course_find(slug=course) or self._import(course)
        settings.TUTOR_STREAM_DELAY_S = 0.0  # authored text streams as fast as the socket takes it
        settings.TUTOR_RATELIMIT_ANSWERS = 0  # a simulated student answers faster than the per-minute limit allows
        llm.authored_backend.cache_clear()
        llm.backend.cache_clear()
        try:
            report = course_smoke(course=target, max_concepts=concepts, max_items=max_items, ask_ta=not no_ta)
        finally:
            # An import's follow-on jobs (the TA index) run on threads of this process beside the walk, as they
            # would on a worker; the process must not end under them (it aborted, exit status 134), however long
            # they take: College Algebra's index outlasted a five-minute wait on a busy 2-core machine.
            if running := jobs_running():
                self.stderr.write(f"waiting for {', '.join(running)} to finish")
            jobs_wait(timeout=None)
        for line in report.lines():
            self.stdout.write(line)
        if report.errors or report.unanswerable:
            raise CommandError(f"{len(report.errors)} errors, {len(report.unanswerable)} unanswerable keys")

    def _import(self, path: str) -> Course:
        try:
            result = load_any(path)
        except CourseFormatError as exc:
            raise CommandError(str(exc)) from None
        except (ValueError, FileNotFoundError) as exc:
            raise CommandError(f"{path} is neither a course slug nor a course file: {exc}") from None
        return course_import(spec=result.spec, origin=Item.Origin.IMPORTED, assets=result.assets)
