"""Text generation for the tutor: backends, prompts, verification. No Django import in this package."""

from inference.base import Backend, BackendUnavailable, GenerationRequest, Message
from inference.fallback import FallbackBackend, health_report, with_fallback
from inference.registry import BACKENDS, UnknownBackend, get_backend

__all__ = [
    "BACKENDS", "Backend", "BackendUnavailable", "FallbackBackend", "GenerationRequest", "Message", "UnknownBackend",
    "get_backend", "health_report", "with_fallback",
]
