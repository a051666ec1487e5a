"""The tutor project: settings, ASGI and Celery apps, and the student session (views, consumers, services)."""

from tutor.celery import app as celery_app

__all__ = ["celery_app"]
