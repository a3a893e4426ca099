from django.apps import AppConfig


class ExamPlatformConfig(AppConfig):
    name = "examplatform"
    verbose_name = "Exam platform"

    def ready(self):
        from . import checks, schema  # noqa: F401  (register the system checks and the OpenAPI auth extension)
