"""Mint access tokens for loadstudent00001..N, as if they had logged in before the exam opened.

The capacity run uses them so that it measures the exam itself; the cost of
logging in (password hashing) is measured on its own by the storm mode.
Usage: python deploy/loadtest/mint_tokens.py N OUT.json (with the app's environment).
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examplatform.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

from examplatform.auth import RefreshToken  # noqa: E402


def main(count: int, out: Path) -> None:
    names = [f"loadstudent{n:05d}" for n in range(1, count + 1)]
    users = get_user_model().objects.filter(username__in=names)
    tokens = {user.username: str(RefreshToken.for_user(user).access_token) for user in users}
    if len(tokens) != count:
        sys.exit(f"only {len(tokens)} of {count} load students exist: run seed_demo --students {count}")
    out.write_text(json.dumps(tokens))


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
