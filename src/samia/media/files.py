"""What an upload is, decided from its bytes: the kind is sniffed (the request's
Content-Type is ignored), each kind has its own size cap, and audio must be something
ffprobe can read, with an audio stream and a duration. Nothing is stored before this passes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
from dataclasses import dataclass

from samia.config import Settings
from samia.core.problems import AppError, invalid

# (magic, offset, kind, content type); RIFF containers also need "RIFF" at 0
SIGNATURES: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image", "image/png"),
    (b"\xff\xd8\xff", 0, "image", "image/jpeg"),
    (b"WEBP", 8, "image", "image/webp"),
    (b"%PDF-", 0, "pdf", "application/pdf"),
    (b"ID3", 0, "audio", "audio/mpeg"),
    (b"\xff\xfb", 0, "audio", "audio/mpeg"),
    (b"\xff\xf3", 0, "audio", "audio/mpeg"),
    (b"\xff\xf2", 0, "audio", "audio/mpeg"),
    (b"OggS", 0, "audio", "audio/ogg"),
    (b"fLaC", 0, "audio", "audio/flac"),
    (b"WAVE", 8, "audio", "audio/wav"),
    (b"ftypM4A", 4, "audio", "audio/mp4"),
    (b"\x1aE\xdf\xa3", 0, "audio", "audio/webm"),
)


@dataclass(frozen=True)
class Accepted:
    data: bytes
    kind: str
    content_type: str
    bytes: int
    sha256: str
    duration_sec: int | None = None


def sniff(data: bytes) -> tuple[str, str] | None:
    for magic, offset, kind, ctype in SIGNATURES:
        if data[offset:offset + len(magic)] == magic and (offset != 8 or data[:4] == b"RIFF"):
            return kind, ctype
    return None


def cap_for(settings: Settings, kind: str) -> int:
    return {"audio": settings.max_audio_bytes, "image": settings.max_image_bytes}.get(kind, settings.max_upload_bytes)


async def accept(settings: Settings, data: bytes, kinds: set[str]) -> Accepted:
    found = sniff(data)
    if found is None or found[0] not in kinds:
        raise invalid(["body"], "unsupported content", code="unsupported_media",
                      detail=f"expected {' or '.join(sorted(kinds))}; the content is not")
    kind, ctype = found
    cap = cap_for(settings, kind)
    if len(data) > cap:
        raise AppError(413, "body_too_large", f"{kind} uploads are limited to {cap} bytes")
    duration = await audio_duration(data) if kind == "audio" else None
    return Accepted(data, kind, ctype, len(data), hashlib.sha256(data).hexdigest(), duration)


async def audio_duration(data: bytes) -> int:
    """Seconds of audio, from ffprobe; a file it cannot read as audio is refused (422)."""
    with tempfile.NamedTemporaryFile(suffix=".upload") as f:
        f.write(data)
        f.flush()
        proc = await asyncio.create_subprocess_exec(
            "ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", f.name,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise invalid(["body"], "the audio could not be read in time", code="unsupported_media") from None
    info = json.loads(out or b"{}") if proc.returncode == 0 else {}
    streams = info.get("streams", [])
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    video = [s for s in streams if s.get("codec_type") == "video"
             and not s.get("disposition", {}).get("attached_pic")]
    try:
        seconds = float(info.get("format", {}).get("duration") or audio[0].get("duration") or 0)
    except (IndexError, ValueError):
        seconds = 0.0
    if not audio or video or seconds <= 0:
        raise invalid(["body"], "not a playable audio file", code="unsupported_media",
                      detail="the file has no readable audio stream")
    return max(1, round(seconds))
