"""URL path converters."""


class RowIdConverter:
    """A primary key in a URL: 1 to 2**63 - 1, PostgreSQL's bigint.

    A larger number is no row's id, so the URL doesn't match and the reply is the
    JSON 404 of any unknown URL. Without this it reached the answer's hand-written
    SQL, which PostgreSQL refuses with "bigint out of range" (a 500).
    """

    regex = "[0-9]+"
    MAX = 2**63 - 1

    def to_python(self, value: str) -> int:
        row_id = int(value)
        if not 1 <= row_id <= self.MAX:
            raise ValueError(f"{value} is not a row id")  # Django treats it as "no match"
        return row_id

    def to_url(self, value: int) -> str:
        return str(value)
