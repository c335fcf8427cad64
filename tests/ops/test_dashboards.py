"""Grafana dashboards under ops/grafana: valid JSON whose queries name only metrics this
service exports or recording rules ops/prometheus/slo_rules.yml defines."""

from __future__ import annotations

import json
import re

from samia.core.metrics import Metrics
from samia.ops import slo


def exported_names() -> set[str]:
    names = set()
    for family in Metrics().registry.collect():
        base = family.name
        names |= {base, base + "_total", base + "_bucket", base + "_count", base + "_sum"}
    return names


def test_every_dashboard_query_names_a_real_series() -> None:
    records = set(re.findall(r"record: (\S+)", slo.RULES_FILE.read_text()))
    known = exported_names() | records | {"ALERTS"}
    files = sorted((slo.ROOT / "ops" / "grafana").glob("*.json"))
    assert {f.stem for f in files} >= {"api", "jobs", "business"}
    for f in files:
        dash = json.loads(f.read_text())
        assert dash["uid"].startswith("samia-") and dash["panels"]
        for panel in dash["panels"]:
            for target in panel["targets"]:
                for name in re.findall(r"\b((?:samia_|slo:)[a-z0-9_:]+|ALERTS)\b", target["expr"]):
                    assert name in known, f"{f.name}: {panel['title']}: unknown series {name}"


def test_observability_reports_slo_status_from_live_metrics(client, api) -> None:
    admin = api.user("admin")
    for _ in range(5):
        client.get("/api/ops/health")
    r = client.get("/admin/observability", headers=admin.h)
    assert r.status_code == 200, r.text
    body = r.json()
    by = {s["slo"]: s for s in body["slos"]}
    assert set(by) == {"api_availability", "api_latency", "db_latency", "payment_success", "siren_answer"}
    assert by["api_availability"]["events"] >= 5 and by["api_availability"]["status"] in ("ok", "burning")
    assert by["siren_answer"]["status"] == "no_data"
    assert body["dashboards"] == ["api.json", "business.json", "jobs.json"]
    # a burst of server errors shows as burnt budget (counted as the middleware does)
    metrics = client.app.state.platform.metrics
    for _ in range(50):
        metrics.observe_request("GET", "/x", 500, 0.01)
    after = {s["slo"]: s for s in client.get("/admin/observability", headers=admin.h).json()["slos"]}
    assert after["api_availability"]["bad_events"] >= 50 and after["api_availability"]["status"] == "exhausted"
    assert client.get("/admin/observability", headers=api.user("monitor").h).status_code == 403
