from django.apps import AppConfig


class TutorConfig(AppConfig):
    name = "tutor"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tutor import ta_tasks  # noqa: F401  registers the TA reindex task with Celery
