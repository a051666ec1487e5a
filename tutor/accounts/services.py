"""A person's own data: export it all, delete the account, and purge logs past their retention period.

Export and delete find the person's rows through the user model's relations (a foreign key named `user`), so
a model added later (TA-bot conversations, review schedules) is exported and deleted without touching this file. Retention is a
table below: which model, which timestamp field, which setting holds the number of days (0 = keep forever).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers import serialize
from django.db import models, transaction
from django.utils import timezone

EXPORT_VERSION = 1
# Never exported even though they point at the user: secrets and the admin's audit log.
_EXPORT_SKIP = {"admin.logentry"}
_USER_FIELDS = ("id", "username", "first_name", "last_name", "email", "date_joined", "last_login")


@dataclass(frozen=True)
class Retention:
    model: str  # "app_label.ModelName"
    field: str  # the timestamp that ages
    setting: str  # days to keep; 0 = forever
    keep: dict[str, Any] = dataclass_field(default_factory=dict)  # rows matching this are never purged


RETENTION = [
    Retention("tutor.Attempt", "created_at", "TUTOR_ATTEMPT_RETENTION_DAYS"),
    Retention("tutor.Guess", "created_at", "TUTOR_ATTEMPT_RETENTION_DAYS"),
    # TA-bot conversations; a question whose faculty answer was shared is course material (the FAQ), kept.
    Retention("tutor.TAQuestion", "created_at", "TUTOR_TA_RETENTION_DAYS", keep={"shared": True,
                                                                                  "faculty_answer__gt": ""}),
]
# Rows are a person's own through a foreign key named `user`; other keys to the user model name an actor
# (`answered_by`, `uploaded_by`), and exporting through them would hand one person another's questions.
_OWNER_FIELDS = {"user"}


def _owned_relations(user_model: type[models.Model]) -> list[tuple[type[models.Model], str]]:
    """(model, field name) for every foreign key or one-to-one named `user` that points at the user model."""
    out = []
    for rel in user_model._meta.related_objects:
        if rel.many_to_many or not rel.field.concrete or rel.field.name not in _OWNER_FIELDS:
            continue
        model = rel.related_model
        if model._meta.label_lower in _EXPORT_SKIP:
            continue
        out.append((model, rel.field.name))
    return sorted(out, key=lambda pair: (pair[0]._meta.label_lower, pair[1]))


def account_export(*, user: AbstractBaseUser) -> dict[str, Any]:
    """Everything stored about `user`, as JSON-ready data: their account fields and every row that is theirs."""
    account = {name: getattr(user, name, None) for name in _USER_FIELDS}
    data: dict[str, Any] = {
        "format": "tutor-account-export", "version": EXPORT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "account": json.loads(json.dumps(account, default=str)),
        "records": {},
    }
    for model, field in _owned_relations(get_user_model()):
        rows = model._default_manager.filter(**{field: user}).order_by("pk")
        serialized = json.loads(serialize("json", rows))
        if serialized:
            data["records"].setdefault(model._meta.label_lower, []).extend(
                {"id": row["pk"], **row["fields"]} for row in serialized)
    return data


@transaction.atomic
def account_delete(*, user: AbstractBaseUser) -> dict[str, int]:
    """Delete the account and everything that is theirs (cascades). Returns rows deleted per model."""
    _, per_model = user.delete()
    return dict(per_model)


def retention_purge(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Delete rows older than their retention setting. Returns rows deleted per model (0-day settings skip)."""
    now = now or timezone.now()
    deleted: dict[str, int] = {}
    for rule in RETENTION:
        days = int(getattr(settings, rule.setting, 0) or 0)
        try:
            model = apps.get_model(rule.model)
        except LookupError:  # a model of an app not installed in this deployment
            continue
        if days <= 0:
            continue
        cutoff = now - dt.timedelta(days=days)
        with transaction.atomic():
            rows = model._default_manager.filter(**{f"{rule.field}__lt": cutoff})
            if rule.keep:
                rows = rows.exclude(**rule.keep)
            count, _ = rows.delete()
        deleted[rule.model] = count
    return deleted
