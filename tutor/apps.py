from django.apps import AppConfig


class TutorConfig(AppConfig):
    name = "tutor"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tutor.ta import signals as ta_signals

        ta_signals.connect()
        from tutor import caches

        caches.signals_connect()
