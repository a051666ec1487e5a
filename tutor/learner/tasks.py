"""Celery tasks for the learner model in use. Thin: each calls one service."""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(bind=True, name="tutor.tasks.learner_model_refit_task")
def learner_model_refit_task(self: Any, *, model_name: str = "best-lr") -> dict[str, object]:
    """Refit the learner model from the attempt log (nightly); progress goes to the task's state."""
    from tutor.learner import services  # imports torch: only workers that refit pay for it

    outcome = services.learner_model_refit(
        model_name=model_name,
        progress=lambda message, fraction: self.update_state(state="PROGRESS",
                                                             meta={"message": message, "fraction": fraction}))
    return outcome.as_dict()
