"""A deck's card art, replaced in bulk (flag uploads.deckBulk): one zip with an image per card
(78 faces and the back, named by card code: `the_fool.png`, `back.webp` …). Each entry is
size-checked before it is read and sniffed from its bytes; every image is stored and the deck
switched over in the request's one transaction, so a bad zip leaves the old art in place and
no stored file behind (the request's undo hooks delete what was stored)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import PurePosixPath
from typing import Any

from psycopg.rows import dict_row

from samia.core.access import Ctx
from samia.core.problems import AppError, invalid
from samia.media.store import store_upload

MAX_ENTRIES = 100


def _refuse(detail: str, name: str = "zip") -> AppError:
    return invalid(["body", name], detail, code="deck_zip_invalid")


def read_zip(data: bytes, codes: set[str], max_image: int) -> dict[str, bytes]:
    """Card code → the entry's bytes. Refuses (422) anything but exactly one image per card,
    entries over the image cap (by their declared size, before reading), and nested paths."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise _refuse("not a zip file") from None
    entries = [i for i in archive.infolist() if not i.is_dir()]
    if len(entries) > MAX_ENTRIES:
        raise _refuse(f"at most {MAX_ENTRIES} files")
    found: dict[str, bytes] = {}
    for info in entries:
        path = PurePosixPath(info.filename)
        code = path.stem.lower()
        if len(path.parts) > 2 or code not in codes or code in found:
            raise _refuse(f"{info.filename}: not a card of this deck, or named twice", info.filename)
        if info.file_size > max_image:
            raise AppError(413, "body_too_large", f"{info.filename}: images are limited to {max_image} bytes")
        with archive.open(info) as entry:
            body = entry.read(max_image + 1)
        if len(body) > max_image:  # the declared size lied
            raise AppError(413, "body_too_large", f"{info.filename}: images are limited to {max_image} bytes")
        found[code] = body
    missing = sorted(codes - set(found))
    if missing:
        raise _refuse(f"{len(missing)} cards have no image: {', '.join(missing[:5])}")
    return found


async def replace_deck_art(ctx: Ctx, deck: str, data: bytes) -> int:
    """Store every card's image (sniffed: PNG, JPEG or WebP) and switch the deck to them at once."""
    cur = await ctx.conn.execute("select code from deck_cards where deck_code = %s", (deck,))
    codes = {r[0] for r in await cur.fetchall()}
    if not codes:
        raise AppError(404, "not_found", "no such deck")
    images = read_zip(data, codes, ctx.platform.settings.max_image_bytes)
    art: dict[str, int] = {}
    for code in sorted(images):
        art[code] = await store_upload(ctx, images[code], kinds={"image"}, prefix=f"decks/{deck}",
                                       purpose="deck_art")
    cur = await ctx.conn.execute("select app.replace_deck_art(%s, %s)", (deck, json.dumps(art)))
    return int((await cur.fetchone())[0])  # type: ignore[index]


async def decks(ctx: Ctx) -> list[dict[str, Any]]:
    """Each deck with its card count and how many cards carry uploaded art."""
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute("select d.code, d.name, count(c.id) as cards, count(c.art_media_id) as with_art, "
                      "app.flag_on('uploads.deckBulk') as enabled from decks d "
                      "left join deck_cards c on c.deck_code = d.code group by d.code, d.name order by d.code")
    return await cur.fetchall()
