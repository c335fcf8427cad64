"""deploy/ is what an operator installs: each file is checked by its own tool where the tool
is installed here (promtool, pgbouncer, systemd-analyze), and the env example names only real
settings."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from samia.config import Settings
from samia.db import pooler

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def test_prometheus_config_and_its_rules_pass_promtool(tmp_path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by scripts/setup.sh (Debian's prometheus package)"
    (tmp_path / "token").write_text("a-metrics-token")
    conf = (DEPLOY / "prometheus.yml").read_text()
    assert "/opt/samia/ops/prometheus/slo_rules.yml" in conf and "127.0.0.1:8002" in conf
    conf = conf.replace("/opt/samia", str(ROOT)).replace("/etc/prometheus/samia_metrics_token",
                                                        str(tmp_path / "token"))
    (tmp_path / "prometheus.yml").write_text(conf)
    check = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0 and "SUCCESS" in check.stdout + check.stderr, check.stdout + check.stderr
    assert "rules found" in check.stdout + check.stderr  # the SLO rules were loaded and checked too
    # and a broken config fails
    (tmp_path / "bad.yml").write_text(conf.replace("scrape_interval: 15s", "scrape_interval: fifteen"))
    bad = subprocess.run([promtool, "check", "config", str(tmp_path / "bad.yml")], capture_output=True,
                         text=True, check=False)
    assert bad.returncode != 0


def test_alertmanager_routes_every_alert_to_the_apps_webhook() -> None:
    conf = (DEPLOY / "alertmanager.yml").read_text()
    assert "/webhooks/alertmanager" in conf and "credentials_file" in conf
    amtool = shutil.which("amtool")
    if amtool:  # Debian's prometheus-alertmanager; not installed by setup.sh
        check = subprocess.run([amtool, "check-config", str(DEPLOY / "alertmanager.yml")], capture_output=True,
                               text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr


def test_pgbouncer_starts_with_the_deploy_file_and_checks_passwords(tmp_path, owner_dsn) -> None:
    exe = pooler.binary()
    if exe is None:
        pytest.skip("pgbouncer is not installed (scripts/setup.sh installs it)")
    conf = (DEPLOY / "pgbouncer.ini").read_text()
    assert re.search(r"^pool_mode = transaction$", conf, re.M)
    assert re.search(r"^auth_type = scram-sha-256$", conf, re.M)
    server = conninfo_to_dict(owner_dsn)
    bouncer = pooler.Bouncer(owner_dsn)  # only for its port choice and ownership handling
    bouncer.users = ("authenticator",)
    local = (conf.replace("host=127.0.0.1 port=5432 dbname=samia",
                          f"host={server['host']} port={server.get('port', 5432)} dbname={server['dbname']}")
             .replace("/etc/pgbouncer/userlist.txt", str(bouncer.work / "userlist.txt"))
             .replace("/var/log/postgresql/pgbouncer.log", str(bouncer.work / "pgbouncer.log"))
             .replace("/var/run/postgresql/pgbouncer.pid", str(bouncer.work / "pgbouncer.pid"))
             .replace("unix_socket_dir = /var/run/postgresql", "unix_socket_dir ="))
    try:
        bouncer.start(config=local, userlist='"authenticator" "pooled-secret"\n')
        dsn = f"host=127.0.0.1 port={bouncer.port} dbname=samia user=authenticator"
        with psycopg.connect(dsn + " password=pooled-secret") as conn:
            assert conn.execute("select current_user").fetchone() == ("authenticator",)
        with pytest.raises(psycopg.OperationalError, match="authentication failed"):
            psycopg.connect(dsn + " password=wrong").close()
    finally:
        bouncer.stop()


@pytest.mark.parametrize("unit", ["samia-api@.service", "samia-worker@.service"])
def test_systemd_units_verify(tmp_path, unit) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    text = (DEPLOY / unit).read_text()
    assert "EnvironmentFile=/etc/samia/samia.env" in text and "Restart=on-failure" in text
    # the host's paths and user, pointed at this checkout (the unit is otherwise unchanged)
    local = (text.replace("/opt/samia", str(ROOT)).replace("User=samia", "User=root")
             .replace("Group=samia", "Group=root")
             .replace("/etc/samia/samia.env", str(DEPLOY / "samia.env.example")))
    (tmp_path / unit).write_text(local)
    instance = tmp_path / unit.replace("@.", "@1.")
    check = subprocess.run([analyze, "verify", str(instance)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_env_example_names_only_real_settings() -> None:
    known = {f.alias for f in Settings.model_fields.values() if f.alias}
    named = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (DEPLOY / "samia.env.example").read_text(), re.M))
    assert {"DATABASE_URL", "APP_DATABASE_URL", "QUEUE_DATABASE_URL", "DB_TRANSACTION_POOLER"} <= named
    assert named - known - {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} == set()
