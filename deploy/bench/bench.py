"""`make bench`: throughput and latency per endpoint against the real server, as ratios to an upsert ceiling.

For each server model in MODELS (default: sync,gthread,uvicorn,granian; the first is the
headline), one server run measures, at 10 and 50 connections (CONNECTIONS), the
ceiling (PUT /test/bench/upsert/: DRF and one upsert, nothing else) before and
after health, create, answer, submit and review, so every figure is also a
ratio to the ceiling measured minutes apart on the same noisy machine. Then the
SQL statements per endpoint (and submit at 10/50/200 questions), and the plans.
First, before any load: what the observability middleware adds to /health, in process
(examplatform/observability/overhead.py).

BIG=1 runs on examplatform_big, generated once with `manage.py bulk_generate`
(1M sessions, 10M answers) and kept for re-runs; add EXPLAIN plans there.
ENDPOINTS picks a subset. Load generator: wrk (Debian) with requests.lua, -t BENCH_THREADS (2),
BENCH_SECONDS (10) per figure.
Results: deploy/bench/results/<time>/bench.md and bench.json.
"""

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "loadtest"))

import stack  # noqa: E402

from examplatform import capacity  # noqa: E402

ENDPOINTS = os.environ.get("ENDPOINTS", "health,create,answer,submit,review").split(",")
GTHREAD_THREADS = int(os.environ.get("GTHREAD_THREADS", "4"))
BIG_SESSIONS = 1_000_000


def wrk(url: str, data: Path, *, connections: int, seconds: int, threads: int) -> dict:
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
         "-s", str(HERE / "requests.lua"), url],
        env={**os.environ, "BENCH_DATA": str(data), "BENCH_THREADS": str(threads)},
        capture_output=True, text=True, check=False,
    )
    if out.returncode:
        raise RuntimeError(f"wrk failed on {data.name}: {out.stderr or out.stdout}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["rps"] = result["requests"] / result["seconds"]
    result["load"] = stack.load_average()
    return result


def fixtures(env: dict, out: Path, *, students: int, submits: int, runs: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(HERE / "fixtures.py"), str(out), str(students), str(submits), str(runs)],
                   env=env, check=True)


def measure_model(env: dict, out: Path, model: str, *, connections: list[int], seconds: int, threads: int,
                  students: int) -> dict:
    workers = int(os.environ.get("UVICORN_WORKERS") or capacity.default_workers())
    data = out / f"data-{model}"
    # Enough fresh sessions that no submit is a replay: a generous guess at the rate, per level.
    fixtures(env, data, students=students, submits=int(os.environ.get("SUBMITS", "4000")) * len(connections),
             runs=len(connections))
    figures: dict = {"workers": workers, "threads": GTHREAD_THREADS if model == "gthread" else 1, "runs": {}}
    server_env = {**env, "ENABLE_TEST_ENDPOINTS": "true"}
    with stack.server(server_env, workers=workers, worker_model=model, threads=figures["threads"]) as srv:
        for warm in ("ceiling", "create", "review"):  # each worker's first requests import and compile
            wrk(srv.url, data / f"{warm}.tsv", connections=10, seconds=2, threads=threads)
        submit_lines = (data / "submit.tsv").read_text().splitlines()
        per_level = len(submit_lines) // len(connections)
        for n, level in enumerate(connections):
            (data / f"submit-{level}.tsv").write_text("\n".join(submit_lines[n * per_level:(n + 1) * per_level]) + "\n")
            runs = {"ceiling": wrk(srv.url, data / "ceiling.tsv", connections=level, seconds=seconds, threads=threads)}
            for endpoint in ENDPOINTS:
                source = data / {"submit": f"submit-{level}.tsv", "answer": f"answer-{n}.tsv"}.get(
                    endpoint, f"{endpoint}.tsv")
                time.sleep(3)  # let the previous run's queued requests drain before measuring the next
                runs[endpoint] = wrk(srv.url, source, connections=level, seconds=seconds, threads=threads)
                print(f"  {model} c={level} {endpoint}: {runs[endpoint]['rps']:.0f} req/s p95 "
                      f"{runs[endpoint]['p95']:.1f} ms", flush=True)
            after = wrk(srv.url, data / "ceiling.tsv", connections=level, seconds=seconds, threads=threads)
            runs["ceiling_after"] = after
            runs["ceiling_rps"] = (runs["ceiling"]["rps"] + after["rps"]) / 2
            figures["runs"][level] = runs
    return figures


