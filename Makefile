# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

# The suite runs against the real local PostgreSQL and Redis unless told otherwise.
TEST_ENV := DJANGO_SECRET_KEY=test-only-secret-key-of-at-least-32-bytes \
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/examplatform} \
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/15}
# The embedded demo: SQLite and a local-memory cache, no services needed.
DEMO_ENV := DJANGO_DEMO=true

.PHONY: run test lint install install-dev bench loadtest clean browser

$(BIN)/.installed: requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed
install-dev: $(BIN)/.installed-dev

run: install
	@mkdir -p var
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput -v0
	$(DEMO_ENV) $(BIN)/python manage.py seed_demo
	$(DEMO_ENV) $(BIN)/python manage.py collectstatic --noinput -v0
	@echo ""
	@echo "  API:        http://$(HOST):$(PORT)/api/v1/"
	@echo "  API docs:   http://$(HOST):$(PORT)/api/docs/"
	@echo "  Admin:      http://$(HOST):$(PORT)/admin/   (staff / staff-pass)"
	@echo "  Student:    student / student-pass"
	@echo "  Health:     http://$(HOST):$(PORT)/health"
	@echo ""
	$(DEMO_ENV) BIND=$(HOST):$(PORT) $(BIN)/gunicorn -c deploy/gunicorn.conf.py examplatform.wsgi

lint: install-dev
	$(BIN)/ruff check .
	$(TEST_ENV) $(BIN)/python manage.py makemigrations --check --dry-run
	$(TEST_ENV) $(BIN)/python manage.py check
	# The production compose file, as the real Compose binary reads it (placeholder secrets).
	DJANGO_SECRET_KEY=compose-check POSTGRES_PASSWORD=compose-check \
		$(BIN)/docker-compose -f deploy/docker-compose.prod.yml --env-file .env.example config --quiet

# The admin browser test drives Debian's headless Chromium (Playwright never downloads a browser here).
/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

browser: /usr/bin/chromium

test: lint browser
	$(TEST_ENV) $(BIN)/pytest $(PYTEST_ARGS)

# Exam-day load test and benchmarks (docs/performance.md): the real server on PostgreSQL and Redis, each with
# its own database (examplatform_load / examplatform_bench / examplatform_big) and Redis db 9.
# make loadtest [MODE=gate|capacity|storm] [STUDENTS=50] [DURATION=120]; make bench [BIG=1]
MODE ?= gate
loadtest: install-dev
	cd deploy/loadtest && MODE=$(MODE) $(if $(STUDENTS),STUDENTS=$(STUDENTS)) $(if $(DURATION),DURATION=$(DURATION)) \
		../../$(BIN)/python run.py

/usr/bin/wrk:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk

bench: install-dev /usr/bin/wrk
	cd deploy/bench && $(if $(BIG),BIG=$(BIG)) ../../$(BIN)/python bench.py

clean:
	rm -rf $(VENV) var staticfiles
