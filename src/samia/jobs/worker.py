"""`samia worker`: runs the job engine against the database."""

from __future__ import annotations

from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from samia import db
from samia.config import Settings
from samia.core.ports import Mailer
from samia.jobs.tasks import QUEUE, Resources, app
from samia.providers.email import MailboxMailer

STOP_GRACE = 2.0


async def run(settings: Settings, dsns: db.Dsns, *, concurrency: int = 2, wait: bool = True,
              mailer: Mailer | None = None) -> None:
    """Process jobs; with wait=False, process what is queued now and return (tests, cron)."""
    pool = AsyncConnectionPool(dsns.app, min_size=1, max_size=max(2, concurrency),
                               kwargs=db.pool_kwargs(settings), open=False, name="worker")
    await pool.open(wait=True)
    res = Resources(settings=settings, pool=pool, mailer=mailer or MailboxMailer(settings.data_dir / "mail"))
    # the queue listens and locks per session: never through a transaction pooler
    QUEUE["dsn"] = make_conninfo(settings.queue_database_url or dsns.queue or dsns.app)
    try:
        async with app.open_async():
            # asked to stop, a worker gives running jobs STOP_GRACE seconds, then aborts them: every
            # task is idempotent and retried, so `samia serve` stops within seconds (issue 13)
            await app.run_worker_async(concurrency=concurrency, wait=wait, install_signal_handlers=wait,
                                       additional_context={"samia": res}, delete_jobs="successful",
                                       listen_notify=wait, shutdown_graceful_timeout=STOP_GRACE)
    finally:
        await pool.close()
