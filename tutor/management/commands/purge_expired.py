"""Delete attempt logs and TA-bot conversations older than their retention settings (0 days = keep forever)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from tutor.accounts.services import RETENTION, retention_purge


class Command(BaseCommand):
    help = "Delete rows past their retention period (TUTOR_ATTEMPT_RETENTION_DAYS and friends)."

    def handle(self, *args, **options) -> None:
        deleted = retention_purge()
        if not deleted:
            settings_names = sorted({rule.setting for rule in RETENTION})
            self.stdout.write(f"nothing to purge: retention is off ({', '.join(settings_names)} = 0)")
        for model, count in deleted.items():
            self.stdout.write(f"{model}: deleted {count}")
