"""PgBouncer in transaction pooling mode in front of a PostgreSQL server, started from
Debian's `pgbouncer` binary: the production topology on one machine, for the test suite,
the bench and the soak. (A real host runs the packaged service with deploy/pgbouncer.ini.)

Like the embedded cluster, it runs as the cluster's owner when started by root (PgBouncer
refuses to run as root) and listens on loopback only."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

CONF = """\
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {work}/userlist.txt
pool_mode = transaction
default_pool_size = {size}
max_db_connections = {size}
reserve_pool_size = 0
max_client_conn = 1000
server_reset_query =
logfile = {work}/pgbouncer.log
pidfile = {work}/pgbouncer.pid
"""


def binary() -> str | None:
    return shutil.which("pgbouncer") or next((p for p in ("/usr/sbin/pgbouncer",) if os.path.exists(p)), None)


@dataclass
class Bouncer:
    """`server_dsn` is any DSN of the server behind it; `size` server connections per
    database and user (1: every client shares one server connection)."""
    server_dsn: str
    size: int = 10
    users: tuple[str, ...] = ("authenticator",)
    port: int = 0
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="samia-pgb-")))
    _proc: subprocess.Popen[bytes] | None = None

    def dsn(self, dbname: str, user: str = "authenticator") -> str:
        return make_conninfo("", host="127.0.0.1", port=self.port, dbname=dbname, user=user)

    def start(self, config: str | None = None, userlist: str | None = None) -> Bouncer:
        """Start on a free loopback port, with our transaction-pooling config or `config` (whose
        `listen_port` is then set to that port)."""
        exe = binary()
        if exe is None:
            raise RuntimeError("pgbouncer not found: scripts/setup.sh installs Debian's pgbouncer")
        params = conninfo_to_dict(self.server_dsn)
        host = str(params.get("host") or "/var/run/postgresql")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        if config is None:
            config = CONF.format(host=host, port=params.get("port", 5432), listen=self.port, work=self.work,
                                 size=self.size)
        else:
            config = re.sub(r"(?m)^listen_port = .*$", f"listen_port = {self.port}", config)
        (self.work / "pgbouncer.ini").write_text(config)
        (self.work / "userlist.txt").write_text(userlist or "".join(f'"{u}" ""\n' for u in self.users))
        cmd = [exe, str(self.work / "pgbouncer.ini")]
        if os.geteuid() == 0:  # as whoever owns the server's socket directory (postgres)
            owner = pwd.getpwuid(os.stat(host).st_uid).pw_name if host.startswith("/") else "postgres"
            if owner == "root":
                owner = "postgres"
            pw = pwd.getpwnam(owner)
            os.chown(self.work, pw.pw_uid, pw.pw_gid)
            for f in self.work.iterdir():
                os.chown(f, pw.pw_uid, pw.pw_gid)
            cmd = ["runuser", "-u", owner, "--", *cmd]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True)
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError as exc:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pgbouncer did not start: {self.log()[-2000:]}") from exc
                time.sleep(0.1)
        return self

    def log(self) -> str:
        path = self.work / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        shutil.rmtree(self.work, ignore_errors=True)
