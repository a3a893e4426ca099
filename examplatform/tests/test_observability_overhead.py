"""The overhead measurement runs, alone and in `make bench` (its numbers are in the docs; never asserted here)."""

import importlib.util
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


def test_the_benchmark_measures_it_and_writes_it_into_its_report(db):
    spec = importlib.util.spec_from_file_location("bench", testing.ROOT / "deploy" / "bench" / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    env = {**os.environ, "DATABASE_URL": testing.current_test_database_url()}
    table = bench.overhead_table(bench.middleware_overhead(env, n=50, rounds=1))
    assert "| added by the middleware |" in table and "| added per SQL query (execute wrapper) |" in table
    assert "best of 1 rounds of 50" in table
