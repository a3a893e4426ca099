from django.apps import AppConfig


class ExamPlatformConfig(AppConfig):
    name = "examplatform"
    verbose_name = "Exam platform"

    def ready(self):
        from . import schema  # noqa: F401  (registers the OpenAPI auth extension)
