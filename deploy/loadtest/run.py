"""`make loadtest`: students on exam day against the production stack, then the invariant check.

Modes (MODE=...):
- gate (default): STUDENTS (50) for DURATION seconds (120), real log-ins ramped at
  SPAWN_RATE per second; exits non-zero on any error, any 5xx, a missed spec target
  (or a missed issue-7 goal with GOALS=1) or a broken invariant.
- capacity: STEPS students (e.g. 250,500,...) for STEP_DURATION each, with tokens
  minted before the run (students log in before the exam opens; the log-in cost is
  the storm mode's); reports the largest step meeting every spec target with no
  errors, and plots p95 against students.
- storm: STUDENTS all log in within STORM_SECONDS (60); reports what it costs.

Think time is THINK_MIN..THINK_MAX seconds (3..7). Results go to
deploy/loadtest/results/<time>-<mode>/ (CSV, locust's HTML, summary.md, PNG).
"""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import stack
from report import GOAL_P95, LOGIN, SPEC_P95, RunStats, load_raw, missed_targets, plot_capacity, table

from examplatform import capacity

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile.py"


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def run_locust(url: str, out: Path, *, students: int, spawn_rate: float, seconds: int, env: dict,
               name: str, server_pids: list[int]) -> RunStats:
    """One headless locust run: `students` students plus the health probe."""
    raw = out / f"{name}-raw.json"
    locust_env = {**env, "ACKS_FILE": str(out / "acks.jsonl"), "RAW_FILE": str(raw)}
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", url,
        "--users", str(students + 1), "--spawn-rate", str(spawn_rate), "--run-time", f"{seconds}s",
        "--stop-timeout", "10", "--csv", str(out / name), "--html", str(out / f"{name}.html"),
        "--only-summary", "--loglevel", "WARNING",
    ]
    before = stack.cpu_snapshot(server_pids)
    subprocess.run(command, env=locust_env, check=False, cwd=HERE)
    stats = load_raw(raw, seconds=seconds)
    stats.cpu = stack.cpu_snapshot(server_pids).minus(before)
    return stats


def invariants(env: dict, out: Path) -> tuple[bool, str]:
    check = stack.manage("check_exam_invariants", "--expire-overdue", "--acks", str(out / "acks.jsonl"),
                         env=env, capture=True)
    text = (check.stdout + check.stderr).strip()
    return check.returncode == 0, text


def header(mode: str, facts: dict[str, str]) -> str:
    return "\n".join([f"## Load test ({mode}) {facts['date']}", "",
                      *(f"- {k}: {v}" for k, v in facts.items() if k != "date"), ""])


def gate(env: dict, out: Path) -> int:
    students, seconds = env_int("STUDENTS", 50), env_int("DURATION", 120)
    workers = env_int("UVICORN_WORKERS", capacity.default_workers())
    model = os.environ.get("SERVER_WORKER_CLASS", "sync")
    spawn_rate = float(os.environ.get("SPAWN_RATE", "2"))
    stack.prepare(env, students=students)
    facts = stack.machine() | {"students": str(students), "duration": f"{seconds} s",
                               "think time": f"{env['THINK_MIN']}-{env['THINK_MAX']} s",
                               "log-in": f"real (pbkdf2), ramp {spawn_rate}/s",
                               "server": f"gunicorn {model} x {workers} workers"}
    with stack.server(env, workers=workers, worker_model=model) as srv, \
            stack.ConnectionWatch(env["DATABASE_URL"]) as watch:
        stats = run_locust(srv.url, out, students=students, spawn_rate=spawn_rate, seconds=seconds, env=env,
                           name="gate", server_pids=srv.worker_pids())
    facts["load after"] = stack.load_average()
    cap = stack.pool_cap(workers=workers)
    ok_invariants, invariant_text = invariants(env, out)
    spec_missed = missed_targets(stats, SPEC_P95)
    goal_missed = missed_targets(stats, GOAL_P95)
    failed = [*spec_missed, *(f"{status} errors: {n}" for status, n in stats.errors.items())]
    if os.environ.get("GOALS") == "1":
        failed += goal_missed
    if not ok_invariants:
        failed.append("invariants violated")
    summary = "\n".join([
        header("gate", facts), table(stats), "",
        f"Sustained {stats.requests / seconds:.1f} req/s; errors by status: {stats.errors or 'none'}.",
        f"CPU during the run: {stats.cpu}.",
        f"Peak DB connections (pg_stat_activity): {watch.peak} ({watch.peak_active} active) against a pool cap"
        f" of {cap} ({workers} workers x their pool max).",
        f"Invariants: {'hold' if ok_invariants else 'VIOLATED'}: {invariant_text.splitlines()[-1]}",
        f"Issue-7 goals missed: {', '.join(goal_missed) or 'none'}.",
        f"Result: {'FAIL: ' + '; '.join(failed) if failed else 'PASS'}", "",
    ])
    finish(out, summary, invariant_text)
    return 1 if failed else 0


