"""POST /api/cron/<task>: outside schedulers queue a task (seeds 004), with X-Job-Token
compared in constant time. Unconfigured, it answers 503 naming JOB_TOKEN."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Header, status
from pydantic import BaseModel

from samia.core.access import PUBLIC, Ctx, allow
from samia.core.problems import AppError
from samia.jobs.tasks import CRON_ALIASES, CRON_TASKS

router = APIRouter(tags=["ops"])


class Queued(BaseModel):
    task: str
    job_id: int | None  # null: one is already waiting (the queueing lock keeps one)


@router.post("/api/cron/{task:path}", status_code=status.HTTP_202_ACCEPTED, response_model=Queued)
async def cron(task: str, x_job_token: Annotated[str | None, Header()] = None,
               ctx: Ctx = allow(PUBLIC, db_role="samia_jobs")) -> Queued:
    expected = ctx.platform.settings.job_token
    if expected is None:
        raise AppError(503, "provider_not_configured", "scheduled jobs need JOB_TOKEN", extra={"setting": "JOB_TOKEN"})
    if not hmac.compare_digest((x_job_token or "").encode(), expected.get_secret_value().encode()):
        raise AppError(401, "invalid_job_token", "X-Job-Token missing or wrong")
    task = CRON_ALIASES.get(task, task)
    if task not in CRON_TASKS:
        raise AppError(404, "not_found", f"no such task; known: {', '.join(CRON_TASKS)}")
    cur = await ctx.conn.execute("select app.defer(%s)", (task,))
    row = await cur.fetchone()
    return Queued(task=task, job_id=row[0] if row else None)
