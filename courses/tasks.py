"""Celery tasks for the curriculum (found by Celery's autodiscovery). Thin: arguments in, one service called."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from celery import shared_task

from courses import generation, services
from inference import BackendUnavailable


@shared_task(name="courses.item_generate_batch", acks_late=True, autoretry_for=(BackendUnavailable,),
             retry_backoff=30, retry_backoff_max=600, max_retries=5)
def item_generate_batch_task(concept_id: int, n: int, seed: int | None = None) -> dict[str, Any]:
    """Generate, verify and store `n` items; a model server that is down is retried with backoff."""
    return asdict(generation.item_generate_batch(concept_id=concept_id, n=n, seed=seed))


@shared_task(name="courses.import_job_run")
def import_job_run_task(job_id: int) -> int:
    """Parse and import one uploaded course; progress and the importer's report go on the job's row."""
    return services.import_job_run(job_id=job_id).pk
