"""SLOs as data → Prometheus rules: the committed rules are the generator's output, promtool
accepts them, and its rule tests fire on a 5xx burst and stay quiet on healthy traffic."""

from __future__ import annotations

import shutil
import subprocess

from samia.core.metrics import Metrics
from samia.ops import slo


def test_committed_rules_are_what_the_generator_makes() -> None:
    assert slo.RULES_FILE.read_text() == slo.render(), "run `samia slo rules --write` after editing ops/slo.yaml"


def test_latency_thresholds_are_histogram_buckets() -> None:
    m = Metrics()
    histograms = {h._name: h._upper_bounds for h in (m.latency, m.db_tx, m.siren_answer, m.call_setup)}
    for s in slo.load()["slos"]:
        if s["kind"] == "latency":
            assert float(s["threshold_seconds"]) in histograms[s["histogram"]], s["name"]


def test_promtool_checks_and_rule_tests_pass() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by scripts/setup.sh (Debian's prometheus package)"
    check = subprocess.run([promtool, "check", "rules", str(slo.RULES_FILE)], capture_output=True, text=True,
                           check=False)
    assert check.returncode == 0 and "55 rules found" in check.stdout, check.stdout + check.stderr
    test = subprocess.run([promtool, "test", "rules", "slo_rules_test.yml"], cwd=slo.RULES_FILE.parent,
                          capture_output=True, text=True, check=False)
    assert test.returncode == 0 and "SUCCESS" in test.stdout, test.stdout + test.stderr


def test_a_broken_rule_would_fail_the_rule_tests(tmp_path) -> None:
    # the rule tests are not vacuous: with the fast-burn threshold raised they fail
    spec = slo.load()
    spec["slos"][0]["objective"] = 0.9  # 10 % budget: the 5xx burst no longer burns 14.4x
    (tmp_path / "slo_rules.yml").write_text(slo.render(spec))
    shutil.copy(slo.RULES_FILE.parent / "slo_rules_test.yml", tmp_path)
    test = subprocess.run([shutil.which("promtool") or "promtool", "test", "rules", "slo_rules_test.yml"],
                          cwd=tmp_path, capture_output=True, text=True, check=False)
    assert test.returncode != 0 and "FAILED" in test.stdout + test.stderr and "got:[]" in test.stdout + test.stderr
