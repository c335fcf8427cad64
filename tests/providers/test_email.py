"""Email over SMTP against a real SMTP server on loopback (STARTTLS required, AUTH), the
message builder (EN/AR, List-Unsubscribe) and the local mailers."""

from __future__ import annotations

import asyncio
import email
import email.policy
import uuid
from pathlib import Path

import pytest

from samia.core.problems import AppError
from samia.providers.delivery import DeliveryError
from samia.providers.email import (
    MailboxMailer,
    MemoryMailer,
    SmtpMailer,
    build_message,
    classify_recipient,
    make_mailer,
    server_ref,
)
from tests.conftest import make_settings

from . import fake_smtp
from .tls import ServerCert

FROM = "Samia Tarot <no-reply@example.com>"


def smtp_settings(port: int, certs: ServerCert | None, **over: object):  # type: ignore[no-untyped-def]
    env: dict[str, object] = {"EMAIL_PROVIDER": "smtp", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": port,
                              "SMTP_USERNAME": fake_smtp.USER, "SMTP_PASSWORD": fake_smtp.PASSWORD,
                              "SMTP_FROM": FROM, "SMTP_TIMEOUT": 5}
    if certs is not None:
        env["SMTP_CA_FILE"] = certs.ca_file
    env.update(over)
    return make_settings(**env)


def test_an_arabic_marketing_message_goes_over_starttls_with_auth(smtp, certs) -> None:
    port, server = smtp
    mailer = make_mailer(smtp_settings(port, certs))
    key = uuid.uuid4()
    subject, text = "قراءتك جاهزة ✨", "مرحبًا، قراءة التاروت الخاصة بك جاهزة للاستماع."
    msg = build_message(to="layla@example.com", subject=subject, text=text, key=key, sender=mailer.sender,
                        lang="ar", unsubscribe_url="https://samia.example.com/u/abc",
                        unsubscribe_mailto="unsubscribe@example.com")
    before = len(server.received)
    d = asyncio.run(mailer.send_message(msg))
    assert (d.status, d.provider_ref, d.error) == ("sent", "4XyZ9Q1", None)  # the relay's own queue id
    got = server.received[before]
    assert got.tls and got.authenticated
    assert got.rcpt_tos == ["layla@example.com"] and got.mail_from == "no-reply@example.com"
    parsed = email.message_from_bytes(got.data, policy=email.policy.default)
    assert parsed["Subject"] == subject and parsed.get_content().strip() == text
    assert b"\xd9" not in got.data.split(b"\r\n\r\n", 1)[0], "headers are RFC 2047-encoded, not raw UTF-8"
    assert parsed["Content-Language"] == "ar" and parsed["From"] == FROM
    assert parsed["Message-ID"] == f"<{key}@example.com>"
    assert parsed["List-Unsubscribe"].strip() == "<https://samia.example.com/u/abc>, <mailto:unsubscribe@example.com>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.parametrize(("local", "status", "error"), [
    ("gone-x", "gone", "smtp_550"),     # 550 5.1.1 no such mailbox: suppress the address
    ("busy-x", "retry", "smtp_451"),    # 451 4.3.0: try later
    ("spam-x", "failed", "smtp_550"),   # 550 5.7.1 a policy refusal: the address may be fine
])
def test_recipient_refusals_map_to_gone_retry_or_failed(smtp, certs, local, status, error) -> None:
    port, server = smtp
    before = len(server.received)
    mailer = SmtpMailer(smtp_settings(port, certs))
    msg = build_message(to=f"{local}@example.com", subject="Hi", text="t", key=uuid.uuid4(), sender=FROM)
    d = asyncio.run(mailer.send_message(msg))
    assert (d.status, d.error, d.provider_ref) == (status, error, None)
    assert len(server.received) == before


def test_tls_is_verified_and_required(smtp, certs) -> None:
    port, server = smtp
    before = len(server.received)
    msg = build_message(to="a@example.com", subject="Hi", text="t", key=uuid.uuid4(), sender=FROM)
    # the relay's certificate is not trusted without SMTP_CA_FILE
    d = asyncio.run(SmtpMailer(smtp_settings(port, None)).send_message(msg))
    assert d.status == "retry" and d.error
    # a relay that does not offer STARTTLS is refused, not used in clear text
    plain = fake_smtp.Controller(fake_smtp.Handler(), hostname="127.0.0.1", port=fake_smtp.free_port())
    plain.start()
    try:
        d = asyncio.run(SmtpMailer(smtp_settings(plain.port, certs, SMTP_USERNAME="", SMTP_PASSWORD="")
                                   ).send_message(msg))
        assert (d.status, d.error) == ("failed", "SMTPException")
        assert plain.handler.received == []
    finally:
        plain.stop()
    assert len(server.received) == before


