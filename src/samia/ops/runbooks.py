"""RUNBOOKS/ served to admins (seeds 000 M32): deploy, rollback ladder, incidents, triage,
comms and post-mortem templates, as Markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import BaseModel

import samia
from samia.config import Settings
from samia.core.access import Ctx, Probe, allow
from samia.core.problems import not_found

router = APIRouter(tags=["ops"])

# in the repository (src/samia/ → ../../RUNBOOKS); an installed deployment sets RUNBOOKS_DIR
DEFAULT_DIR = Path(samia.__file__).resolve().parents[2] / "RUNBOOKS"
ADMIN_READ = Probe("select 1 from audit_log limit 1")


class RunbookRef(BaseModel):
    slug: str
    title: str


class Runbook(RunbookRef):
    markdown: str


def runbooks_dir(settings: Settings) -> Path:
    return settings.runbooks_dir or DEFAULT_DIR


def _title(text: str, slug: str) -> str:
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    return first.lstrip("# ").strip() or slug


def list_runbooks(settings: Settings) -> list[dict[str, str]]:
    files = sorted(runbooks_dir(settings).glob("*.md"))
    return [{"slug": p.stem, "title": _title(p.read_text(), p.stem)} for p in files]


def read_runbook(settings: Settings, slug: str) -> dict[str, str]:
    known = {p.stem: p for p in runbooks_dir(settings).glob("*.md")}  # only files that are there: no path tricks
    if slug not in known:
        raise not_found("runbook")
    text = known[slug].read_text()
    return {"slug": slug, "title": _title(text, slug), "markdown": text}


@router.get("/admin/runbooks", response_model=list[RunbookRef])
async def runbooks(ctx: Ctx = allow("admin", "superadmin", probe=ADMIN_READ)) -> list[dict[str, str]]:
    return list_runbooks(ctx.platform.settings)


@router.get("/admin/runbooks/{slug}", response_model=Runbook)
async def runbook(slug: Annotated[str, PathParam(pattern=r"^[a-z0-9-]{1,60}$")],
                  ctx: Ctx = allow("admin", "superadmin", probe=ADMIN_READ)) -> dict[str, str]:
    return read_runbook(ctx.platform.settings, slug)
