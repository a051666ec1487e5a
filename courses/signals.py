"""Signals the curriculum sends; other apps (the tutor's TA index) listen without `courses` knowing them."""

from django.dispatch import Signal

# Sent after a course import has committed, with `course`. The TA-bot indexes the new texts.
course_imported = Signal()
