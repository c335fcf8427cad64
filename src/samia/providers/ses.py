"""Bounces and complaints: Amazon SES notifications delivered by Amazon SNS over HTTPS.

SNS signs each message with an RSA key whose certificate it publishes at SigningCertURL.
We accept a message only when (1) that URL is https on an SNS host (SNS_CERT_HOST_PATTERN),
(2) the signature over the canonical string of the documented fields verifies with the
certificate's key (SignatureVersion 1: SHA1, 2: SHA256), and (3) the topic is one of ours
(SNS_TOPIC_ARNS; AWS signs any topic's messages, including a stranger's). Certificates are
cached per URL. Anything else answers 403 invalid_signature and changes nothing.

The parsed result is neutral (`Feedback`): the delivery engine suppresses on hard bounces
and complaints and records deliveries; it never sees SES's shapes.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from samia.config import Settings
from samia.core.problems import AppError
from samia.providers.delivery import is_loopback, require

# The fields each message type signs, in this order (AWS: "Verifying the signatures of
# Amazon SNS messages"). Subject is signed only when the notification has one.
SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


@dataclass(frozen=True)
class SnsMessage:
    type: str
    message_id: str
    topic_arn: str
    message: str
    subscribe_url: str | None  # confirmations: GET it once to confirm the subscription


FeedbackKind = Literal["hard_bounce", "soft_bounce", "complaint", "delivered"]


@dataclass(frozen=True)
class Feedback:
    address: str
    kind: FeedbackKind
    provider_message_id: str | None  # SES's id (the SMTP relay's "Ok <id>": our provider_ref)
    message_id_header: str | None    # the Message-ID header, when SES includes the headers
    detail: str | None = None        # bounceSubType / complaintFeedbackType / smtp response class


def canonical(msg: Mapping[str, Any]) -> bytes:
    fields = SIGNED.get(str(msg.get("Type")))
    if fields is None:
        raise _forged("unknown message type")
    parts = []
    for name in fields:
        value = msg.get(name)
        if value is None:
            if name == "Subject":
                continue
            raise _forged(f"{name} is missing")
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode()


class SnsVerifier:
    def __init__(self, *, topic_arns: set[str], cert_host_pattern: str, timeout: float = 10,
                 http: httpx.AsyncClient | None = None) -> None:
        self.topic_arns = topic_arns
        self.host_pattern = re.compile(cert_host_pattern)
        self._http = http or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._keys: dict[str, rsa.RSAPublicKey] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def verify(self, body: bytes | str) -> SnsMessage:
        """The message if it is authentic and for one of our topics; else 403 (or 503 when
        the signing certificate cannot be fetched: SNS retries)."""
        try:
            msg = json.loads(body)
        except ValueError as e:
            raise _forged("the body is not JSON") from e
        if not isinstance(msg, dict):
            raise _forged("the body is not an SNS message")
        if msg.get("TopicArn") not in self.topic_arns:
            raise _forged("the topic is not one of SNS_TOPIC_ARNS")
        algorithm = HASHES.get(str(msg.get("SignatureVersion")))
        if algorithm is None:
            raise _forged("unsupported SignatureVersion")
        text = canonical(msg)
        try:
            signature = base64.b64decode(str(msg.get("Signature", "")), validate=True)
        except ValueError as e:
            raise _forged("the signature is not base64") from e
        key = await self._key(str(msg.get("SigningCertURL", "")))
        try:
            key.verify(signature, text, padding.PKCS1v15(), algorithm())
        except InvalidSignature as e:
            raise _forged("the signature does not match") from e
        subscribe = msg.get("SubscribeURL")
        if subscribe is not None:
            self.check_url(str(subscribe), "SubscribeURL")
        return SnsMessage(msg["Type"], str(msg["MessageId"]), msg["TopicArn"], str(msg["Message"]),
                          str(subscribe) if subscribe is not None else None)

    async def confirm(self, msg: SnsMessage) -> None:
        """Confirm a verified SubscriptionConfirmation (a GET of its SubscribeURL)."""
        if msg.type != "SubscriptionConfirmation" or msg.subscribe_url is None:
            raise ValueError("not a subscription confirmation")
        try:
            resp = await self._http.get(self.check_url(msg.subscribe_url, "SubscribeURL"))
        except httpx.HTTPError as e:
            raise AppError(503, "provider_unavailable", "SNS did not answer the confirmation") from e
        if resp.status_code != 200:
            raise AppError(503, "provider_unavailable", f"SNS answered {resp.status_code} to the confirmation")

    def check_url(self, url: str, what: str) -> str:
        """https on an SNS host; plain http only for a loopback host that the (test-only)
        pattern admits, which the default pattern never does."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if not host or not self.host_pattern.fullmatch(host):
            raise _forged(f"{what} is not on an SNS host")
        if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(host)):
            raise _forged(f"{what} is not https")
        return url

    async def _key(self, url: str) -> rsa.RSAPublicKey:
        self.check_url(url, "SigningCertURL")
        if url not in self._keys:
            try:
                resp = await self._http.get(url)
            except httpx.HTTPError as e:
                raise AppError(503, "provider_unavailable", "the SNS signing certificate could not be fetched",
                               headers={"Retry-After": "30"}) from e
            if resp.status_code != 200:
                raise AppError(503, "provider_unavailable", f"SigningCertURL answered {resp.status_code}",
                               headers={"Retry-After": "30"})
            try:
                cert = x509.load_pem_x509_certificate(resp.content)
            except ValueError as e:
                raise _forged("SigningCertURL is not a PEM certificate") from e
            now = dt.datetime.now(dt.UTC)
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                raise _forged("the signing certificate is not valid now")
            key = cert.public_key()
            if not isinstance(key, rsa.RSAPublicKey):
                raise _forged("the signing certificate has no RSA key")
            if len(self._keys) >= 32:  # a handful of regions at most; never unbounded
                self._keys.clear()
            self._keys[url] = key
        return self._keys[url]


