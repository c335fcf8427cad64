"""Horoscope fixtures: settings that let yt-dlp fetch from loopback, a directory of small
videos made by ffmpeg served over HTTP, and a factory for an approved day."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import subprocess
import uuid
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from samia.config import Settings
from samia.horoscopes.service import BEIRUT, SIGNS
from tests.conftest import make_settings
from tests.helpers import serving

JOB_TOKEN = "horoscope-job-token-" + "h" * 32


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(HOROSCOPE_INGEST_HOSTS="127.0.0.1", JOB_TOKEN=JOB_TOKEN,
                         SAMIA_DATA_DIR=str(tmp_path_factory.mktemp("hs-data")))


def make_video(path: Path, freq: int, seconds: int = 4) -> Path:
    """A tiny MP4 (black video, a sine tone in AAC): what a TikTok download looks like."""
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", f"sine=frequency={freq}:duration={seconds}",
                    "-f", "lavfi", "-i", f"color=c=black:s=64x64:d={seconds}", "-shortest", "-c:v", "mpeg4",
                    "-c:a", "aac", str(path)], check=True)
    return path


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def media_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(base URL, folder) of a loopback web server holding one video per sign."""
    folder = tmp_path_factory.mktemp("hs-site")
    for i, sign in enumerate(SIGNS):
        make_video(folder / f"{sign.lower()}.mp4", 300 + 40 * i)
    with serving(functools.partial(_Quiet, directory=str(folder))) as base:  # type: ignore[arg-type]
        yield base, folder


def beirut_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=BEIRUT).astimezone(dt.UTC)


def approved_day(api: Any, day: dt.date, signs: tuple[str, ...] = SIGNS, scope: str = "daily",
                 status: str = "approved", text_en: str | None = None) -> list[int]:
    """Horoscopes that pass the guard (the media rows carry a measured duration and level)."""
    ids = []
    for sign in signs:
        sha = hashlib.sha256(f"{scope}{day}{sign}{uuid.uuid4()}".encode()).hexdigest()
        rows = api.sql("""
            with m as (insert into media_assets (kind, storage_key, content_type, bytes, sha256, duration_sec, meta)
                       values ('audio', %s, 'audio/mpeg', 100, %s, 4, '{"seconds": 4.0, "lufs": -16.0}') returning id)
            insert into horoscopes (scope, zodiac, ref_date, audio_media_id, audio_sha256, audio_lang, status,
                                    text_en, text_ar, approved_at)
            select %s, %s, %s, id, %s, 'ar', %s, %s, %s, now() from m returning id""",
                       (f"horoscopes/fake-{uuid.uuid4().hex}", sha, scope, sign, day,
                        sha if status in ("approved", "published") else None, status,
                        text_en or f"{sign}: a calm day.", f"برج {sign}: يوم هادئ."))
        ids.append(rows[0][0])
    return ids
