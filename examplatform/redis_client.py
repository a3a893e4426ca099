"""django-redis client that never lets Redis block a request."""

from django_redis.client import DefaultClient


class BreakerClient(DefaultClient):
    """Redis client used by the default cache (see settings.CACHES)."""
