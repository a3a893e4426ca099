"""SQL text made safe to log: every literal and placeholder becomes `?`.

Parameter values never reach the SQL text (Django passes them separately), but
hand-written SQL can inline literals, and literals can hold answers or personal data.
"""

import re
from functools import lru_cache

from sqlparse import lexer, tokens

MAX_LENGTH = 2000
_LIST_OF_PLACEHOLDERS = re.compile(r"\(\?(?:, \?)+\)")


@lru_cache(maxsize=512)
def normalize(sql: str) -> str:
    parts = []
    for ttype, value in lexer.tokenize(sql):
        if ttype in tokens.Comment:
            continue
        if ttype in tokens.Whitespace or ttype in tokens.Newline:
            parts.append(" ")
        elif ttype in tokens.Name.Placeholder or (ttype in tokens.Literal and ttype not in tokens.String.Symbol):
            # String.Symbol is a "quoted identifier": table and column names stay.
            parts.append("?")
        else:
            parts.append(value)
    text = re.sub(r" +", " ", "".join(parts)).strip()
    # `IN (%s, %s, ...)` differs only by list length: one shape per query.
    text = _LIST_OF_PLACEHOLDERS.sub("(...)", text)
    return text if len(text) <= MAX_LENGTH else text[:MAX_LENGTH] + "..."
