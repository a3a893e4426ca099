from django.contrib import admin

from .models import AttemptEvent, PendingAnalytics, RevisionQueueItem, UserThemeMastery


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AttemptEvent)
class AttemptEventAdmin(ReadOnlyAdmin):
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
