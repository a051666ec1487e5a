"""Refit the knowledge-tracing model on the tutor's attempt log; switch to it only if it is no worse."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from learner_model.models import MODELS
from tutor.learner.services import learner_model_refit


class Command(BaseCommand):
    help = "Cross-validate a learner model on the attempt log, fit it, and switch to it if its AUC is no worse."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", default="best-lr", choices=sorted(MODELS))
        parser.add_argument("--course", type=int, help="only this course's attempts (pk)")
        parser.add_argument("--folds", type=int, default=5)
        parser.add_argument("--train-seconds", type=float, default=600.0, help="cap per fit for neural models")

    def handle(self, *args, **options) -> None:
        outcome = learner_model_refit(
            model_name=options["model"], course_id=options["course"], n_folds=options["folds"],
            train_seconds=options["train_seconds"],
            progress=lambda message, fraction: self.stdout.write(f"[{fraction:4.0%}] {message}"))
        self.stdout.write(f"{'switched' if outcome.switched else 'not switched'}: {outcome.reason} "
                          f"(AUC {outcome.cv_auc:.4f}, version {outcome.version})")
