"""Observability: timing headers, per-request JSON logs, slow-request/slow-SQL reports, Prometheus metrics.

Everything ops need is described in docs/observability.md. Importing this package
loads no Django code: gunicorn's master imports `gunicorn_hooks` before Django starts.
"""
