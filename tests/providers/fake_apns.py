"""APNs on loopback: HTTP/2 over TLS (hypercorn serving a small ASGI app).

It refuses anything but HTTP/2, checks the provider token as Apple does (ES256 with the
team's key, `kid`, `iss`, `iat` within the hour) and the topic, and answers by device token
prefix: dead… → 410 Unregistered, bad0… → 400 BadDeviceToken, cafe… → 429, d0d0… → 503."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from hypercorn.asyncio import serve
from hypercorn.config import Config

from .tls import ServerCert

OK, GONE, BAD, BUSY, DOWN = ("a1" * 32, "dead" + "0" * 60, "bad0" + "1" * 60, "cafe" + "2" * 60, "d0d0" + "3" * 60)


@dataclass
class ApnsRequest:
    http_version: str
    token: str
    headers: dict[str, str]
    payload: dict[str, Any]
    jwt_claims: dict[str, Any]


@dataclass
class FakeApns:
    public_key: ec.EllipticCurvePublicKey
    key_id: str
    team_id: str
    topic: str
    received: list[ApnsRequest] = field(default_factory=list)
    expire_next: bool = False
    expired: set[str] = field(default_factory=set)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        status, reason, apns_id = self.answer(scope, body)
        headers = [(b"apns-id", apns_id.encode())]
        data = json.dumps({"reason": reason}).encode() if reason else b""
        if reason:
            headers.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    def answer(self, scope: dict[str, Any], body: bytes) -> tuple[int, str | None, str]:
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        apns_id = headers.get("apns-id") or str(uuid.uuid4()).upper()
        if scope["http_version"] != "2":
            return 400, "BadPath", apns_id  # Apple speaks HTTP/2 only
        provider_token = headers.get("authorization", "").removeprefix("bearer ")
        try:
            header = jwt.get_unverified_header(provider_token)
            claims = jwt.decode(provider_token, self.public_key, algorithms=["ES256"])
            assert header["kid"] == self.key_id and claims["iss"] == self.team_id
            assert time.time() - 3600 < claims["iat"] <= time.time() + 5
        except (AssertionError, KeyError, jwt.PyJWTError):
            return 403, "InvalidProviderToken", apns_id
        if self.expire_next:
            self.expire_next = False
            self.expired.add(provider_token)
        if provider_token in self.expired:
            return 403, "ExpiredProviderToken", apns_id
        if headers.get("apns-topic") != self.topic:
            return 400, "TopicDisallowed", apns_id
        token = scope["path"].removeprefix("/3/device/")
        self.received.append(ApnsRequest(scope["http_version"], token, headers, json.loads(body), claims))
        for prefix, status, reason in (("dead", 410, "Unregistered"), ("bad0", 400, "BadDeviceToken"),
                                       ("cafe", 429, "TooManyRequests"), ("d0d0", 503, "ServiceUnavailable")):
            if token.startswith(prefix):
                return status, reason, apns_id
        return 200, None, apns_id


@contextmanager
def serving_h2(app: Any, cert: ServerCert) -> Iterator[str]:
    """The ASGI app behind hypercorn on a loopback port, TLS with ALPN h2; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.certfile, config.keyfile = str(cert.cert_file), str(cert.key_file)
    config.alpn_protocols = ["h2"]
    config.accesslog = None
    config.errorlog = None
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        loop.run_until_complete(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "hypercorn did not start"
            time.sleep(0.05)
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
