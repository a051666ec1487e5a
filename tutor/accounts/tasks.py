"""Celery tasks for accounts and privacy. Thin: each calls one service."""

from __future__ import annotations

from celery import shared_task

from tutor.accounts import services


@shared_task(name="tutor.tasks.retention_purge_task")
def retention_purge_task() -> dict[str, int]:
    """Delete attempt logs and conversations past their retention period (run daily from Celery beat)."""
    return services.retention_purge()
