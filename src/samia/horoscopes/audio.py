"""The horoscopes' audio: fetching a post with yt-dlp, making web audio with ffmpeg
(loudness-normalised to EBU R128, -16 LUFS for speech on phones, mono MP3), measuring it, and
local text-to-speech (espeak-ng, the Arabic voice for Arabic) or an HTTP provider.

Every outside program runs without a shell, with a timeout; its output never reaches a log."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from samia.config import Settings
from samia.core.problems import AppError

TARGET_LUFS = -16.0
CONTENT_TYPE = "audio/mpeg"


class AudioError(Exception):
    """A tool failed or the input is not usable audio (the message is short and has no URL)."""


@dataclass(frozen=True)
class Processed:
    data: bytes
    sha256: str
    seconds: float
    lufs: float

    @property
    def meta(self) -> dict[str, Any]:
        return {"purpose": "horoscope", "seconds": round(self.seconds, 2), "lufs": round(self.lufs, 1)}


async def _run(args: list[str], *, stdin: bytes | None = None, timeout: float = 120,
               name: str | None = None) -> tuple[bytes, bytes]:
    name = name or Path(args[0]).name
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AudioError(f"{name} timed out") from None
    if proc.returncode != 0:
        raise AudioError(f"{name} exited with {proc.returncode}")
    return out, err


async def measure(path: Path) -> tuple[float, float]:
    """(seconds, integrated loudness in LUFS) by ffprobe and ffmpeg's ebur128 filter."""
    out, _ = await _run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                         str(path)], timeout=30)
    info = json.loads(out or b"{}")
    if not any(s.get("codec_type") == "audio" for s in info.get("streams", [])):
        raise AudioError("no audio stream")
    seconds = float(info.get("format", {}).get("duration") or 0)
    _, err = await _run(["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-af", "ebur128", "-f", "null", "-"],
                        timeout=60)
    found = re.findall(rb"I:\s+(-?[0-9.]+) LUFS", err)
    lufs = float(found[-1]) if found else -70.0
    return seconds, lufs


async def normalise(src: Path) -> Processed:
    """Any audio or video file → loudness-normalised mono MP3 (the video is dropped)."""
    with tempfile.TemporaryDirectory(prefix="samia-hs-") as tmp:
        out = Path(tmp) / "out.mp3"
        await _run(["ffmpeg", "-hide_banner", "-nostdin", "-y", "-i", str(src), "-vn", "-map", "0:a:0",
                    "-af", f"loudnorm=I={TARGET_LUFS}:TP=-1.5:LRA=11", "-ar", "44100", "-ac", "1",
                    "-c:a", "libmp3lame", "-b:a", "96k", "-map_metadata", "-1", str(out)], timeout=300)
        seconds, lufs = await measure(out)
        if seconds <= 0:
            raise AudioError("empty audio")
        data = out.read_bytes()
    return Processed(data, hashlib.sha256(data).hexdigest(), seconds, lufs)


# ─── yt-dlp ─────────────────────────────────────────────────────────────────────────────
def ytdlp_missing(settings: Settings) -> bool:
    if settings.ytdlp_bin:
        return shutil.which(settings.ytdlp_bin) is None
    try:
        import yt_dlp  # noqa: F401
    except ImportError:
        return True
    return False


def require_ytdlp(settings: Settings) -> None:
    if ytdlp_missing(settings):
        raise AppError(503, "provider_not_configured", "fetching posts needs yt-dlp (the package or YTDLP_BIN)",
                       extra={"setting": "YTDLP_BIN"})


