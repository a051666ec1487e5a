"""Celery task for course imports. Registered from `CoursesConfig.ready`, so the worker knows it."""

from __future__ import annotations

from celery import shared_task

from courses import services


@shared_task(name="courses.import_job_run")
def import_job_run_task(job_id: int) -> int:
    return services.import_job_run(job_id=job_id).pk
