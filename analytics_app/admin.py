from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect, render
from django.utils import timezone

from examplatform import exam_mode

from .models import AttemptEvent, ExamModeSwitch, PendingAnalytics, RevisionQueueItem, UserThemeMastery
from .services import pending_count


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AttemptEvent)
class AttemptEventAdmin(ReadOnlyAdmin):
    # COUNT(*) of the whole event table on every page view is the heavy part of this list.
    show_full_result_count = False
    list_display = ["id", "user", "session", "question", "event_type", "event_ts"]
    list_filter = ["event_type"]
    list_select_related = ["user"]
    search_fields = ["user__username", "=session__id"]
    raw_id_fields = ["session", "question"]


@admin.register(UserThemeMastery)
class UserThemeMasteryAdmin(ReadOnlyAdmin):
    list_display = ["user", "theme", "attempts", "correct", "mastery", "updated_at"]
    list_select_related = ["user", "theme", "theme__block"]
    search_fields = ["user__username", "theme__name"]


@admin.register(RevisionQueueItem)
class RevisionQueueItemAdmin(ReadOnlyAdmin):
    list_display = ["user", "question", "due_at", "status", "reviews"]
    list_filter = ["status"]
    list_select_related = ["user", "question"]
    search_fields = ["user__username"]


@admin.register(PendingAnalytics)
class PendingAnalyticsAdmin(ReadOnlyAdmin):
    list_display = ["session", "created_at"]


class ExamModeForm(forms.Form):
    until = forms.DateTimeField(
        required=False,
        label="Turn off by itself at",
        help_text="Optional, with Turn on; in the server's time zone.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )


@admin.register(ExamModeSwitch)
class ExamModeAdmin(admin.ModelAdmin):
    """One page that shows exam mode and turns it on or off; there is no list of rows."""

    ACTIONS = {"Turn on": "on", "Turn off": "off", "Follow EXAM_MODE from the environment": "default"}

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return redirect("admin:analytics_app_exammodeswitch_changelist")

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            return redirect("admin:index")
        can_change = self.has_change_permission(request)
        form = ExamModeForm(request.POST or None)
        if request.method == "POST" and can_change and form.is_valid():
            action = self.ACTIONS.get(request.POST.get("action"))
            now, by = timezone.now(), f"admin ({request.user.get_username()})"
            until = form.cleaned_data["until"]
            if action == "on" and until is not None and until <= now:
                form.add_error("until", "Pick a time in the future.")
            elif action == "on":
                self._changed(request, exam_mode.turn_on(by=by, now=now, until=until))
                return redirect(request.path)
            elif action == "off":
                self._changed(request, exam_mode.turn_off(by=by, now=now))
                return redirect(request.path)
            elif action == "default":
                self._changed(request, exam_mode.follow_environment(by=by, now=now))
                return redirect(request.path)
        exam_mode.forget()  # show what the database says, not this worker's cached copy
        current = exam_mode.state()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Exam mode",
            "state": current,
            "description": exam_mode.describe(current),
            "pending": pending_count(),
            "refresh_seconds": f"{exam_mode.REFRESH_SECONDS:g}",
            "form": form,
            "can_change": can_change,
        }
        return render(request, "admin/exam_mode.html", context)

    def _changed(self, request, current: exam_mode.State) -> None:
        self.message_user(
            request,
            f"Exam mode is now {exam_mode.describe(current)}. Every worker follows within "
            f"{exam_mode.REFRESH_SECONDS:g} seconds.",
            messages.SUCCESS,
        )
