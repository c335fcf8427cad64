"""A Web Push service on loopback, and a browser's side of a subscription.

The service checks what a real one checks (the VAPID JWT's signature, audience and expiry,
the aes128gcm content coding, TTL) and keeps each encrypted body; the test decrypts it with
the subscription's private key, as the browser would. The subscription path steers the
answer: /gone → 410, /busy → 429 with Retry-After, /down → 503, /big → 413."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from tests.helpers import JsonHandler


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """The user agent's half: an ECDH key pair and an auth secret per subscription."""
    key: ec.EllipticCurvePrivateKey
    auth: bytes

    @classmethod
    def new(cls) -> Browser:
        import os
        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    def subscription(self, endpoint: str) -> dict[str, Any]:
        point = self.key.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": endpoint, "expirationTime": None, "keys": {"p256dh": b64(point), "auth": b64(self.auth)}}

    def decrypt(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm")
        return json.loads(plain)  # type: ignore[no-any-return]


@dataclass
class Push:
    path: str
    headers: dict[str, str]
    body: bytes
    vapid_claims: dict[str, Any]
    vapid_key: str


class FakePushService(JsonHandler):
    received: ClassVar[list[Push]] = []
    origin: ClassVar[str] = ""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        auth = self.headers.get("Authorization", "")
        try:
            assert Vapid02.verify(auth), "bad VAPID signature"
            parts = dict(p.split("=", 1) for p in auth.split(" ", 1)[1].split(","))
            claims = json.loads(unb64(parts["t"].split(".")[1]))
            assert claims["aud"] == self.origin and claims["exp"] > time.time() and claims["sub"]
            assert self.headers["Content-Encoding"] == "aes128gcm" and int(self.headers["TTL"]) >= 0
        except (AssertionError, KeyError, ValueError):
            return self.reply(401, {"reason": "unauthorized"})
        self.received.append(Push(self.path, dict(self.headers), body, claims, parts["k"]))
        if self.path.endswith("/gone"):
            return self.reply(410, {"reason": "push subscription has unsubscribed or expired"})
        if self.path.endswith("/busy"):
            self.send_response(429)
            self.send_header("Retry-After", "120")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if self.path.endswith("/down"):
            return self.reply(503, {"reason": "unavailable"})
        if self.path.endswith("/big"):
            return self.reply(413, {"reason": "too large"})
        self.send_response(201)
        self.send_header("Location", f"{self.origin}/m/{len(self.received)}")
        self.send_header("Content-Length", "0")
        self.end_headers()
        return None
