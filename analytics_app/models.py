from django.conf import settings
from django.db import models


class AttemptEvent(models.Model):
    class Type(models.TextChoices):
        ANSWERED = "answered"
        SKIPPED = "skipped"
        SUBMITTED = "submitted"
        EXPIRED = "expired"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    session = models.ForeignKey("sessions_app.ExamSession", on_delete=models.CASCADE, related_name="+")
    question = models.ForeignKey("sessions_app.Question", on_delete=models.CASCADE, null=True, related_name="+")
    event_type = models.CharField(max_length=12, choices=Type.choices)
    event_ts = models.DateTimeField()
    payload = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            # A student's activity over time: WHERE user_id = ? AND event_ts >= ? ORDER BY event_ts.
            models.Index(fields=["user", "event_ts"], name="analytics_ae_user_ts_idx"),
            # The cohort view's window (WHERE event_ts >= ?) and purge_attempt_events (WHERE event_ts < ?).
            models.Index(fields=["event_ts"], name="analytics_ae_ts_idx"),
        ]
        constraints = [
            # Events are written once per session; a replayed drain can't duplicate them.
            models.UniqueConstraint(
                fields=["session", "question", "event_type"], name="analytics_ae_sess_q_type_uniq"
            ),
        ]


class UserThemeMastery(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    theme = models.ForeignKey("sessions_app.Theme", on_delete=models.CASCADE, related_name="+")
    attempts = models.PositiveIntegerField(default=0)
    correct = models.PositiveIntegerField(default=0)
    # Laplace-smoothed correct rate, (correct + 1) / (attempts + 2): order-independent,
    # so a drained backlog lands exactly where inline updates would have.
    mastery = models.FloatField(default=0.5)
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "user theme mastery"
        constraints = [
            # Mastery lookups (WHERE user_id = ? [AND theme_id = ?]) and the upsert target.
            models.UniqueConstraint(fields=["user", "theme"], name="analytics_utm_user_theme_uniq"),
        ]


class RevisionQueueItem(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        RETIRED = "retired"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    question = models.ForeignKey("sessions_app.Question", on_delete=models.CASCADE, related_name="+")
    due_at = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    # fsrs.Card.to_dict(): stability, difficulty, state, step, last_review.
    scheduler_state = models.JSONField(default=dict)
    reviews = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "question"], name="analytics_rq_user_question_uniq"),
        ]
        indexes = [
            # "Due for me now": WHERE user_id = ? AND due_at <= now AND status = 'active' ORDER BY due_at.
            models.Index(fields=["user", "due_at", "status"], name="analytics_rq_user_due_idx"),
        ]


class PendingAnalytics(models.Model):
    """Outbox: a graded session whose mastery, revision and events are not applied yet.

    Written in the grading transaction, deleted in the transaction that applies
    the work, so each session's analytics apply exactly once even if a worker
    dies in between (drain_recalc picks up what is left).
    """

    session = models.OneToOneField("sessions_app.ExamSession", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "pending analytics"


class ExamModeSwitch(models.Model):
    """Exam mode as ops set it at run time: one row, id 1; no row means "follow EXAM_MODE".

    Read through examplatform.exam_mode, which caches it per process for a couple of seconds.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    # None: follow settings.EXAM_MODE (the environment's default).
    enabled = models.BooleanField(null=True, blank=True)
    # When set and enabled, exam mode turns itself off at this time.
    until = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField()
    changed_by = models.CharField(max_length=150, blank=True)

    class Meta:
        verbose_name = "exam mode"
        verbose_name_plural = "exam mode"
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="analytics_exam_mode_singleton_chk"),
        ]

    def __str__(self) -> str:
        return "Exam mode"
