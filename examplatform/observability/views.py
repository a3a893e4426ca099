"""/metrics for Prometheus, kept from the public (docs/observability.md, "Scraping")."""

from functools import lru_cache
from hmac import compare_digest

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from examplatform.errors import error_body

from . import metrics
from .net import Networks


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> Networks:
    return Networks(entries)


def scrape_allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    if token and compare_digest(request.headers.get("Authorization", "").encode(), f"Bearer {token}".encode()):
        return True
    # A request relayed by the reverse proxy came from the internet, whatever its socket address.
    if "HTTP_X_FORWARDED_FOR" in request.META or "HTTP_FORWARDED" in request.META:
        return False
    return _networks(tuple(settings.METRICS_ALLOWED_IPS)).contains(request.META.get("REMOTE_ADDR"))


@require_GET
def metrics_view(request):
    if not scrape_allowed(request):
        return JsonResponse(error_body(detail="Metrics are not public.", code="forbidden"), status=403)
    return HttpResponse(metrics.render(), content_type=CONTENT_TYPE_LATEST)
