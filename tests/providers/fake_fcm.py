"""Google's OAuth token endpoint and FCM's HTTP v1 messages:send on loopback.

The token endpoint verifies the service account's RS256 assertion with the account's
public key (audience, scope, issuer) before it grants a token; messages:send accepts only a
granted, unrevoked token. The device token steers the answer: gone-* → 404 UNREGISTERED,
busy-* → 429 QUOTA_EXCEEDED with Retry-After, down-* → 503, bad-* → 400 INVALID_ARGUMENT."""

from __future__ import annotations

import json
import uuid
from typing import Any, ClassVar
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.helpers import JsonHandler

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"


def service_account(token_uri: str, project: str = "samia-test") -> tuple[dict[str, Any], rsa.RSAPublicKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": project, "private_key_id": uuid.uuid4().hex,
            "private_key": pem, "client_email": f"fcm@{project}.iam.gserviceaccount.com",
            "client_id": "1234567890", "token_uri": token_uri}
    return info, key.public_key()


def fcm_error(http: int, status: str, code: str | None) -> dict[str, Any]:
    details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}] if code else []
    return {"error": {"code": http, "message": "see errorCode", "status": status, "details": details}}


class FakeGoogle(JsonHandler):
    public_key: ClassVar[rsa.RSAPublicKey]
    client_email: ClassVar[str]
    origin: ClassVar[str]
    granted: ClassVar[list[str]]
    sent: ClassVar[list[tuple[str, dict[str, Any]]]]
    revoke_next: ClassVar[bool] = False

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/token":
            return self.token(parse_qs(raw.decode()))
        if not self.path.startswith("/v1/projects/") or not self.path.endswith("/messages:send"):
            return self.reply(404, fcm_error(404, "NOT_FOUND", None))
        bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer not in self.granted or type(self).revoke_next:
            type(self).revoke_next = False
            if bearer in self.granted:
                self.granted.remove(bearer)
            return self.reply(401, fcm_error(401, "UNAUTHENTICATED", None))
        body = json.loads(raw)
        self.sent.append((self.path, body))
        token = body["message"]["token"]
        if token.startswith("gone-"):
            return self.reply(404, fcm_error(404, "NOT_FOUND", "UNREGISTERED"))
        if token.startswith("busy-"):
            data = json.dumps(fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED")).encode()
            self.send_response(429)
            self.send_header("Retry-After", "30")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        if token.startswith("down-"):
            return self.reply(503, fcm_error(503, "UNAVAILABLE", "UNAVAILABLE"))
        if token.startswith("bad-"):
            return self.reply(400, fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"))
        project = self.path.split("/")[3]
        return self.reply(200, {"name": f"projects/{project}/messages/0:{len(self.sent)}"})

    def token(self, form: dict[str, list[str]]) -> None:
        try:
            assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
            # google-auth addresses its assertion to Google's token URL whatever token_uri says
            claims = jwt.decode(form["assertion"][0], self.public_key, algorithms=["RS256"],
                                audience=[GOOGLE_TOKEN_URL, f"{self.origin}/token"])
            assert claims["iss"] == self.client_email and claims["scope"] == SCOPE
        except (AssertionError, KeyError, jwt.PyJWTError):
            return self.reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        token = f"ya29.fake-{uuid.uuid4().hex}"
        self.granted.append(token)
        return self.reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})
