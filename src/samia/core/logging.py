"""JSON logs through structlog, with a redaction processor in front of every sink
(our own events and the standard library's, uvicorn included)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from typing import Any

import structlog

SENSITIVE_KEY = re.compile(
    r"pass|token|secret|otp|code|authorization|cookie|phone|email|dob|birth|first_name|last_name|"
    r"address|card|iban|claims|body|message|content", re.I)
# harmless keys that happen to match the pattern above
SAFE_KEYS = {"status_code", "error_code", "problem_code", "content_type", "content_length"}
SCRUBBERS = [
    (re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*"), "[jwt]"),
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "[email]"),
    (re.compile(r"(?<![\w-])\+?\d[\d\s().-]{7,}\d(?![\w-])"), "[number]"),
    (re.compile(r"(?i)bearer\s+\S+"), "Bearer [redacted]"),
]


def scrub(value: Any) -> Any:
    if isinstance(value, str):
        for pattern, repl in SCRUBBERS:
            value = pattern.sub(repl, value)
        return value
    if isinstance(value, dict):
        return {k: redact_pair(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def redact_pair(key: str, value: Any) -> Any:
    if key == "id" or key.endswith("_id"):
        return value  # identifiers are what logs should carry
    if key not in SAFE_KEYS and SENSITIVE_KEY.search(key) and value is not None:
        return "[redacted]"
    return scrub(value)


def redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if k in ("timestamp", "level", "logger") else redact_pair(k, v)) if k != "event"
            else scrub(v) for k, v in event.items()}


class _Sink:
    """Where our JSON lines go; swappable without rebuilding the cached loggers."""

    def __init__(self) -> None:
        self.stream: Any = sys.stderr
        self.access = True  # whether the access log is on (LOG_LEVEL INFO or DEBUG)

    def write(self, text: str) -> None:
        self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


SINK = _Sink()
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def access_line(method: str, route: str, status: int, ms: float, request_id: str, user_id: str | None) -> None:
    """The access log: one JSON line per request, written straight to the sink. Its fields are
    a method, a route template, numbers and ids (any other method is logged as OTHER), so it
    skips the redaction chain, which cost ~9 % of a GET /me's CPU (bench/layers.py)."""
    if SINK.access:
        SINK.write(json.dumps({
            "method": method if method in METHODS else "OTHER", "route": route, "status_code": status,
            "duration_ms": ms, "request_id": request_id, "user_id": user_id, "event": "request", "level": "info",
            "timestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")}) + "\n")


def configure(level: str = "INFO", stream: Any = None) -> None:
    """Our events: structlog's own fast path (no stdlib records). Everything else that logs
    through the standard library (uvicorn, libraries) gets the same processors and sink."""
    SINK.stream = stream or sys.stderr
    SINK.access = logging.getLevelNamesMapping()[level.upper()] <= logging.INFO
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.JSONRenderer(ensure_ascii=False)],
        logger_factory=structlog.WriteLoggerFactory(file=SINK),  # type: ignore[arg-type]
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(SINK)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer(ensure_ascii=False)]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our access log has no query strings
    # HTTP clients and SDKs log full URLs, headers and form bodies at INFO/DEBUG (the HTTP/2
    # libraries log an APNs device token in the request path)
    for name in ("httpx", "httpx2", "httpcore", "httpcore.http2", "hpack", "h2", "twilio", "twilio.http_client",
                 "urllib3", "requests", "google.auth", "google.auth.transport", "aiosmtplib"):
        logging.getLogger(name).setLevel(logging.WARNING)
