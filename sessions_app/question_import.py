"""Importing questions from CSV or JSON: every row validated, all or nothing.

CSV columns: block, theme, stem, option_a .. option_f (at least two), correct
(the option letter), explanation, difficulty (1-5, default 3), active (default
true). JSON: a list of objects with the same keys, where `options` may replace
the option_* keys as a list of texts.
"""

import csv
import io
import json
from dataclasses import dataclass, field

from django.db import transaction

from .models import Block, Question, Theme

OPTION_LETTERS = "abcdef"
TRUE_WORDS = {"1", "true", "yes", "y", ""}
FALSE_WORDS = {"0", "false", "no", "n"}


@dataclass
class ImportReport:
    created: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class ImportFormatError(ValueError):
    pass


def parse_rows(*, content: bytes, filename: str) -> list[dict]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError("The file is not UTF-8 text.") from exc
    if filename.lower().endswith(".json"):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ImportFormatError(f"Invalid JSON: {exc}") from exc
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise ImportFormatError("The JSON file must hold a list of objects.")
        return rows
    if filename.lower().endswith(".csv"):
        return list(csv.DictReader(io.StringIO(text)))
    raise ImportFormatError("Upload a .csv or .json file.")


def _clean_row(row: dict) -> dict:
    """The Question fields of one row, or ValueError saying what is wrong with it."""
    block, theme, stem = (str(row.get(key) or "").strip() for key in ("block", "theme", "stem"))
    missing = [name for name, value in (("block", block), ("theme", theme), ("stem", stem)) if not value]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    for name, value, model in (("block", block, Block), ("theme", theme, Theme)):
        if len(value) > (limit := model._meta.get_field("name").max_length):
            raise ValueError(f"{name} name longer than {limit} characters")
    options = _options(row)
    if not 2 <= len(options) <= len(OPTION_LETTERS):
        raise ValueError(f"needs 2 to {len(OPTION_LETTERS)} options, got {len(options)}")
    correct = str(row.get("correct") or "").strip().lower()
    if correct not in {option["id"] for option in options}:
        raise ValueError(f"correct must be one of {', '.join(o['id'] for o in options)}, got {correct!r}")
    try:
        difficulty = int(row.get("difficulty") or 3)
    except (TypeError, ValueError):
        raise ValueError(f"difficulty must be a whole number, got {row.get('difficulty')!r}") from None
    if not 1 <= difficulty <= 5:
        raise ValueError(f"difficulty must be 1 to 5, got {difficulty}")
    active = row.get("active", True)
    if not isinstance(active, bool):
        word = str(active).strip().lower()
        if word not in TRUE_WORDS | FALSE_WORDS:
            raise ValueError(f"active must be true or false, got {active!r}")
        active = word in TRUE_WORDS
    return {
        "block": block,
        "theme": theme,
        "stem": stem,
        "options": options,
        "correct_option": correct,
        "explanation": str(row.get("explanation") or "").strip(),
        "difficulty": difficulty,
        "is_active": active,
    }


def _options(row: dict) -> list[dict]:
    """option_a .. option_f keep their own letters, as in the admin's form (a blank one is left out, so
    `correct` names the column the author meant); a JSON `options` list is lettered in order."""
    texts = row.get("options")
    if texts is None:
        cells = ((letter, row.get(f"option_{letter}")) for letter in OPTION_LETTERS)
        return [{"id": letter, "text": str(text).strip()} for letter, text in cells
                if text is not None and str(text).strip()]
    if not isinstance(texts, list):
        raise ValueError("options must be a list")
    if len(texts) > len(OPTION_LETTERS):
        raise ValueError(f"needs 2 to {len(OPTION_LETTERS)} options, got {len(texts)}")
    if any(text is None or not str(text).strip() for text in texts):
        raise ValueError("options must not be empty")
    return [{"id": letter, "text": str(text).strip()} for letter, text in zip(OPTION_LETTERS, texts, strict=False)]


def import_questions(*, rows: list[dict], dry_run: bool = False) -> ImportReport:
    """Validate every row; create the questions only if all rows are valid.

    Row numbers in the report count data rows from 1 (a CSV header is not a row).
    """
    report = ImportReport()
    cleaned = []
    for number, row in enumerate(rows, start=1):
        try:
            cleaned.append(_clean_row(row))
        except ValueError as exc:
            report.errors.append((number, str(exc)))
    if not rows:
        report.errors.append((0, "the file holds no rows"))
    if report.errors or dry_run:
        return report
    with transaction.atomic():
        blocks = {}
        themes = {}
        questions = []
        for row in cleaned:
            block_name, theme_name = row.pop("block"), row.pop("theme")
            if block_name not in blocks:
                blocks[block_name], _ = Block.objects.get_or_create(name=block_name)
            block = blocks[block_name]
            if (block_name, theme_name) not in themes:
                themes[block_name, theme_name], _ = Theme.objects.get_or_create(block=block, name=theme_name)
            questions.append(Question(block=block, theme=themes[block_name, theme_name], **row))
        Question.objects.bulk_create(questions)
    report.created = len(questions)
    return report
