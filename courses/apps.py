from django.apps import AppConfig


class CoursesConfig(AppConfig):
    name = "courses"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Celery's autodiscovery only looks for `courses.tasks`; the import task lives beside it.
        from courses import import_tasks  # noqa: F401
