"""Rate limits: a fixed-window counter in Django's cache (Redis when REDIS_URL is set, so every process shares it).

    if not ratelimit_check(key=f"answer:{user.pk}", limit=settings.TUTOR_RATELIMIT_ANSWERS, period=60):
        ...refuse, politely...

A window is `period` seconds long; the first `limit` calls in it pass. A limit of 0 or less means no limit.
If the cache itself is down the call is allowed (and logged): a broken limiter must not lock students out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from django.core.cache import cache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class RateLimited(Exception):
    """Raised by callers that prefer an exception; carries how long until the window resets."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many requests; try again in {retry_after} s")


def _window_key(key: str, period: int, now: float) -> tuple[str, int]:
    window = int(now // period)
    retry_after = int((window + 1) * period - now) + 1
    return f"rl:{key}:{period}:{window}", retry_after


def ratelimit_check(*, key: str, limit: int, period: int) -> bool:
    """Count one call against `key`; True while at most `limit` calls happened in the current window."""
    if limit <= 0:
        return True
    cache_key, _ = _window_key(key, period, time.time())
    try:
        if cache.add(cache_key, 1, timeout=period + 1):
            return 1 <= limit
        try:
            count = cache.incr(cache_key)
        except ValueError:  # the key expired between add and incr: this call opens a new window
            cache.set(cache_key, 1, timeout=period + 1)
            count = 1
    except RedisError as exc:
        log.warning("rate limiter cache unavailable, allowing %s: %s", key, exc)
        return True
    return count <= limit


# Async callers (the websocket consumer) check on threads of their own: the event loop's default executor is
# also where explanation streams wait between words, and a limiter queued behind them would add seconds.
_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ratelimit")


async def aratelimit_check(*, key: str, limit: int, period: int) -> bool:
    """`ratelimit_check` for async code: no thread hop at all when the limit is off."""
    if limit <= 0:
        return True
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, lambda: ratelimit_check(key=key, limit=limit, period=period))


def ratelimit_enforce(*, key: str, limit: int, period: int) -> None:
    """`ratelimit_check`, raising `RateLimited` (with the seconds until the window resets) when over."""
    if not ratelimit_check(key=key, limit=limit, period=period):
        raise RateLimited(_window_key(key, period, time.time())[1])


def ratelimit_peek(*, key: str, limit: int, period: int) -> bool:
    """True if `key` is still under `limit` in the current window, without counting a call."""
    if limit <= 0:
        return True
    cache_key, _ = _window_key(key, period, time.time())
    try:
        return int(cache.get(cache_key) or 0) < limit
    except RedisError as exc:
        log.warning("rate limiter cache unavailable, allowing %s: %s", key, exc)
        return True