def parse_ses(message: str | Mapping[str, Any]) -> list[Feedback]:
    """SES's notification (the SNS Message) as neutral feedback, one row per recipient.
    Both shapes: identity notifications (`notificationType`) and configuration-set event
    publishing (`eventType`). Other types (Send, Open, Click …) give no rows."""
    n = json.loads(message) if isinstance(message, str) else message
    kind = n.get("notificationType") or n.get("eventType")
    mail = n.get("mail") or {}
    ses_id = mail.get("messageId")
    header_id = (mail.get("commonHeaders") or {}).get("messageId")
    rows: list[Feedback] = []
    if kind == "Bounce":
        b = n.get("bounce") or {}
        k: FeedbackKind = "hard_bounce" if b.get("bounceType") == "Permanent" else "soft_bounce"
        rows = [Feedback(r["emailAddress"], k, ses_id, header_id, b.get("bounceSubType"))
                for r in b.get("bouncedRecipients", []) if r.get("emailAddress")]
    elif kind == "Complaint":
        c = n.get("complaint") or {}
        rows = [Feedback(r["emailAddress"], "complaint", ses_id, header_id, c.get("complaintFeedbackType"))
                for r in c.get("complainedRecipients", []) if r.get("emailAddress")]
    elif kind == "Delivery":
        d = n.get("delivery") or {}
        rows = [Feedback(a, "delivered", ses_id, header_id, None) for a in d.get("recipients", []) if a]
    return [Feedback(_bare(f.address), f.kind, f.provider_message_id, f.message_id_header, f.detail) for f in rows]


def make_sns_verifier(settings: Settings) -> SnsVerifier:
    require("SES bounce and complaint notifications", [("SNS_TOPIC_ARNS", settings.sns_topic_arns)])
    arns = {a.strip() for a in (settings.sns_topic_arns or "").split(",") if a.strip()}
    return SnsVerifier(topic_arns=arns, cert_host_pattern=settings.sns_cert_host_pattern,
                       timeout=settings.provider_timeout)


def _bare(address: str) -> str:
    """SES may give "Name <a@b>"; the engine keys suppressions on the bare address."""
    m = re.search(r"<([^<>]+)>\s*$", address)
    return (m.group(1) if m else address).strip()


def _forged(why: str) -> AppError:
    return AppError(403, "invalid_signature", f"SNS message refused: {why}")
