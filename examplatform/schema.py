"""OpenAPI: document our JWT authentication as the bearer scheme simplejwt's extension describes."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class BlacklistAwareJWTScheme(SimpleJWTScheme):
    target_class = "examplatform.auth.BlacklistAwareJWTAuthentication"
    name = "jwtAuth"
