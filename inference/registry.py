"""Choose a backend by name; an unknown name fails loudly with the list of valid ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inference.base import Backend


class UnknownBackend(ValueError):
    pass


def _authored(**options: Any) -> Backend:
    from inference.authored import AuthoredBackend

    return AuthoredBackend(**options)


def _transformers(**options: Any) -> Backend:
    from inference.transformers_backend import TransformersBackend

    return TransformersBackend(**options)


def _openai(**options: Any) -> Backend:
    from inference.openai_backend import OpenAIBackend

    return OpenAIBackend(**options)


def _llamacpp(**options: Any) -> Backend:
    from inference.llamacpp_backend import LlamaCppBackend

    return LlamaCppBackend(**options)


# Imports are deferred so that choosing `authored` never loads torch, openai or llama.cpp.
BACKENDS: dict[str, Callable[..., Backend]] = {
    "authored": _authored,
    "llamacpp": _llamacpp,
    "openai": _openai,
    "transformers": _transformers,
}


def get_backend(name: str, **options: Any) -> Backend:
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise UnknownBackend(f"unknown inference backend {name!r}; valid: {', '.join(sorted(BACKENDS))}") from None
    return factory(**options)
