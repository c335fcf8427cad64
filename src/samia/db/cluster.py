"""A private PostgreSQL cluster under a directory: for `samia serve` and the test suite.

initdb and pg_ctl refuse to run as root, so as root the cluster runs as the `postgres`
system user; as anyone else it runs as that user. The server listens on a Unix socket
only (no TCP port to collide with or to expose).
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CONF = """
listen_addresses = ''
unix_socket_directories = '{socket_dir}'
port = 5432
max_connections = 200
shared_buffers = 128MB
fsync = {fsync}
synchronous_commit = {sync}
full_page_writes = {fsync}
log_min_messages = warning
log_min_error_statement = panic
shared_preload_libraries = 'pg_stat_statements'
"""


def pg_bin(name: str) -> str:
    """Find a PostgreSQL server binary on PATH or in Debian's versioned directories."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if not candidates:
        raise RuntimeError(f"PostgreSQL binary {name!r} not found: install the postgresql package "
                           "(scripts/setup.sh does) or set DATABASE_URL")
    return candidates[-1]


@dataclass
class Cluster:
    data_dir: Path
    durable: bool = True  # the test suite's throwaway cluster turns fsync off

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:10]
        # Unix socket paths are limited to ~107 bytes: keep the socket short and private.
        self.socket_dir = Path(f"/tmp/samia-pg-{digest}")
        self.run_as = "postgres" if os.geteuid() == 0 else None

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def dsn(self, dbname: str = "postgres", user: str | None = None) -> str:
        if user is None:
            user = "postgres" if self.run_as else pwd.getpwuid(os.geteuid()).pw_name
        return f"postgresql://{user}@/{dbname}?host={self.socket_dir}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True)

    def _prepare_dirs(self) -> None:
        for d in (self.data_dir, self.socket_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.socket_dir.chmod(0o700)
        if self.run_as:
            pw = pwd.getpwnam(self.run_as)
            for d in (self.data_dir, self.socket_dir):
                os.chown(d, pw.pw_uid, pw.pw_gid)
            # the postgres user must be able to reach the data directory
            probe = subprocess.run(["runuser", "-u", self.run_as, "--", "test", "-w", str(self.data_dir)],
                                   check=False)
            if probe.returncode != 0:
                raise RuntimeError(f"{self.data_dir} is not reachable by the postgres user; "
                                   "set SAMIA_DATA_DIR to a directory it can reach (e.g. under /var/tmp)")

    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def init(self) -> None:
        self._prepare_dirs()
        if self.initialized():
            return
        user = ["-U", "postgres"] if self.run_as else []
        self._run(pg_bin("initdb"), "-D", str(self.pgdata), *user, "--auth=trust",
                  "-E", "UTF8", "--locale=C.UTF-8")
        on = "on" if self.durable else "off"
        conf = CONF.format(socket_dir=self.socket_dir, fsync=on, sync=on)
        with open(self.pgdata / "postgresql.conf", "a") as f:
            f.write(conf)

    def running(self) -> bool:
        if not self.initialized():
            return False
        res = subprocess.run(
            (["runuser", "-u", self.run_as, "--"] if self.run_as else [])
            + [pg_bin("pg_ctl"), "status", "-D", str(self.pgdata)],
            capture_output=True, check=False)
        return res.returncode == 0

    def start(self) -> str:
        """Initialise if needed, start if not running, return the superuser DSN."""
        self.init()
        self._prepare_dirs()
        if not self.running():
            self._run(pg_bin("pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.pgdata),
                      "-l", str(self.data_dir / "postgres.log"))
        return self.dsn()

    def stop(self) -> None:
        if self.running():
            self._run(pg_bin("pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.pgdata))

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.socket_dir, ignore_errors=True)
