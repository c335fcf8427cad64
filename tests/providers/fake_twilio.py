"""Twilio's Messages API on loopback (what the official SDK calls), with Basic auth and
Twilio's error bodies. The recipient's last digits steer the answer: …0001 → 21610
(unsubscribed), …0002 → 21211 (invalid number), …0003 → 429 (20429), …0004 → 500,
…0005 → 21408 (region not enabled: about our account, not the number)."""

from __future__ import annotations

import base64
import uuid
from typing import Any, ClassVar
from urllib.parse import parse_qs

from tests.helpers import JsonHandler

SID, TOKEN = "AC" + "7" * 32, "fake-messaging-auth-token"

ERRORS = {"0001": (400, 21610, "Attempt to send to unsubscribed recipient"),
          "0002": (400, 21211, "Invalid 'To' Phone Number"),
          "0003": (429, 20429, "Too Many Requests"),
          "0004": (500, 20500, "Internal Server Error"),
          "0005": (400, 21408, "Permission to send an SMS has not been enabled for the region")}


class FakeTwilioMessages(JsonHandler):
    requests: ClassVar[list[tuple[str, dict[str, str]]]] = []

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            return self.reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
        if self.path != f"/2010-04-01/Accounts/{SID}/Messages.json":
            return self.reply(404, {"code": 20404, "message": "not found", "status": 404})
        self.requests.append((self.path, form))
        err = ERRORS.get(form.get("To", "")[-4:])
        if err:
            status, code, message = err
            return self.reply(status, {"code": code, "message": message, "status": status,
                                       "more_info": f"https://www.twilio.com/docs/errors/{code}"})
        body: dict[str, Any] = {"sid": "SM" + uuid.uuid4().hex, "account_sid": SID, "status": "queued",
                                "to": form["To"], "from": form.get("From"), "body": form.get("Body"),
                                "messaging_service_sid": form.get("MessagingServiceSid")}
        return self.reply(201, body)
