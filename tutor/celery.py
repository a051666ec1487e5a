"""The Celery app. Tasks are thin: each calls one service."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")

app = Celery("tutor")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()  # each installed app's tasks.py
app.autodiscover_tasks(["tutor.ta", "tutor.accounts", "tutor.learner"])  # packages inside the tutor app with a tasks.py of their own
