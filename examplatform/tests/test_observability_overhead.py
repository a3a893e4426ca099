"""The overhead measurement runs (its numbers are in docs/observability.md; never asserted here)."""

import os
import subprocess
import sys

from examplatform import testing


def test_the_overhead_measurement_runs_against_the_test_database(db):
    result = subprocess.run(
        [sys.executable, "-m", "examplatform.observability.overhead", "-n", "50", "--rounds", "1"],
        cwd=testing.ROOT, env={**os.environ, "DATABASE_URL": testing.current_test_database_url()},
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "/health with it:" in result.stdout and "SELECT 1 through the timer:" in result.stdout
