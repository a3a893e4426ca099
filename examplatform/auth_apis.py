"""Log in (rate-limited per IP), refresh, log out."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.views import TokenObtainPairView

from . import auth
from .throttles import LoginRateThrottle


class LogoutSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class LogoutApi(APIView):
    """Blacklist the refresh token; access tokens minted from it stop working too."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def get_authenticate_header(self, request):
        # A bad refresh token is a 401 like on the refresh endpoint, not a 403.
        return 'Bearer realm="api"'

    @extend_schema(request=LogoutSerializer, responses={205: None})
    def post(self, request):
        payload = LogoutSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            auth.logout(refresh=payload.validated_data["refresh"])
        except TokenError as exc:
            raise InvalidToken({"detail": str(exc), "code": "token_not_valid"}) from exc
        return Response(status=status.HTTP_205_RESET_CONTENT)


class LoginApi(TokenObtainPairView):
    """simplejwt's login, rate-limited per client IP (the student API's limit is per user)."""

    throttle_classes = [LoginRateThrottle]
