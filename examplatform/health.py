"""Liveness: answers from the process alone, touching neither the database nor the cache."""

from django.http import JsonResponse


def health(request):
    return JsonResponse({"status": "ok"})
