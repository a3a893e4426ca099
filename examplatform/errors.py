"""Domain errors and the one place they become HTTP responses.

Every error body is `{"detail": str, "code": str}` (plus `errors` for field
validation and any `extra` a domain error carries).
"""

import sys
from typing import Any

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class DomainError(Exception):
    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid"
    default_detail = "Invalid request."

    def __init__(self, detail: str | None = None, *, extra: dict[str, Any] | None = None):
        self.detail = detail or self.default_detail
        self.extra = extra or {}
        super().__init__(self.detail)


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"
    default_detail = "Not found."


class Conflict(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class Unprocessable(DomainError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "unprocessable"


class ServiceUnavailable(DomainError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "unavailable"
    default_detail = "Temporarily unavailable, retry shortly."
    retry_after = 5


def error_body(*, detail: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"detail": detail, "code": code, **extra}


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        response = Response(error_body(detail=exc.detail, code=exc.code, **exc.extra), status=exc.status_code)
        if isinstance(exc, ServiceUnavailable):
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body(detail="Invalid input.", code="invalid", errors=response.data)
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail
        if isinstance(detail, dict):
            # simplejwt's token errors carry their own detail/code/messages.
            code = str(detail.get("code", exc.default_code))
            detail = str(detail.get("detail", exc.default_detail))
        else:
            code = getattr(detail, "code", exc.default_code)
        response.data = error_body(detail=str(detail), code=str(code))
    return response


def json_400(request, exception=None):
    # Django's own refusals outside DRF, e.g. a Host header not in ALLOWED_HOSTS.
    from django.http import JsonResponse

    return JsonResponse(error_body(detail="Bad request.", code="bad_request"), status=400)


def json_403(request, exception=None):
    from django.http import JsonResponse

    return JsonResponse(error_body(detail="Permission denied.", code="permission_denied"), status=403)


def json_404(request, exception=None):
    from django.http import JsonResponse

    return JsonResponse(error_body(detail="Not found.", code="not_found"), status=404)


def json_500(request):
    from django.http import JsonResponse

    from examplatform.resilience import unavailable_response

    # Django calls this inside its `except` block. A database error raised outside a view (a middleware
    # saving the admin's session, say) still means the database is unavailable: a 503, as from a view.
    if (response := unavailable_response(request, sys.exc_info()[1])) is not None:
        return response
    return JsonResponse(error_body(detail="Internal server error.", code="server_error"), status=500)
