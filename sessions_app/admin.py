from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.shortcuts import redirect, render
from django.urls import path

from examplatform.admin_gates import paused_in_exam_mode

from . import services
from .models import Block, ExamSession, Question, SessionAnswer, SessionQuestion, SessionResult, Theme
from .question_import import OPTION_LETTERS, ImportFormatError, import_questions, parse_rows


@admin.register(Block)
class BlockAdmin(admin.ModelAdmin):
    list_display = ["name", "active_questions"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            active_questions=Count("questions", filter=Q(questions__is_active=True))
        )

    @admin.display(ordering="active_questions")
    def active_questions(self, block):
        return block.active_questions


@admin.register(Theme)
class ThemeAdmin(admin.ModelAdmin):
    list_display = ["name", "block"]
    list_filter = ["block"]
    list_select_related = ["block"]
    search_fields = ["name", "block__name"]


class QuestionForm(forms.ModelForm):
    """Options edited as one text box each instead of raw JSON."""

    correct_option = forms.ChoiceField(choices=[(letter, letter.upper()) for letter in OPTION_LETTERS])

    class Meta:
        model = Question
        fields = ["block", "theme", "stem", "correct_option", "explanation", "difficulty", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = {option["id"]: option["text"] for option in (self.instance.options or [])}
        for letter in OPTION_LETTERS:
            self.fields[f"option_{letter}"] = forms.CharField(
                label=f"Option {letter.upper()}", required=False, initial=current.get(letter, "")
            )

    def clean(self):
        cleaned = super().clean()
        options = [
            {"id": letter, "text": cleaned[f"option_{letter}"].strip()}
            for letter in OPTION_LETTERS
            if cleaned.get(f"option_{letter}", "").strip()
        ]
        if len(options) < 2:
            raise forms.ValidationError("A question needs at least two options.")
        if cleaned.get("correct_option") not in {option["id"] for option in options}:
            self.add_error("correct_option", "The correct option must be one of the filled-in options.")
        theme, block = cleaned.get("theme"), cleaned.get("block")
        if theme and block and theme.block_id != block.pk:
            self.add_error("theme", "This theme belongs to another block.")
        self.instance.options = options
        return cleaned


class ImportForm(forms.Form):
    file = forms.FileField(help_text="A .csv or .json file; see the column list below.")


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    form = QuestionForm
    list_display = ["id", "short_stem", "block", "theme", "difficulty", "is_active"]
    list_filter = ["is_active", "block", "theme", "difficulty"]
    list_select_related = ["block", "theme"]
    search_fields = ["stem", "explanation"]
    actions = ["activate", "deactivate"]
    change_list_template = "admin/sessions_app/question/change_list.html"

    @admin.display(description="stem")
    def short_stem(self, question):
        return question.stem[:80]

    @admin.action(description="Activate selected questions")
    def activate(self, request, queryset):
        count = services.set_questions_active(question_ids=list(queryset.values_list("pk", flat=True)), active=True)
        self.message_user(request, f"Activated {count} questions.")

    @admin.action(description="Deactivate selected questions")
    def deactivate(self, request, queryset):
        count = services.set_questions_active(question_ids=list(queryset.values_list("pk", flat=True)), active=False)
        self.message_user(request, f"Deactivated {count} questions.")

    def get_urls(self):
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="sessions_app_question_import"),
            *super().get_urls(),
        ]

    @paused_in_exam_mode("admin:sessions_app_question_changelist")
    def import_view(self, request):
        if not self.has_add_permission(request):
            return redirect("admin:sessions_app_question_changelist")
        form = ImportForm(request.POST or None, request.FILES or None)
        report = None
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                rows = parse_rows(content=upload.read(), filename=upload.name)
            except ImportFormatError as exc:
                form.add_error("file", str(exc))
            else:
                report = import_questions(rows=rows)
                if report.ok:
                    messages.success(request, f"Imported {report.created} questions.")
                    return redirect("admin:sessions_app_question_changelist")
                messages.error(
                    request, f"{len(report.errors)} rows are invalid; nothing was imported. Fix them and upload again."
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import questions",
            "form": form,
            "report": report,
            "letters": OPTION_LETTERS,
        }
        return render(request, "admin/sessions_app/question/import.html", context, status=400 if report else 200)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SessionQuestionInline(ReadOnlyInline):
    model = SessionQuestion
    fields = ["position", "question"]
    readonly_fields = fields
    ordering = ["position"]


class SessionAnswerInline(ReadOnlyInline):
    model = SessionAnswer
    fields = ["question", "chosen_option", "is_correct", "flagged", "seq", "first_answered_at", "answered_at"]
    readonly_fields = fields


class SessionResultInline(ReadOnlyInline):
    model = SessionResult
    fields = ["status", "correct", "answered", "total", "submitted_at"]
    readonly_fields = fields


@admin.register(ExamSession)
class ExamSessionAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "mode", "status", "question_count", "created_at", "deadline", "score"]
    list_filter = ["status", "mode"]
    list_select_related = ["user"]
    search_fields = ["user__username", "=id"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in ExamSession._meta.fields]
    inlines = [SessionResultInline, SessionQuestionInline, SessionAnswerInline]
    actions = ["expire_overdue"]

    # A session and its answers are the student's exam record: only the services write them (a
    # superuser included), so the admin shows them and can close overdue ones, nothing else.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Close selected sessions that are past their deadline")
    def expire_overdue(self, request, queryset):
        from django.utils import timezone

        now = timezone.now()
        closed = sum(
            1 for pk in queryset.values_list("pk", flat=True) if services.expire_session(session_id=pk, now=now)
        )
        self.message_user(request, f"Closed {closed} overdue sessions.")
