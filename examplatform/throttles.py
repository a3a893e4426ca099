"""Rate limits on the cache (Redis): per student on the API, per client IP on login.

DRF's rate syntax, scopes and Retry-After, but counted per fixed window with one
INCR: DRF's own throttles keep a pickled list of every request's time, which at
the generous rates an exam needs is thousands of entries read and written per
request. On Redis the INCR and the window's expiry go in one pipelined round
trip (django-redis' own incr is a Lua EVAL, and a missing key costs two more).

When the cache can't count (Redis down, breaker open) the request is let
through and that is logged: a rate limit is never a reason to refuse a student.
"""

import logging
import time

import redis
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)

# At most one "not enforced" warning per process per this many seconds.
FAIL_OPEN_LOG_INTERVAL = 10.0
_last_fail_open_log = 0.0


def _log_fail_open(scope: str) -> None:
    global _last_fail_open_log
    now = time.monotonic()
    if now - _last_fail_open_log >= FAIL_OPEN_LOG_INTERVAL:
        _last_fail_open_log = now
        logger.warning("rate limit %r not enforced: the cache is unavailable (fail-open)", scope)


class FixedWindowRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        # Read at use, not at import (DRF binds the rates to the class), so an unset scope means no limit.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_ends_at = (window + 1) * self.duration
        count = self._count(f"{self.key}:{window}")
        if count is None:
            _log_fail_open(self.scope)
            return True
        return count <= self.num_requests

    def _count(self, key: str) -> int | None:
        """This window's count including this request; None when the cache can't say."""
        client = getattr(self.cache, "client", None)
        if hasattr(client, "get_client"):  # django-redis
            return self._count_on_redis(client, key)
        return self._count_on_cache(key)

    def _count_on_redis(self, client, key: str) -> int | None:
        raw_key = self.cache.make_key(key)
        try:
            # Through the breaker (examplatform/redis_client.py): an open circuit raises at once.
            with client.get_client(write=True).pipeline(transaction=False) as pipe:
                pipe.incr(raw_key)
                # Outlive the window a little; NX keeps the first request's expiry.
                pipe.expire(raw_key, self.duration + 1, nx=True)
                count, _ = pipe.execute()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            return None
        return count

    def _count_on_cache(self, key: str) -> int | None:
        """Any other Django cache (the embedded demo's local memory)."""
        try:
            return self.cache.incr(key)
        except ValueError:  # the window's first request
            pass
        # Outlive the window a little so a late INCR never recreates the key without a TTL.
        if self.cache.add(key, 1, self.duration + 1):
            return 1
        try:
            return self.cache.incr(key)  # another request created it in between
        except ValueError:
            return None

    def wait(self) -> float:
        return max(0.0, self.window_ends_at - self.now)


class StudentRateThrottle(FixedWindowRateThrottle):
    """Per logged-in user (the token's user id: no query). Anonymous requests are refused by auth anyway."""

    scope = "user"

    def get_cache_key(self, request, view) -> str | None:
        user = request.user
        if not (user and user.is_authenticated):
            return None
        return self.cache_format % {"scope": self.scope, "ident": user.pk}


class LoginRateThrottle(FixedWindowRateThrottle):
    """Per client IP (REST_FRAMEWORK["NUM_PROXIES"] says how many proxies' X-Forwarded-For to trust)."""

    scope = "login"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
