"""Demo question bank and users; idempotent, so it can run on every `make run`."""

import random
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction

from .models import Block, Question, Theme

DEMO_STUDENT = ("student", "student-pass")
DEMO_STAFF = ("staff", "staff-pass")
LOAD_PASSWORD = "load-pass"  # noqa: S105 - a published demo login

BANK = {
    "Cardiology": ["Arrhythmias", "Heart failure", "Valvular disease", "Ischaemic heart disease"],
    "Respiratory": ["Asthma", "COPD", "Pneumonia", "Pulmonary embolism"],
    "Neurology": ["Stroke", "Epilepsy", "Headache", "Movement disorders"],
    "Endocrinology": ["Diabetes", "Thyroid", "Adrenal", "Pituitary"],
}
QUESTIONS_PER_THEME = 20


@dataclass
class SeedReport:
    questions_created: int
    students_created: int


def _questions_for(theme: Theme, rng: random.Random) -> list[Question]:
    questions = []
    for n in range(1, QUESTIONS_PER_THEME + 1):
        letters = "abcde"
        correct = rng.choice(letters)
        questions.append(
            Question(
                block=theme.block,
                theme=theme,
                stem=f"[{theme.name} #{n}] A patient presents with a typical finding of "
                f"{theme.name.lower()}. Which is the single best next step?",
                options=[{"id": x, "text": f"Option {x.upper()} for {theme.name} #{n}"} for x in letters],
                correct_option=correct,
                explanation=f"Option {correct.upper()} is the guideline answer for {theme.name.lower()} case {n}.",
                difficulty=rng.randint(1, 5),
            )
        )
    return questions


@transaction.atomic
def seed_demo(*, students: int = 0) -> SeedReport:
    """Blocks, themes, a few hundred questions, the demo logins and `students` load-test students."""
    rng = random.Random(2026)
    created = 0
    for block_name, theme_names in BANK.items():
        block, _ = Block.objects.get_or_create(name=block_name)
        for theme_name in theme_names:
            theme, _ = Theme.objects.get_or_create(block=block, name=theme_name)
            if not Question.objects.filter(theme=theme).exists():
                created += len(Question.objects.bulk_create(_questions_for(theme, rng)))

    User = get_user_model()
    for (username, password), staff in ((DEMO_STUDENT, False), (DEMO_STAFF, True)):
        if not User.objects.filter(username=username).exists():
            User.objects.create_user(username=username, password=password, is_staff=staff, is_superuser=staff)

    # Load-test students share one password, hashed once: hashing is deliberately slow.
    wanted = [f"loadstudent{n:05d}" for n in range(1, students + 1)]
    existing = set(User.objects.filter(username__in=wanted).values_list("username", flat=True))
    missing = [name for name in wanted if name not in existing]
    if missing:
        password = make_password(LOAD_PASSWORD)
        User.objects.bulk_create(User(username=name, password=password) for name in missing)
    return SeedReport(questions_created=created, students_created=len(missing))
