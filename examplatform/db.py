"""Small SQL helpers the ORM doesn't offer: upserts that tell the caller what happened."""

from datetime import UTC, datetime

from django.db import connection
from django.db.models import Model


def insert_ignore_conflict(model: type[Model], *, conflict: tuple[str, ...], values: dict) -> int | None:
    """`INSERT ... ON CONFLICT (conflict) DO NOTHING RETURNING id`.

    Returns the new row's id, or None when a row with the same conflict key
    exists. On PostgreSQL a conflicting row that is still being inserted by
    another transaction makes this wait for that transaction, so the caller's
    follow-up read sees its committed row.
    """
    table = connection.ops.quote_name(model._meta.db_table)
    columns = [model._meta.get_field(name).column for name in values]
    field_values = [
        model._meta.get_field(name).get_db_prep_save(value, connection) for name, value in values.items()
    ]
    sql = (
        f"INSERT INTO {table} ({', '.join(map(connection.ops.quote_name, columns))}) "
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({', '.join(model._meta.get_field(name).column for name in conflict)}) DO NOTHING "
        "RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, field_values)
        row = cursor.fetchone()
    return row[0] if row else None


def db_datetime(value) -> datetime | None:
    """A datetime read by raw SQL: SQLite hands back naive UTC text, PostgreSQL an aware datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def row_lock_clause() -> str:
    """`FOR SHARE` where the database has row locks (SQLite locks the whole file anyway)."""
    return " FOR SHARE" if connection.features.has_select_for_update else ""