def capacity_mode(env: dict, out: Path) -> int:
    steps = [int(n) for n in os.environ.get("STEPS", "250,500,750,1000,1250,1500").split(",")]
    seconds = env_int("STEP_DURATION", 150)
    ramp = env_int("RAMP", 30)
    workers = env_int("UVICORN_WORKERS", capacity.default_workers())
    model = os.environ.get("SERVER_WORKER_CLASS", "sync")
    stack.prepare(env, students=max(steps))
    tokens = out / "tokens.json"
    subprocess.run([sys.executable, str(HERE / "mint_tokens.py"), str(max(steps)), str(tokens)], env=env,
                   check=True)
    facts = stack.machine() | {"steps": ", ".join(map(str, steps)), "each step": f"{seconds} s (ramp {ramp} s)",
                               "think time": f"{env['THINK_MIN']}-{env['THINK_MAX']} s",
                               "log-in": "tokens minted before the run (see the storm mode)",
                               "server": f"gunicorn {model} x {workers} workers"}
    results: list[tuple[int, RunStats, list[str], str]] = []
    for students in steps:
        with stack.server(env, workers=workers, worker_model=model) as srv:
            load_before = stack.load_average()
            stats = run_locust(srv.url, out, students=students, spawn_rate=max(1, students / ramp),
                               seconds=seconds, env={**env, "TOKENS_FILE": str(tokens)}, name=f"step-{students}",
                               server_pids=srv.worker_pids())
        missed = missed_targets(stats, SPEC_P95) + [f"{s} errors: {n}" for s, n in stats.errors.items()]
        results.append((students, stats, missed, load_before))
        print(f"{students} students: {'ok' if not missed else '; '.join(missed)}", flush=True)
        if missed and os.environ.get("KEEP_GOING") != "1":
            break
    passing = [students for students, _, missed, _ in results if not missed]
    best = max(passing) if passing else 0
    plot_capacity([(n, s) for n, s, _, _ in results], out / "capacity-p95.png")
    ok_invariants, invariant_text = invariants(env, out)
    rows = ["| students | req/s | answer p95 | create p95 | submit p95 | health p95 | all API p95 | errors |"
            " load before | CPU (core-s) | result |", "|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|"]
    for students, stats, missed, load in results:
        e = stats.by_name()
        p95 = {name: f"{e[name].p95:.0f}" for name in e}
        rows.append(
            f"| {students} | {stats.requests / seconds:.0f} | {p95.get('PUT /sessions/[id]/answers/[q]/', '-')} | "
            f"{p95.get('POST /sessions/', '-')} | {p95.get('POST /sessions/[id]/submit/', '-')} |"
            f" {p95.get('GET /health', '-')} | {p95.get('all API (not /health)', '-')} | {stats.errors or 0} |"
            f" {load} | {stats.cpu} | {'ok' if not missed else '; '.join(missed)} |"
        )
    summary = "\n".join([
        header("capacity", facts), *rows, "",
        f"Largest step meeting every spec target with no errors: **{best} students** (think time "
        f"{env['THINK_MIN']}-{env['THINK_MAX']} s).",
        f"Invariants: {'hold' if ok_invariants else 'VIOLATED'}: {invariant_text.splitlines()[-1]}",
        "Plot: capacity-p95.png", "",
    ])
    finish(out, summary, invariant_text)
    return 0 if best and ok_invariants else 1


def storm(env: dict, out: Path) -> int:
    students, window = env_int("STUDENTS", 300), env_int("STORM_SECONDS", 60)
    workers = env_int("UVICORN_WORKERS", capacity.default_workers())
    model = os.environ.get("SERVER_WORKER_CLASS", "sync")
    stack.prepare(env, students=students)
    seconds = env_int("DURATION", window * 4)
    with stack.server(env, workers=workers, worker_model=model) as srv:
        facts = stack.machine() | {"students": str(students), "log-ins spread over": f"{window} s",
                                   "server": f"gunicorn {model} x {workers} workers"}
        stats = run_locust(srv.url, out, students=students, spawn_rate=students / window, seconds=seconds,
                           env={**env, "LOGIN_ONLY": "1"}, name="storm", server_pids=srv.worker_pids())
        cpu = stats.cpu.server
    login = stats.by_name().get(LOGIN)
    done = login.statuses.get("200", 0) if login else 0
    per_login = cpu / done if done else float("nan")
    summary = "\n".join([
        header("log-in storm", facts), table(stats), "", f"CPU during the run: {stats.cpu}.",
        f"{done} of {students} students logged in; server CPU {cpu:.1f} s, **{per_login * 1000:.0f} ms CPU per"
        f" log-in**, so at most ~{(os.cpu_count() or 1) / per_login:.1f} log-ins/s with every core on it.",
        "",
    ])
    finish(out, summary, "")
    return 0 if done == students else 1


def finish(out: Path, summary: str, invariant_text: str) -> None:
    (out / "summary.md").write_text(summary)
    if invariant_text:
        (out / "invariants.txt").write_text(invariant_text + "\n")
    print(summary)
    print(f"results: {out}")


def main() -> int:
    mode = os.environ.get("MODE", "gate")
    out = HERE / "results" / f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{mode}"
    out.mkdir(parents=True, exist_ok=True)
    env = stack.stack_env(THINK_MIN=os.environ.get("THINK_MIN", "3"), THINK_MAX=os.environ.get("THINK_MAX", "7"))
    (out / "run.json").write_text(json.dumps({k: os.environ.get(k) for k in (
        "MODE", "STUDENTS", "DURATION", "STEPS", "STEP_DURATION", "THINK_MIN", "THINK_MAX", "SERVER_WORKER_CLASS",
        "UVICORN_WORKERS", "SPAWN_RATE")}))
    return {"gate": gate, "capacity": capacity_mode, "storm": storm}[mode](env, out)


if __name__ == "__main__":
    sys.exit(main())
