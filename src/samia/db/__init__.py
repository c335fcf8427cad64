"""Where the database is: an outside one (DATABASE_URL) or the embedded cluster."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from samia.config import Settings
from samia.db.cluster import Cluster

EMBEDDED_DB = "samia"


@dataclass(frozen=True)
class Dsns:
    owner: str  # migrations, CLI, jobs (which SET ROLE service_role)
    app: str    # the API's login: authenticator
    queue: str = ""  # the job queue's session connection, never through a transaction pooler; "": app


def pool_kwargs(settings: Settings) -> dict[str, object]:
    """Connection options of every pool: behind a transaction pooler (DB_TRANSACTION_POOLER)
    the next transaction may run on another server connection, which never saw a statement
    this connection prepared, so nothing is prepared there."""
    return {"autocommit": False, "prepare_threshold": None if settings.db_transaction_pooler else 5}


def as_user(dsn: str, user: str) -> str:
    params = conninfo_to_dict(dsn)
    params.pop("password", None)
    params["user"] = user
    return make_conninfo("", **params)


def with_dbname(dsn: str, dbname: str) -> str:
    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return make_conninfo("", **params)


def create_database(admin_dsn: str, name: str, template: str | None = None) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            return
        stmt = sql.SQL("create database {}").format(sql.Identifier(name))
        if template:
            stmt = sql.SQL("{} template {}").format(stmt, sql.Identifier(template))
        conn.execute(stmt)


def resolve(settings: Settings, start: bool = True) -> Dsns:
    """The owner and app DSNs; starts and creates the embedded cluster when no DATABASE_URL."""
    if settings.database_url:
        owner = settings.database_url
    else:
        cluster = Cluster(settings.data_dir)
        superuser = cluster.start() if start else cluster.dsn()
        if start:
            create_database(superuser, EMBEDDED_DB)
        owner = with_dbname(superuser, EMBEDDED_DB)
    app = settings.app_database_url or as_user(owner, "authenticator")
    return Dsns(owner=owner, app=app, queue=settings.queue_database_url or "")
