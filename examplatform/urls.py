from django.conf import settings
from django.contrib import admin
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework_simplejwt.views import TokenRefreshView

from analytics_app.apis import RevisionQueueApi
from sessions_app import apis as sessions

from .auth_apis import LoginApi, LogoutApi
from .converters import RowIdConverter
from .health import health, ready
from .observability.views import metrics_view

register_converter(RowIdConverter, "id")

api_v1 = [
    path("auth/token/", LoginApi.as_view(), name="token-obtain"),
    path("auth/token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
    path("auth/logout/", LogoutApi.as_view(), name="logout"),
    path("blocks/", sessions.BlockListApi.as_view(), name="blocks"),
    path("themes/", sessions.ThemeListApi.as_view(), name="themes"),
    path("sessions/", sessions.SessionListCreateApi.as_view(), name="sessions"),
    path("sessions/<id:session_id>/", sessions.SessionDetailApi.as_view(), name="session-detail"),
    path(
        "sessions/<id:session_id>/answers/<id:question_id>/",
        sessions.AnswerApi.as_view(),
        name="session-answer",
    ),
    path("sessions/<id:session_id>/submit/", sessions.SubmitApi.as_view(), name="session-submit"),
    path("sessions/<id:session_id>/review/", sessions.ReviewApi.as_view(), name="session-review"),
    path("revision-queue/", RevisionQueueApi.as_view(), name="revision-queue"),
    path("analytics/", include("analytics_app.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
]

urlpatterns = [
    path("health", health, name="health"),
    path("health/ready", ready, name="health-ready"),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include(api_v1)),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]

if settings.ENABLE_TEST_ENDPOINTS:
    urlpatterns.append(path("test/", include("examplatform.test_endpoints")))

handler400 = "examplatform.errors.json_400"
handler403 = "examplatform.errors.json_403"
handler404 = "examplatform.errors.json_404"
handler500 = "examplatform.errors.json_500"
