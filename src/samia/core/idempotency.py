"""Idempotency-Key with Stripe's semantics, inside the request's own transaction.

A transaction-scoped advisory lock on (user, key) is taken first: a concurrent duplicate
cannot get it and answers 409. A completed request's response is stored in the same
transaction as its work, so it exists exactly when the work committed: a later duplicate
replays it (same status and body, `Idempotent-Replayed: true`); the same key with a
different request answers 422. Keys are kept 24 hours.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from samia.core.access import Ctx
from samia.core.problems import AppError, invalid

KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def _digest(ctx: Ctx, body: BaseModel) -> str:
    payload = {"method": ctx.request.method, "path": ctx.request.url.path, "body": body.model_dump(mode="json")}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class Idempotency:
    def __init__(self, ctx: Ctx, key: str | None, body: BaseModel) -> None:
        self.ctx, self.key, self.digest = ctx, key, _digest(ctx, body)
        self.expired = False  # the key's stored row is older than 24 hours

    async def replay(self) -> JSONResponse | None:
        """The stored response of an earlier identical request, or None to go ahead."""
        if self.key is None:
            return None
        if not KEY.match(self.key):
            raise invalid(["header", "Idempotency-Key"], "Idempotency-Key must be 1-255 printable ASCII characters")
        conn = self.ctx.conn
        cur = await conn.execute("select pg_try_advisory_xact_lock(hashtextextended(%s, 0))",
                                 (f"idem:{self.ctx.user_id}:{self.key}",))
        if not (await cur.fetchone())[0]:  # type: ignore[index]
            raise AppError(409, "idempotency_in_progress", headers={"Retry-After": "1"})
        cur = await conn.execute(
            "select body_sha256, response_status, response_body, created_at < now() - interval '24 hours' "
            "from idempotency_keys where user_id = auth.uid() and key = %s", (self.key,))
        row = await cur.fetchone()
        if row is None:
            return None
        digest, status, body, self.expired = row
        if self.expired:  # a key used again after 24 hours: remember() replaces its old row
            return None
        if digest != self.digest:
            raise AppError(422, "idempotency_key_reused",
                           "this Idempotency-Key was already used with a different request")
        # the rate limit's headers too (a replay was not counted against it)
        limits = {k: v for k, v in (self.ctx.response.headers.items() if self.ctx.response else [])
                  if k.lower().startswith("ratelimit-")}
        return JSONResponse(body, status_code=status, headers={"Idempotent-Replayed": "true", **limits},
                            media_type="application/problem+json" if status >= 400 else None)

    async def remember(self, status: int, body: dict[str, Any]) -> None:
        if self.key is None:
            return
        if self.expired:
            await self.ctx.conn.execute("delete from idempotency_keys where user_id = auth.uid() and key = %s "
                                        "and created_at < now() - interval '24 hours'", (self.key,))
        await self.ctx.conn.execute(
            "insert into idempotency_keys (user_id, key, method, path, body_sha256, response_status, response_body) "
            "values (auth.uid(), %s, %s, %s, %s, %s, %s)",
            (self.key, self.ctx.request.method, self.ctx.request.url.path, self.digest, status, json.dumps(body)))
