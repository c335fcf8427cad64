"""Backups and point-in-time restore of the embedded cluster with pgBackRest: full and
differential backups, continuous WAL archiving, restore to a timestamp into a new data
directory, and the restore drill that measures what it achieved (RPO/RTO).

For a managed PostgreSQL (Supabase) the provider's PITR does this job; RUNBOOKS/backup-restore.md
says how to drive it and how to run the same drill against a restored branch."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from samia.db.cluster import Cluster

STANZA = "samia"
ARCHIVE_TIMEOUT_S = 60   # the RPO bound: a quiet cluster still ships a WAL segment every minute


@dataclass
class Backups:
    cluster: Cluster

    @property
    def root(self) -> Path:
        return self.cluster.data_dir / "pgbackrest"

    @property
    def conf(self) -> Path:
        return self.root / "pgbackrest.conf"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        exe = shutil.which("pgbackrest")
        if exe is None:
            raise RuntimeError("pgbackrest not found: scripts/setup.sh installs Debian's pgbackrest package")
        cmd = [exe, f"--config={self.conf}", f"--stanza={STANZA}", *args]
        if self.cluster.run_as:
            cmd = ["runuser", "-u", self.cluster.run_as, "--", *cmd]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if check and res.returncode != 0:
            raise RuntimeError(f"pgbackrest {args[-1]} failed: {res.stderr.strip() or res.stdout.strip()}")
        return res

    def setup(self) -> None:
        """Write the configuration, turn on WAL archiving (restarts the cluster once) and
        create the stanza. Idempotent."""
        self.cluster.start()
        self.cluster._run("mkdir", "-p", str(self.root / "repo"), str(self.root / "log"), str(self.root / "lock"))
        self.conf.write_text(f"""[global]
repo1-path={self.root / 'repo'}
repo1-retention-full=2
repo1-retention-diff=6
log-path={self.root / 'log'}
lock-path={self.root / 'lock'}
log-level-console=warn
log-level-file=info
start-fast=y
compress-type=zst