def host_allowed(settings: Settings, url: str) -> bool:
    """http(s) only, and a host that is an allowed one or its subdomain."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme not in ("http", "https") or not host:
        return False
    allowed = [h.strip().lower() for h in settings.horoscope_ingest_hosts.split(",") if h.strip()]
    return any(host == a or host.endswith("." + a) for a in allowed)


@dataclass(frozen=True)
class Fetched:
    path: Path
    caption: str | None


async def fetch(settings: Settings, url: str, folder: Path) -> Fetched:
    """Download a post's media into `folder` (the allowlist was checked at submission and is
    checked again here: the setting may have changed since). yt-dlp always runs as a child
    process (YTDLP_BIN, else the installed package), so its sockets, threads and memory stay out
    of the worker; its messages name the URL and are never read."""
    if not host_allowed(settings, url):
        raise AudioError("host not allowed")
    require_ytdlp(settings)
    cap = settings.max_upload_bytes * 4
    program = [settings.ytdlp_bin] if settings.ytdlp_bin else [sys.executable, "-m", "yt_dlp"]
    await _run([*program, "--no-progress", "--no-playlist", "--quiet", "--no-warnings", "-f", "bestaudio/best",
                "--socket-timeout", "30", "--max-filesize", str(cap), "--write-info-json",
                "-o", str(folder / "src.%(ext)s"), "--", url], timeout=600, name="yt-dlp")
    media = [p for p in folder.iterdir() if p.name.startswith("src.") and not p.name.endswith(".json")]
    if not media:
        raise AudioError("yt-dlp wrote no file")
    info_file = folder / "src.info.json"
    info = json.loads(info_file.read_text()) if info_file.exists() else {}
    caption = info.get("description") or info.get("title")
    return Fetched(media[0], str(caption)[:4000] if caption else None)


# ─── text to speech ─────────────────────────────────────────────────────────────────────
ESPEAK_VOICE = {"en": "en", "ar": "ar"}


def require_tts(settings: Settings) -> None:
    if settings.tts_provider == "elevenlabs":
        for name, value in (("TTS_API_KEY", settings.tts_api_key), ("TTS_VOICE_ID", settings.tts_voice_id)):
            if value is None:
                raise AppError(503, "provider_not_configured", f"text-to-speech needs {name}",
                               extra={"setting": name})
    elif shutil.which("espeak-ng") is None:
        raise AppError(503, "provider_not_configured", "local text-to-speech needs espeak-ng installed",
                       extra={"setting": "TTS_PROVIDER"})


async def speak(settings: Settings, text: str, lang: str) -> Processed:
    """Speech for `text` in `lang`, normalised like a recording."""
    require_tts(settings)
    with tempfile.TemporaryDirectory(prefix="samia-tts-") as tmp:
        raw = Path(tmp) / "speech"
        if settings.tts_provider == "elevenlabs":
            assert settings.tts_api_key is not None
            async with httpx.AsyncClient(base_url=settings.tts_base_url, timeout=settings.provider_timeout) as http:
                r = await http.post(f"/v1/text-to-speech/{settings.tts_voice_id}",
                                    headers={"xi-api-key": settings.tts_api_key.get_secret_value(),
                                             "accept": CONTENT_TYPE},
                                    json={"text": text, "model_id": "eleven_multilingual_v2"})
            if r.status_code != 200:
                raise AppError(503, "provider_unavailable", "the text-to-speech provider did not answer",
                               extra={"provider": "tts"})
            raw.write_bytes(r.content)
        else:
            # the text goes on stdin: never an argument that could read as an option
            await _run(["espeak-ng", "-v", ESPEAK_VOICE[lang], "-s", "150", "-w", str(raw), "--stdin"],
                       stdin=text.encode(), timeout=120)
        return await normalise(raw)


async def refresh_voice(settings: Settings) -> dict[str, Any]:
    """The monthly voice refresh: the HTTP provider's voice is looked up (and its settings
    re-read); the local engine has nothing to refresh."""
    if settings.tts_provider != "elevenlabs":
        return {"provider": "local", "refreshed": False}
    require_tts(settings)
    assert settings.tts_api_key is not None
    async with httpx.AsyncClient(base_url=settings.tts_base_url, timeout=settings.provider_timeout) as http:
        r = await http.get(f"/v1/voices/{settings.tts_voice_id}",
                           headers={"xi-api-key": settings.tts_api_key.get_secret_value()})
    if r.status_code != 200:
        raise AudioError(f"voice lookup answered {r.status_code}")
    return {"provider": "elevenlabs", "refreshed": True}
