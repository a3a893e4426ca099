"""What the admin holds back while exam mode is on: bulk actions and imports."""

from functools import wraps

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse

from . import exam_mode

REFUSAL = (
    "Exam mode is on: bulk actions and imports are paused until it is turned off. "
    "Single objects can still be edited."
)


class PausedBulkActionsMixin:
    """Every admin action of this ModelAdmin (delete_selected included) refuses while exam mode is on."""

    def response_action(self, request, queryset):
        if exam_mode.is_on():
            self.message_user(request, REFUSAL, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)


class ExamModeAdminSite(admin.AdminSite):
    """The admin site: every ModelAdmin registered on it gets the bulk-action gate.

    Ours and the libraries' alike (users, groups, blacklisted tokens): a gate each
    ModelAdmin had to opt into would leave whatever someone forgets to mix it into.
    Installed as the default site by examplatform.apps.ExamAdminConfig.
    """

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, PausedBulkActionsMixin):
            admin_class = type(admin_class.__name__, (PausedBulkActionsMixin, admin_class),
                               {"__module__": admin_class.__module__})
        super().register(model_or_iterable, admin_class, **options)


def paused_in_exam_mode(redirect_to: str):
    """For a ModelAdmin view (an import): refuse with a message and go back to `redirect_to`."""

    def decorator(view):
        @wraps(view)
        def wrapper(self, request, *args, **kwargs):
            if exam_mode.is_on():
                messages.error(request, REFUSAL)
                return HttpResponseRedirect(reverse(redirect_to))
            return view(self, request, *args, **kwargs)

        return wrapper

    return decorator
