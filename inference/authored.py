"""The `authored` backend: no model at all; streams the course's own text, a word at a time.

It is the default and the fallback: it never fails, so a student always gets an explanation.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from inference.base import GenerationRequest

_PIECES = re.compile(r"\S+\s*|\s+")


class AuthoredBackend:
    name = "authored"

    def __init__(self, delay_s: float = 0.0) -> None:
        # A small delay makes the stream visibly progressive in the browser; 0 in tests and benchmarks.
        self.delay_s = delay_s

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        for piece in _PIECES.findall(request.authored):
            if self.delay_s:
                time.sleep(self.delay_s)
            yield piece

    def health(self) -> bool:
        return True
