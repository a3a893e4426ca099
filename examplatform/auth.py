"""JWT auth without a user query per request, with logout that really logs out.

Access tokens carry `rjti`, the id of the refresh token they came from. Logging
out blacklists that refresh token in simplejwt's tables (the source of truth);
every authenticated request checks `rjti` against the blacklist through the
cache, falling back to the database when the cache can't answer.

A student sends the same access token with every request of an exam, so each
worker keeps the tokens it verified recently (keyed by the whole token, signature
included, and still checked for expiry on every use): decoding and verifying a
JWT was ~12% of an answer's time. The blacklist is never cached this way.
"""

import threading
import time
from collections import OrderedDict

from django.core.cache import cache
from django.utils.translation import gettext_lazy as _
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import RefreshToken as BaseRefreshToken

_MISSING = object()
# A "not blacklisted" answer is cached briefly: a logout made while the cache
# was unreachable can't leave a stale "valid" behind for longer than this.
NEGATIVE_TTL_SECONDS = 30
POSITIVE_TTL_SECONDS = 7 * 24 * 3600


def _cache_key(refresh_jti: str) -> str:
    return f"jwt:bl:{refresh_jti}"


class RefreshToken(BaseRefreshToken):
    # Refresh tokens are not rotated (settings.SIMPLE_JWT), so one refresh jti
    # names the whole login: blacklisting it ends every access token it minted.
    @property
    def access_token(self):
        access = super().access_token
        access["rjti"] = self["jti"]
        return access


class TokenObtainPairSerializer(jwt_serializers.TokenObtainPairSerializer):
    token_class = RefreshToken


def is_blacklisted(refresh_jti: str) -> bool:
    cached = cache.get(_cache_key(refresh_jti), _MISSING)
    if cached is not _MISSING:
        return bool(cached)
    listed = BlacklistedToken.objects.filter(token__jti=refresh_jti).exists()
    cache.set(_cache_key(refresh_jti), listed, POSITIVE_TTL_SECONDS if listed else NEGATIVE_TTL_SECONDS)
    return listed


def logout(*, refresh: str) -> None:
    """Blacklist the refresh token and with it every access token it minted."""
    token = RefreshToken(refresh)
    token.blacklist()
    cache.set(_cache_key(token["jti"]), True, POSITIVE_TTL_SECONDS)


class TokenRefreshSerializer(jwt_serializers.TokenRefreshSerializer):
    token_class = RefreshToken


class VerifiedTokens:
    """The last `size` tokens this process verified, least recently used out first."""

    def __init__(self, size: int = 4096):
        self.size = size
        self._tokens: OrderedDict[bytes, object] = OrderedDict()
        self._lock = threading.Lock()  # gthread workers share a process

    def get(self, raw_token: bytes):
        with self._lock:
            token = self._tokens.get(raw_token)
            if token is None:
                return None
            if token["exp"] <= time.time():
                del self._tokens[raw_token]
                return None  # expired: verify again, which refuses it with simplejwt's message
            self._tokens.move_to_end(raw_token)
            return token

    def add(self, raw_token: bytes, token) -> None:
        with self._lock:
            self._tokens[raw_token] = token
            if len(self._tokens) > self.size:
                self._tokens.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


verified_tokens = VerifiedTokens()


class BlacklistAwareJWTAuthentication(JWTStatelessUserAuthentication):
    def get_validated_token(self, raw_token):
        token = verified_tokens.get(raw_token)
        if token is None:
            token = super().get_validated_token(raw_token)
            verified_tokens.add(raw_token, token)
        family = token.get("rjti")
        if family is None or is_blacklisted(family):
            raise InvalidToken({"detail": _("Token is blacklisted"), "code": "token_not_valid"})
        return token
