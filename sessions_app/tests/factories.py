import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from sessions_app.models import Block, ExamSession, Question, Theme


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pass-word-1")


class BlockFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Block

    name = factory.Sequence(lambda n: f"Block {n}")


class ThemeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Theme

    block = factory.SubFactory(BlockFactory)
    name = factory.Sequence(lambda n: f"Theme {n}")


class QuestionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Question

    theme = factory.SubFactory(ThemeFactory)
    block = factory.SelfAttribute("theme.block")
    stem = factory.Sequence(lambda n: f"Question {n}?")
    options = factory.LazyFunction(lambda: [{"id": letter, "text": f"Answer {letter}"} for letter in "abcd"])
    correct_option = "b"
    explanation = "Because B."
    difficulty = 3


class ExamSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExamSession

    user = factory.SubFactory(UserFactory)
    mode = ExamSession.Mode.TUTOR
    question_count = 0
    created_at = factory.LazyFunction(timezone.now)
