from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ExamAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with our site: exam mode gates every ModelAdmin's bulk actions."""

    default = False  # named in INSTALLED_APPS; "examplatform" itself still means ExamPlatformConfig
    default_site = "examplatform.admin_gates.ExamModeAdminSite"


class ExamPlatformConfig(AppConfig):
    name = "examplatform"
    verbose_name = "Exam platform"

    def ready(self):
        from . import checks, schema  # noqa: F401  (register the system checks and the OpenAPI auth extension)