[{STANZA}]
pg1-path={self.cluster.pgdata}
pg1-socket-path={self.cluster.socket_dir}
pg1-port=5432
""")
        self.conf.chmod(0o644)
        command = f"pgbackrest --config={self.conf} --stanza={STANZA} archive-push %p"
        with psycopg.connect(self.cluster.dsn(), autocommit=True) as conn:
            current = conn.execute("select current_setting('archive_mode'), current_setting('archive_command')"
                                   ).fetchone()
            if current != ("on", command):
                conn.execute("alter system set archive_mode = 'on'")
                conn.execute(sql.SQL("alter system set archive_command = {}").format(sql.Literal(command)))
                conn.execute(sql.SQL("alter system set archive_timeout = {}").format(
                    sql.Literal(f"{ARCHIVE_TIMEOUT_S}s")))
                conn.execute("alter system set wal_level = 'replica'")
                restart = True
            else:
                restart = False
        if restart:
            self.cluster.stop()
            self.cluster.start()
        self._run("stanza-create")
        self._run("check")

    def backup(self, kind: str = "full") -> str:
        if kind not in ("full", "diff", "incr"):
            raise ValueError("kind is full, diff or incr")
        self._run(f"--type={kind}", "backup")
        return self.info()

    def info(self) -> str:
        return self._run("info").stdout

    def archived_up_to_now(self, timeout: float = 60) -> None:
        """Close the current WAL segment and wait until it is in the repository."""
        with psycopg.connect(self.cluster.dsn(), autocommit=True) as conn:
            lsn = conn.execute("select pg_switch_wal()").fetchone()[0]  # type: ignore[index]
            segment = conn.execute("select pg_walfile_name(%s)", (lsn,)).fetchone()[0]  # type: ignore[index]
            deadline = time.monotonic() + timeout
            while True:
                last = conn.execute("select last_archived_wal from pg_stat_archiver").fetchone()[0]  # type: ignore[index]
                if last is not None and last >= segment:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"WAL segment {segment} was not archived within {timeout} s")
                time.sleep(0.2)

    def restore(self, target: dt.datetime, into: Path) -> Cluster:
        """Restore the stanza to `target` into a new data directory and start it there
        (its own socket, archiving off), promoted and ready for reads and writes."""
        restored = Cluster(into, durable=True)
        restored._prepare_dirs()
        if restored.initialized():
            raise RuntimeError(f"{into} already holds a cluster")
        restored._run("mkdir", "-p", str(restored.pgdata))
        restored._run("chmod", "700", str(restored.pgdata))
        when = target.astimezone(dt.UTC)
        stamp = when.strftime("%Y-%m-%d %H:%M:%S") + f".{when.microsecond // 1000:03d}+00"
        self._run(f"--pg1-path={restored.pgdata}", "--type=time", f"--target={stamp}",
                  "--target-action=promote", "restore")
        with open(restored.pgdata / "postgresql.auto.conf", "a") as f:
            f.write(f"\nunix_socket_directories = '{restored.socket_dir}'\narchive_mode = 'off'\n")
        restored.start()
        return restored


@dataclass
class DrillResult:
    rows_before_target: int
    rows_after_target: int
    restored_rows: int
    lost_before_target: int
    leaked_after_target: int
    rpo_seconds: float      # committed-before-target data the restore could not bring back (0 = none)
    rto_seconds: float      # restore start → restored cluster answering queries

    @property
    def ok(self) -> bool:
        return self.lost_before_target == 0 and self.leaked_after_target == 0 and self.restored_rows > 0

    def report(self) -> str:
        return (f"restore drill {'PASSED' if self.ok else 'FAILED'}: {self.restored_rows} rows restored "
                f"({self.rows_before_target} written before the target, {self.rows_after_target} after); "
                f"lost {self.lost_before_target}, leaked {self.leaked_after_target}; "
                f"RPO achieved {self.rpo_seconds:.1f} s, RTO {self.rto_seconds:.1f} s")


def drill(work: Path, rows: int = 200) -> DrillResult:
    """Write rows, note the time, write more, restore to that time into a new data directory
    and check that exactly the first rows are there."""
    source = Cluster(work / "source", durable=True)
    backups = Backups(source)
    restored: Cluster | None = None
    try:
        backups.setup()
        with psycopg.connect(source.dsn(), autocommit=True) as conn:
            conn.execute("create table if not exists drill (id bigint primary key, phase text, at timestamptz)")
            conn.execute("insert into drill select i, 'base', clock_timestamp() from generate_series(1, %s::int) i",
                         (rows,))
        backups.backup("full")
        with psycopg.connect(source.dsn(), autocommit=True) as conn:
            conn.execute("insert into drill select i, 'before', clock_timestamp() "
                         "from generate_series(%s::int, %s::int) i", (rows + 1, 2 * rows))
            time.sleep(1.1)
            target = conn.execute("select clock_timestamp()").fetchone()[0]  # type: ignore[index]
            time.sleep(1.1)
            conn.execute("insert into drill select i, 'after', clock_timestamp() "
                         "from generate_series(%s::int, %s::int) i", (2 * rows + 1, 3 * rows))
        backups.backup("diff")  # taken after the target: the restore must still stop at the target
        with psycopg.connect(source.dsn(), autocommit=True) as conn:
            conn.execute("insert into drill select i, 'after', clock_timestamp() "
                         "from generate_series(%s::int, %s::int) i", (3 * rows + 1, 4 * rows))
        backups.archived_up_to_now()
        started = time.monotonic()
        restored = backups.restore(target, work / "restored")
        with psycopg.connect(restored.dsn()) as conn:
            got: dict[str, int] = dict(conn.execute("select phase, count(*) from drill group by phase").fetchall())
            newest = conn.execute("select max(at) from drill").fetchone()[0]  # type: ignore[index]
        rto = time.monotonic() - started
        expected_before = 2 * rows
        restored_rows = sum(got.values())
        return DrillResult(
            rows_before_target=expected_before, rows_after_target=2 * rows, restored_rows=restored_rows,
            lost_before_target=expected_before - got.get("base", 0) - got.get("before", 0),
            leaked_after_target=got.get("after", 0),
            rpo_seconds=0.0 if got.get("before", 0) == rows else (target - newest).total_seconds(),
            rto_seconds=rto)
    finally:
        if restored is not None:
            restored.destroy()
        source.destroy()
