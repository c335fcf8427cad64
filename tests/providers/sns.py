"""Amazon SNS's side, for tests: a signing key with its certificate served on loopback, and
messages signed the way SNS signs them (the canonical strings are written out here from
AWS's documentation, independently of the code under test)."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import Certificate

from tests.helpers import JsonHandler

from .tls import self_signed

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-feedback"


@dataclass
class SnsSigner:
    key: rsa.RSAPrivateKey
    cert: Certificate
    cert_url: str

    @classmethod
    def new(cls, base_url: str) -> SnsSigner:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(key, self_signed("sns.amazonaws.com", key, ca=False), f"{base_url}/SimpleNotificationService-1.pem")

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def sign(self, msg: dict[str, Any], version: str = "1") -> dict[str, Any]:
        if msg["Type"] == "Notification":
            names = ["Message", "MessageId"] + (["Subject"] if "Subject" in msg else []) + \
                ["Timestamp", "TopicArn", "Type"]
        else:
            names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        text = "".join(f"{n}\n{msg[n]}\n" for n in names).encode()
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        sig = self.key.sign(text, padding.PKCS1v15(), algorithm)
        return {**msg, "SignatureVersion": version, "Signature": base64.b64encode(sig).decode(),
                "SigningCertURL": self.cert_url}

    def notification(self, ses: dict[str, Any], *, topic: str = TOPIC, subject: str | None = None,
                     version: str = "1") -> dict[str, Any]:
        msg = {"Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": topic,
               "Message": json.dumps(ses), "Timestamp": "2026-12-02T10:00:00.000Z",
               "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe"}
        if subject is not None:
            msg["Subject"] = subject
        return self.sign(msg, version)

    def confirmation(self, subscribe_url: str, *, topic: str = TOPIC) -> dict[str, Any]:
        return self.sign({"Type": "SubscriptionConfirmation", "MessageId": str(uuid.uuid4()), "TopicArn": topic,
                          "Token": "2336412f37fb687f5d51e6e2425", "Timestamp": "2026-12-02T10:00:00.000Z",
                          "Message": f"You have chosen to subscribe to the topic {topic}.",
                          "SubscribeURL": subscribe_url})


def cert_server(signer_ref: list[SnsSigner], hits: list[str]) -> type[JsonHandler]:
    """Serves the signer's certificate (counting fetches) and answers SubscribeURL GETs."""

    class CertServer(JsonHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            if self.path.startswith("/SimpleNotificationService-"):
                data = signer_ref[0].pem()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-pem-file")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return None
            if self.path.startswith("/?Action=ConfirmSubscription"):
                return self.reply(200, {"ConfirmSubscriptionResponse": {"SubscriptionArn": TOPIC + ":sub"}})
            return self.reply(404, {})

    return CertServer


def bounce(address: str, kind: str = "Permanent", ses_id: str = "0102018c-ses-id") -> dict[str, Any]:
    return {"notificationType": "Bounce",
            "bounce": {"bounceType": kind, "bounceSubType": "General" if kind == "Permanent" else "MailboxFull",
                       "bouncedRecipients": [{"emailAddress": address, "status": "5.1.1", "action": "failed"}],
                       "timestamp": "2026-12-02T10:00:00.000Z", "feedbackId": "0102-feedback"},
            "mail": {"messageId": ses_id, "source": "no-reply@example.com", "destination": [address],
                     "commonHeaders": {"messageId": "<5b6f0c1e-0000-4000-8000-000000000000@example.com>"}}}


def complaint(address: str, ses_id: str = "0102018c-ses-id-2") -> dict[str, Any]:
    return {"notificationType": "Complaint",
            "complaint": {"complainedRecipients": [{"emailAddress": address}], "complaintFeedbackType": "abuse",
                          "timestamp": "2026-12-02T10:00:00.000Z", "feedbackId": "0102-feedback-2"},
            "mail": {"messageId": ses_id, "source": "no-reply@example.com", "destination": [address]}}