def test_wrong_credentials_fail_and_a_closed_port_is_retried(smtp, certs) -> None:
    port, _ = smtp
    msg = build_message(to="a@example.com", subject="Hi", text="t", key=uuid.uuid4(), sender=FROM)
    d = asyncio.run(SmtpMailer(smtp_settings(port, certs, SMTP_PASSWORD="wrong")).send_message(msg))
    assert (d.status, d.error) == ("failed", "smtp_535")
    d = asyncio.run(SmtpMailer(smtp_settings(fake_smtp.free_port(), certs)).send_message(msg))
    assert d.status == "retry"


def test_the_older_interface_still_returns_a_ref_and_raises_when_not_sent(smtp, certs) -> None:
    port, server = smtp
    mailer = SmtpMailer(smtp_settings(port, certs))
    assert asyncio.run(mailer.send("someone@example.com", "Confirm", "Open the link")) == "4XyZ9Q1"
    assert server.received[-1].rcpt_tos == ["someone@example.com"]
    with pytest.raises(DeliveryError) as e:
        asyncio.run(mailer.send("gone-y@example.com", "Confirm", "Open the link"))
    assert e.value.delivery.status == "gone"


def test_message_builder_transactional_english() -> None:
    key = uuid.uuid4()
    msg = build_message(to="a@example.com", subject="Your reading is ready", text="Listen now.", key=key,
                        sender=FROM, html="<p>Listen now.</p>", unsubscribe_url="http://insecure.example.com/u")
    assert msg["Content-Language"] == "en" and msg["Auto-Submitted"] == "auto-generated"
    assert msg["List-Unsubscribe"] == "<http://insecure.example.com/u>"
    assert msg["List-Unsubscribe-Post"] is None  # one-click needs https (RFC 8058)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg.get_body(("html",)).get_content().strip() == "<p>Listen now.</p>"  # type: ignore[union-attr]
    plain = build_message(to="a@example.com", subject="s", text="t", key=key)
    assert plain["List-Unsubscribe"] is None and plain["Message-ID"] == f"<{key}@samia-tarot.invalid>"
    with pytest.raises(ValueError, match="exactly one"):
        asyncio.run(MemoryMailer().send_message(build_message(to="a@example.com, b@example.com", subject="s",
                                                              text="t", key=key)))


@pytest.mark.parametrize(("code", "text", "status"), [
    (550, "5.1.1 user unknown", "gone"), (550, "mailbox unavailable", "gone"), (553, "bad address", "gone"),
    (550, "5.2.1 mailbox disabled", "gone"), (552, "5.2.2 mailbox full", "failed"),
    (550, "5.7.1 rejected by policy", "failed"), (554, "transaction failed", "failed"),
    (421, "4.7.0 try again", "retry"), (450, "mailbox busy", "retry"),
])
def test_recipient_reply_classification(code, text, status) -> None:
    assert classify_recipient(code, text).status == status


def test_server_refs() -> None:
    assert server_ref("Ok 0102018c3b2f3a4d-5b6c7d8e-aaaa-bbbb-cccc-000000000000-000000") == \
        "0102018c3b2f3a4d-5b6c7d8e-aaaa-bbbb-cccc-000000000000-000000"
    assert server_ref("2.0.0 Ok: queued as 4XyZ9Q1") == "4XyZ9Q1"
    assert server_ref("OK") is None


def test_local_mailers(tmp_path: Path) -> None:
    mem = MemoryMailer(gone={"gone@example.com"})
    assert asyncio.run(mem.send("a@example.com", "s", "t")) == "mem-1"
    d = asyncio.run(mem.send_message(build_message(to="Gone <gone@example.com>", subject="s", text="t",
                                                   key=uuid.uuid4())))
    assert (d.status, d.error) == ("gone", "smtp_550") and len(mem.sent) == 1
    box = MailboxMailer(tmp_path / "mail")
    d = asyncio.run(box.send_message(build_message(to="a@example.com", subject="مرحبا", text="نص", key=uuid.uuid4())))
    assert d.status == "sent"
    saved = email.message_from_bytes((tmp_path / "mail" / f"{d.provider_ref}.eml").read_bytes(),
                                     policy=email.policy.default)
    assert saved["Subject"] == "مرحبا" and saved.get_content().strip() == "نص"


def test_factory_names_the_missing_setting() -> None:
    with pytest.raises(AppError) as e:
        make_mailer(make_settings(EMAIL_PROVIDER="smtp", SMTP_FROM=FROM))
    assert (e.value.status, e.value.code, e.value.extra["setting"]) == (503, "provider_not_configured", "SMTP_HOST")
    with pytest.raises(AppError) as e:
        make_mailer(make_settings(EMAIL_PROVIDER="smtp", SMTP_HOST="h", SMTP_FROM=FROM, SMTP_USERNAME="u"))
    assert e.value.extra["setting"] == "SMTP_PASSWORD"
    with pytest.raises(AppError) as e:
        make_mailer(make_settings(SAMIA_ENV="prod"))
    assert e.value.extra["setting"] == "EMAIL_PROVIDER"
    assert isinstance(make_mailer(make_settings()), MailboxMailer)
