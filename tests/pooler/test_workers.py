"""Two job workers in processes of their own share the queue behind the production topology
(tasks through PgBouncer, the queue on its session connection): every job runs exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from .conftest import ROOT, bouncing, pooled_env


def _wait(owner_dsn: str, query: str, done: object, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        with psycopg.connect(owner_dsn) as conn:
            if conn.execute(query).fetchone() == done:
                return
        assert time.monotonic() < deadline, f"timed out waiting for {query!r} = {done!r}"
        time.sleep(0.2)


def test_two_workers_share_the_queue_and_run_each_job_once(owner_dsn, tmp_path: Path) -> None:
    jobs = 24
    with bouncing(owner_dsn, size=2) as bouncer:
        env = pooled_env(owner_dsn, bouncer, SAMIA_DATA_DIR=str(tmp_path), LOG_LEVEL="WARNING")
        workers = [subprocess.Popen([sys.executable, "-m", "samia.cli", "worker", "--concurrency", "2"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
                   for _ in range(2)]
        try:
            # both registered with the queue (procrastinate's heartbeat table) before any job exists
            _wait(owner_dsn, "select count(*) >= 2 from procrastinate.procrastinate_workers", (True,))
            with psycopg.connect(owner_dsn) as conn:
                before = conn.execute("select count(*) from audit_log where event = 'job.purge_old'").fetchone()
                conn.execute("insert into procrastinate.procrastinate_jobs (queue_name, task_name, priority, args) "
                              "select 'default', 'purge_old', 0, jsonb_build_object('timestamp', g) "
                              "from generate_series(1, %s) g", (jobs,))
            _wait(owner_dsn, "select count(*) from procrastinate.procrastinate_jobs "
                             "where task_name = 'purge_old' and status in ('todo', 'doing')", (0,))
            assert all(w.poll() is None for w in workers), "a worker died"
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                try:
                    w.wait(20)
                except subprocess.TimeoutExpired:
                    os.kill(w.pid, 9)
                    w.wait()
    with psycopg.connect(owner_dsn) as conn:
        after = conn.execute("select count(*) from audit_log where event = 'job.purge_old'").fetchone()
        failed = conn.execute("select count(*) from procrastinate.procrastinate_jobs "
                              "where task_name = 'purge_old' and status <> 'succeeded'").fetchone()
    assert before is not None and after is not None
    assert after[0] - before[0] == jobs  # each job's run audits once: none ran twice, none was lost
    assert failed == (0,)
