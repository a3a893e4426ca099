"""The Prometheus alert rules (deploy/prometheus/alerts.yml) refer to exported metrics and real routes."""

import re

import pytest
import yaml
from django.urls import URLPattern, URLResolver, get_resolver

from examplatform.tests.test_observability_metrics import ALERTS, scrape

pytestmark = pytest.mark.django_db


def _routes(patterns=None, prefix: str = "") -> set[str]:
    found = set()
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            found |= _routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            found.add(prefix + str(entry.pattern))
    return found


def test_the_alert_rules_are_well_formed_and_use_exported_metrics_and_real_routes(api, bank):
    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    api.get("/api/v1/blocks/")
    exported = {name for name, _ in scrape()}
    routes = _routes()
    wanted = {"HealthP95OverTarget", "SessionCreateP95OverTarget", "AnswerP95OverTarget", "SubmitP95OverTarget",
              "ApiP95OverTarget", "High5xxRate", "DbPoolNearExhaustion", "RedisCircuitBreakerOpen",
              "DbPoolRequestsWaiting", "ExamModeOnTooLong", "ExamModeOnWithoutEndTime"}
    assert wanted <= {rule["alert"] for rule in rules}
    for rule in rules:
        expr = rule["expr"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), rule["alert"]
        for metric in re.findall(r"\bexamplatform_[a-z_]+", expr):
            assert metric in exported, (rule["alert"], metric)
        for route in re.findall(r'route="([^"]+)"', expr):
            assert route in routes, (rule["alert"], route)


def test_the_p95_alerts_use_the_specs_targets():
    rules = {rule["alert"]: rule["expr"] for group in yaml.safe_load(ALERTS.read_text())["groups"]
             for rule in group["rules"]}
    targets = {"HealthP95OverTarget": 0.05, "SessionCreateP95OverTarget": 0.2, "AnswerP95OverTarget": 0.1,
               "SubmitP95OverTarget": 0.3, "ApiP95OverTarget": 0.5}
    for alert, seconds in targets.items():
        assert "histogram_quantile(0.95," in rules[alert]
        assert float(rules[alert].rsplit(">", 1)[1]) == seconds, alert
