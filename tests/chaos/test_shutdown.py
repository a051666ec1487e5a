"""SIGTERM stops the server and the Celery worker within 10 s while an answer is being checked in the maths sandbox,
and none of their processes (sandbox workers, the forkserver) is left behind. Each run starts the real stack through
benchmarks/noisy_neighbour.py (--sigterm-only): daphne and uvicorn on SQLite as `make run` has it, a prefork Celery
worker on PostgreSQL + Redis as docker-compose has it (the PostgreSQL + Redis suite only)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _sigterm(*args: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "DJANGO_", "TUTOR_"))}
    result = subprocess.run([sys.executable, "benchmarks/noisy_neighbour.py", "--sigterm-only", "--students", "1",
                             *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found = re.search(r"^RESULT (.*)$", result.stdout, re.M)
    assert found, result.stdout[-2000:]
    return dict(pair.split("=") for pair in found.group(1).split())


@pytest.mark.parametrize(("server", "workers"), [("daphne", "1"), ("uvicorn", "2")])
def test_the_server_stops_on_sigterm_while_an_answer_is_in_the_sandbox(server, workers):
    out = _sigterm("--server", server, "--workers", workers, "--db", "sqlite")
    assert out["exited"] == "True" and float(out["sigterm_exit_s"]) < 10, out
    assert out["left_behind"] == "0" and out["sandbox_busy"] == "True", out


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis: runs in the PostgreSQL + Redis suite")
@pytest.mark.skipif(not (shutil.which("initdb") or list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))),
                    reason="needs the PostgreSQL server binaries for a throwaway cluster")
def test_the_celery_worker_stops_on_sigterm_while_a_batch_answer_is_in_the_sandbox():
    out = _sigterm("--server", "uvicorn", "--db", "postgres", "--redis-url", "redis://127.0.0.1:6379/12", "--celery")
    assert out["exited"] == "True" and float(out["sigterm_exit_s"]) < 10, out
    assert out["left_behind"] == "0" and out["sandbox_busy"] == "True", out