def middleware_overhead(env: dict, *, n: int = 2000, rounds: int = 5) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "examplatform.observability.overhead", "-n", str(n), "--rounds", str(rounds), "--json"],
        cwd=stack.ROOT, env=env, check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def overhead_table(figures: dict) -> str:
    health, sql = figures["health"], figures.get("sql")
    rows = [("/health without the middleware", health["without"]),
            ("/health with it", health["with"]),
            ("added by the middleware", health["with"] - health["without"]),
            ("of which the JSON request line", health["with"] - health["with_no_log_line"])]
    if sql:
        rows.append(("added per SQL query (execute wrapper)", sql["select_1_timed"] - sql["select_1"]))
    return "\n".join([
        f"Observability middleware on /health (`python -m examplatform.observability.overhead`, in process,"
        f" best of {figures['rounds']} rounds of {figures['n']}):", "", "| | µs |", "|---|---:|",
        *(f"| {name} | {us:.1f} |" for name, us in rows), "",
    ])


def ensure_big(env: dict) -> None:
    stack.prepare(env, students=60)
    count = int(stack.manage("shell", "-c", "from sessions_app.models import ExamSession as E;"
                             " print(E.objects.filter(user__username__startswith='benchuser').count())",
                             env=env, capture=True).stdout.strip().splitlines()[-1])
    if count < BIG_SESSIONS:
        print(f"generating {BIG_SESSIONS - count} sessions into {env['DATABASE_URL']} (once; kept for re-runs)")
        stack.manage("bulk_generate", "--sessions", str(BIG_SESSIONS - count), env=env)


def table(results: dict, connections: list[int]) -> str:
    lines = []
    for model, figures in results.items():
        lines += [f"#### {model} ({figures['workers']} workers x {figures['threads']} threads)", "",
                  "| endpoint | conns | req/s | ratio to ceiling | p50 ms | p95 ms | p99 ms | errors | replays |"
                  " load |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for level in connections:
            runs = figures["runs"][level]
            ceiling = runs["ceiling_rps"]
            for name in ["ceiling", *ENDPOINTS, "ceiling_after"]:
                r = runs[name]
                errors = r["non2xx"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
                lines.append(f"| {name.replace('_', ' ')} | {level} | {r['rps']:.0f} | {r['rps'] / ceiling:.0%} |"
                             f" {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | {errors} | {r['replays']} |"
                             f" {r['load']} |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    big = os.environ.get("BIG") == "1"
    database = "examplatform_big" if big else "examplatform_bench"
    env = stack.stack_env(DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{database}")
    out = HERE / "results" / f"{datetime.now(UTC):%Y%m%d-%H%M%S}{'-big' if big else ''}"
    out.mkdir(parents=True, exist_ok=True)
    models = os.environ.get("MODELS", "sync,gthread,uvicorn,granian").split(",")
    connections = [int(c) for c in os.environ.get("CONNECTIONS", "10,50").split(",")]
    seconds = int(os.environ.get("BENCH_SECONDS", "10"))
    threads = int(os.environ.get("BENCH_THREADS", "2"))
    students = 60
    if big:
        ensure_big(env)
    else:
        stack.prepare(env, students=students)
    facts = stack.machine() | {"database": database, "wrk": f"-t{threads}, {seconds} s per figure",
                               "models": ", ".join(models)}
    started = time.monotonic()
    overhead = middleware_overhead(env)  # first, while no server loads the machine
    print(overhead_table(overhead), flush=True)
    results = {}
    for model in models:
        results[model] = measure_model(env, out, model, connections=connections, seconds=seconds, threads=threads,
                                       students=students)
    queries = json.loads(subprocess.run([sys.executable, str(HERE / "query_counts.py")], env=env, check=True,
                                        capture_output=True, text=True).stdout)
    plans = subprocess.run([sys.executable, str(HERE / "explain.py")], env=env, check=True, capture_output=True,
                           text=True).stdout
    facts["load after"] = stack.load_average()
    facts["took"] = f"{time.monotonic() - started:.0f} s"
    report = "\n".join([
        f"## Benchmark {facts['date']}{' (1M sessions, 10M answers)' if big else ''}", "",
        *(f"- {k}: {v}" for k, v in facts.items() if k != "date"), "", overhead_table(overhead),
        table(results, connections),
        "SQL statements per request:", "", "| endpoint | statements |", "|---|---:|",
        *(f"| {name} | {n} |" for name, n in queries["endpoints"].items()), "",
        "Submit by session size: " + ", ".join(f"{q} questions: {n}" for q, n in
                                               queries["submit_by_questions"].items()), "",
        "### Plans", "", plans,
    ])
    (out / "bench.md").write_text(report)
    (out / "bench.json").write_text(
        json.dumps({"facts": facts, "overhead": overhead, "results": results, "queries": queries}, indent=1))
    print(report)
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
