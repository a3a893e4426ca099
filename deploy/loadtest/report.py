"""Percentiles, targets and the summary table of a load-test run."""

import json
import math
from dataclasses import dataclass
from pathlib import Path

HEALTH = "GET /health"
LOGIN = "POST /auth/token/"
CREATE = "POST /sessions/"
ANSWER = "PUT /sessions/[id]/answers/[q]/"
SUBMIT = "POST /sessions/[id]/submit/"
ALL_API = "all API (not /health)"

# p95 targets in ms: the spec's (the gate) and issue 7's (the margin we aim for at 50 students).
SPEC_P95 = {HEALTH: 50, CREATE: 200, ANSWER: 100, SUBMIT: 300, ALL_API: 500}
GOAL_P95 = {HEALTH: 10, CREATE: 50, ANSWER: 25, SUBMIT: 60}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (the value at or below which q% of the requests fall)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class EndpointStats:
    name: str
    count: int
    p50: float
    p95: float
    p99: float
    statuses: dict[str, int]

    @property
    def errors(self) -> dict[str, int]:
        return {status: n for status, n in self.statuses.items() if not status.startswith("2")}


@dataclass
class RunStats:
    endpoints: list[EndpointStats]
    seconds: float
    cpu: object = None  # stack.CpuSnapshot of the run

    def by_name(self) -> dict[str, EndpointStats]:
        return {e.name: e for e in self.endpoints}

    @property
    def requests(self) -> int:
        return sum(e.count for e in self.endpoints if e.name != ALL_API)

    @property
    def errors(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for e in self.endpoints:
            if e.name != ALL_API:
                for status, n in e.errors.items():
                    total[status] = total.get(status, 0) + n
        return total

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.errors.items() if status.startswith("5"))


def load_raw(path: Path, *, seconds: float) -> RunStats:
    raw = json.loads(path.read_text())
    endpoints = []
    everything: list[float] = []
    all_statuses: dict[str, int] = {}
    for name in sorted(raw["latencies_ms"]):
        values = raw["latencies_ms"][name]
        statuses = raw["statuses"].get(name, {})
        endpoints.append(EndpointStats(name, len(values), percentile(values, 50), percentile(values, 95),
                                       percentile(values, 99), statuses))
        if name != HEALTH:
            everything += values
            for status, n in statuses.items():
                all_statuses[status] = all_statuses.get(status, 0) + n
    endpoints.append(EndpointStats(ALL_API, len(everything), percentile(everything, 50),
                                   percentile(everything, 95), percentile(everything, 99), all_statuses))
    return RunStats(endpoints, seconds)


def missed_targets(stats: RunStats, targets: dict[str, float]) -> list[str]:
    found = stats.by_name()
    missed = []
    for name, limit in targets.items():
        endpoint = found.get(name)
        # Too short a run to reach an endpoint (a submit comes ~15 think times in) is not a miss.
        if endpoint is not None and endpoint.count and endpoint.p95 >= limit:
            missed.append(f"{name}: p95 {endpoint.p95:.1f} ms >= {limit} ms")
    return missed


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def table(stats: RunStats) -> str:
    lines = [
        "| endpoint | requests | p50 ms | p95 ms | p99 ms | spec p95 | issue-7 goal p95 | errors |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for e in stats.endpoints:
        spec, goal = SPEC_P95.get(e.name), GOAL_P95.get(e.name)
        spec_cell = f"< {spec} {'ok' if e.p95 < spec else '**MISSED**'}" if spec else ""
        goal_cell = f"< {goal} {'ok' if e.p95 < goal else 'missed'}" if goal else ""
        errors = ", ".join(f"{status}: {n}" for status, n in sorted(e.errors.items())) or "0"
        lines.append(f"| {e.name} | {e.count} | {_ms(e.p50)} | {_ms(e.p95)} | {_ms(e.p99)} | {spec_cell} | "
                     f"{goal_cell} | {errors} |")
    return "\n".join(lines)


def plot_capacity(steps: list[tuple[int, RunStats]], out: Path) -> None:
    """p95 per endpoint against the number of students, with the spec's targets as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    students = [n for n, _ in steps]
    for name in (HEALTH, CREATE, ANSWER, SUBMIT, ALL_API):
        line = ax.plot(students, [s.by_name().get(name).p95 if name in s.by_name() else math.nan
                                  for _, s in steps], marker="o", label=name)
        if name in SPEC_P95:
            ax.axhline(SPEC_P95[name], color=line[0].get_color(), linestyle="--", linewidth=0.8)
    ax.set_xlabel("concurrent students")
    ax.set_ylabel("p95 latency (ms), dashed: spec target")
    ax.set_yscale("log")
    ax.set_title("p95 against students (think time 3-7 s)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
