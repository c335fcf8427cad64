"""Passwords, OTPs, tokens and phone numbers never reach the log output."""

from __future__ import annotations

import io
import logging
import re

import structlog
from fastapi.testclient import TestClient

from samia.app import create_app
from samia.core import logging as app_logging
from samia.providers.phone import MemorySink


def test_secrets_never_reach_the_logs(settings, dsns, api) -> None:
    sms = MemorySink()
    app = create_app(settings, dsns=dsns, sms_sink=sms)
    out = io.StringIO()
    app_logging.configure("DEBUG", stream=out)
    password, phone = "my-very-secret-password-42", "+96171987654"
    try:
        with TestClient(app, raise_server_exceptions=False) as c:
            email = "loggy@example.com"
            assert c.post("/auth/signup", json={"email": email, "password": password, "dob": "1990-01-01",
                                                "country": "LB", "first_name": "Lo", "last_name": "Gy"}
                          ).status_code == 201
            tokens = c.post("/auth/login", json={"email": email, "password": password}).json()
            h = {"Authorization": f"Bearer {tokens['access_token']}"}
            assert c.post("/api/verify/phone/start", json={"phone": phone}, headers=h).status_code == 202
            code = re.search(r"\d{6}", sms.messages[-1][1]).group(0)  # type: ignore[union-attr]
            c.post("/api/verify/phone/check", json={"phone": phone, "code": code}, headers=h)
            c.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
            c.get("/auth/verify-email", params={"token": tokens["access_token"]})  # a token in a query string
            # an explicit attempt to log secrets through our logger is scrubbed too
            structlog.get_logger("test").info("oops", password=password, note=f"call {phone} or mail {email}",
                                              header=f"Bearer {tokens['access_token']}")
            logging.getLogger("third.party").warning("token %s for %s", tokens["access_token"], phone)
    finally:
        app_logging.configure("INFO")
    text = out.getvalue()
    assert '"route": "/auth/signup"' in text, "the access log was captured"
    for secret in (password, code, tokens["access_token"], tokens["refresh_token"], phone, phone[1:], email):
        assert secret not in text, f"{secret[:6]}… leaked into the logs"
