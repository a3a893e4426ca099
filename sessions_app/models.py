from django.conf import settings
from django.db import models
from django.db.models import Q


class Block(models.Model):
    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Theme(models.Model):
    block = models.ForeignKey(Block, on_delete=models.PROTECT, related_name="themes")
    name = models.CharField(max_length=120)

    class Meta:
        ordering = ["block_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["block", "name"], name="sessions_theme_block_name_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.block.name} / {self.name}"


class Question(models.Model):
    """A single-best-answer question.

    `options` is a list of `{"id": str, "text": str}` kept on the row: the
    answer path validates the chosen option with the row it already loaded.
    """

    block = models.ForeignKey(Block, on_delete=models.PROTECT, related_name="questions", db_index=False)
    theme = models.ForeignKey(Theme, on_delete=models.PROTECT, related_name="questions")
    stem = models.TextField()
    options = models.JSONField()
    correct_option = models.CharField(max_length=8)
    explanation = models.TextField(blank=True)
    difficulty = models.PositiveSmallIntegerField(default=3)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # Drawing a session: active questions filtered by block and/or theme.
            models.Index(fields=["block", "theme"], name="sessions_q_block_theme_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(difficulty__gte=1) & Q(difficulty__lte=5), name="sessions_q_difficulty_chk"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.stem[:60]}"

    @property
    def option_ids(self) -> list[str]:
        return [option["id"] for option in self.options]


class ExamSession(models.Model):
    class Mode(models.TextChoices):
        TUTOR = "tutor"
        TIMED = "timed"

    class Status(models.TextChoices):
        ACTIVE = "active"
        SUBMITTED = "submitted"
        EXPIRED = "expired"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exam_sessions", db_index=False
    )
    mode = models.CharField(max_length=8, choices=Mode.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    # What the student asked for: {"block": id | null, "themes": [ids]}.
    filters = models.JSONField(default=dict, blank=True)
    question_count = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    time_limit_seconds = models.PositiveIntegerField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    # Percent correct, copied from the result so history needs no join.
    score = models.FloatField(null=True, blank=True)

    class Meta:
        indexes = [
            # Session history: WHERE user_id = ? ORDER BY created_at DESC (cursor pagination).
            models.Index(fields=["user", "created_at"], name="sessions_es_user_created_idx"),
            # expire_sessions: WHERE status = 'active' AND deadline < now - grace.
            models.Index(
                fields=["deadline"], name="sessions_es_active_deadl_idx", condition=Q(status="active")
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(mode="tutor") | Q(deadline__isnull=False), name="sessions_es_timed_deadline_chk"
            ),
            models.CheckConstraint(
                condition=Q(status="active") | Q(submitted_at__isnull=False), name="sessions_es_closed_at_chk"
            ),
        ]

    def __str__(self) -> str:
        return f"Session {self.pk} ({self.user_id}, {self.status})"


class SessionQuestion(models.Model):
    """The questions drawn for a session, in the order the student sees them."""

    session = models.ForeignKey(
        ExamSession, on_delete=models.CASCADE, related_name="session_questions", db_index=False
    )
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["session_id", "position"]
        constraints = [
            # Also the index for the answer path: WHERE session_id = ? AND question_id = ?.
            models.UniqueConstraint(fields=["session", "question"], name="sessions_sq_session_question_uniq"),
            # Also the index for a session's questions: WHERE session_id = ? ORDER BY position.
            models.UniqueConstraint(fields=["session", "position"], name="sessions_sq_session_pos_uniq"),
        ]


class SessionAnswer(models.Model):
    session = models.ForeignKey(ExamSession, on_delete=models.CASCADE, related_name="answers", db_index=False)
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="+")
    chosen_option = models.CharField(max_length=8, null=True, blank=True)
    is_correct = models.BooleanField(default=False)
    flagged = models.BooleanField(default=False)
    # The client's per-question write sequence: an older write never overwrites a newer one.
    seq = models.PositiveIntegerField(null=True, blank=True)
    first_answered_at = models.DateTimeField()
    answered_at = models.DateTimeField()

    class Meta:
        constraints = [
            # An answer is an upsert on this constraint, never a second row.
            models.UniqueConstraint(fields=["session", "question"], name="sessions_sa_session_question_uniq"),
        ]
        indexes = [
            # Session detail, review and grading: WHERE session_id = ?.
            models.Index(fields=["session"], name="sessions_sa_session_idx"),
        ]


class SessionResult(models.Model):
    """The grade of a session: one row, enforced here, so grading happens once."""

    session = models.OneToOneField(ExamSession, on_delete=models.CASCADE, related_name="result")
    status = models.CharField(max_length=10, choices=ExamSession.Status.choices)
    correct = models.PositiveIntegerField()
    answered = models.PositiveIntegerField()
    total = models.PositiveIntegerField()
    submitted_at = models.DateTimeField()

    @property
    def score_percent(self) -> float:
        return round(100 * self.correct / self.total, 1) if self.total else 0.0


class IdempotencyKey(models.Model):
    """A client's `Idempotency-Key` for session creation, with what it produced."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    session = models.ForeignKey(ExamSession, on_delete=models.CASCADE, null=True, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="sessions_idem_user_key_uniq"),
        ]
        indexes = [
            # purge_idempotency_keys: WHERE created_at < cutoff.
            models.Index(fields=["created_at"], name="sessions_idem_created_idx"),
        ]
