"""Make a new signing key for LTI; the old ones stay in the published keyset for a week."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from tutor.lti import services


class Command(BaseCommand):
    help = "Rotate the tool's LTI signing key (the previous keys stay published for 7 days)."

    def handle(self, *args: Any, **options: Any) -> None:
        key = services.key_rotate()
        self.stdout.write(f"new signing key {key.kid}")
