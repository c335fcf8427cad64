"""Settings from the environment. Nothing secret has a default here."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sys
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    env: Literal["dev", "test", "prod"] = Field("dev", alias="SAMIA_ENV")
    data_dir: Path = Field(Path("var"), alias="SAMIA_DATA_DIR")

    # Owner DSN (migrations, CLI). Unset: the embedded cluster under data_dir.
    database_url: str | None = Field(None, alias="DATABASE_URL")
    # The API's login (authenticator). Unset: DATABASE_URL with user=authenticator.
    app_database_url: str | None = Field(None, alias="APP_DATABASE_URL")
    db_pool_min: int = Field(2, alias="DB_POOL_MIN")
    db_pool_max: int = Field(10, alias="DB_POOL_MAX")
    # Behind a transaction pooler (PgBouncer/Supavisor) server-side prepares must be off.
    db_transaction_pooler: bool = Field(False, alias="DB_TRANSACTION_POOLER")
    # The job queue's session connection (procrastinate LISTEN/NOTIFY, session advisory locks, a
    # startup `options` role): it must bypass a transaction pooler, e.g. Supabase's direct
    # connection or PgBouncer's session port, as the authenticator login. Unset: APP_DATABASE_URL.
    queue_database_url: str | None = Field(None, alias="QUEUE_DATABASE_URL")

    secret_key: SecretStr = Field(alias="SECRET_KEY", min_length=32)
    supabase_jwt_secret: SecretStr | None = Field(None, alias="SUPABASE_JWT_SECRET")
    access_token_ttl: int = Field(900, alias="ACCESS_TOKEN_TTL", ge=60, le=3600)
    refresh_token_ttl: int = Field(30 * 86400, alias="REFRESH_TOKEN_TTL", ge=3600)
    jwt_issuer: str = Field("samia", alias="JWT_ISSUER")
    # argon2id cost (RFC 9106 low-memory profile by default)
    argon2_time_cost: int = Field(3, alias="ARGON2_TIME_COST", ge=1)
    argon2_memory_kib: int = Field(65536, alias="ARGON2_MEMORY_KIB", ge=1024)

    public_base_url: str = Field("http://127.0.0.1:8000", alias="PUBLIC_BASE_URL")
    max_body_bytes: int = Field(1_048_576, alias="MAX_BODY_BYTES", ge=1024)
    trust_proxy_headers: bool = Field(False, alias="TRUST_PROXY_HEADERS")

    phone_provider: Literal["local", "twilio"] = Field("local", alias="PHONE_PROVIDER")
    twilio_account_sid: str | None = Field(None, alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: SecretStr | None = Field(None, alias="TWILIO_AUTH_TOKEN")
    twilio_verify_sid: str | None = Field(None, alias="TWILIO_VERIFY_SID")
    # Only for tests and regional edges: where the Twilio SDK's requests are sent.
    twilio_base_url: str | None = Field(None, alias="TWILIO_BASE_URL")
    # Live calls: the local simulator (default) or Twilio Voice conferences from TWILIO_CALLER_ID.
    voice_provider: Literal["local", "twilio"] = Field("local", alias="VOICE_PROVIDER")
    twilio_caller_id: str | None = Field(None, alias="TWILIO_CALLER_ID")

    # ---- messaging channels (providers/{email,push,sms}.py): each is the local default
    # (files under the data dir) or its real provider; a real one missing a setting answers 503.
    email_provider: Literal["local", "smtp"] = Field("local", alias="EMAIL_PROVIDER")
    smtp_host: str | None = Field(None, alias="SMTP_HOST")
    smtp_port: int = Field(587, alias="SMTP_PORT", ge=1, le=65535)
    smtp_username: str | None = Field(None, alias="SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(None, alias="SMTP_PASSWORD")
    smtp_from: str | None = Field(None, alias="SMTP_FROM")  # "Samia Tarot <no-reply@example.com>"
    smtp_starttls: bool = Field(True, alias="SMTP_STARTTLS")  # required, not opportunistic, when on
    smtp_ca_file: Path | None = Field(None, alias="SMTP_CA_FILE")  # extra CA to trust (tests, private relays)
    smtp_timeout: float = Field(30, alias="SMTP_TIMEOUT", gt=0, le=300)
    # Bounces and complaints: Amazon SES notifications delivered by SNS. Only these topics are
    # accepted (anyone can make an SNS topic whose messages AWS signs).
    sns_topic_arns: str | None = Field(None, alias="SNS_TOPIC_ARNS")  # comma-separated
    # host of SigningCertURL; override only in tests (plain http is then accepted for loopback hosts)
    sns_cert_host_pattern: str = Field(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$",
                                       alias="SNS_CERT_HOST_PATTERN")

    webpush_provider: Literal["local", "vapid"] = Field("local", alias="WEBPUSH_PROVIDER")
    vapid_private_key: SecretStr | None = Field(None, alias="VAPID_PRIVATE_KEY")  # base64url raw key or PEM
    vapid_public_key: str | None = Field(None, alias="VAPID_PUBLIC_KEY")  # derived from the private key if unset
    vapid_subject: str | None = Field(None, alias="VAPID_SUBJECT")  # mailto: or https: contact
    # hosts a subscription endpoint may point at (the browsers' push services); widened in tests
    webpush_endpoint_host_pattern: str = Field(
        r"^(fcm\.googleapis\.com|updates\.push\.services\.mozilla\.com|[a-z0-9.-]+\.notify\.windows\.com"
        r"|web\.push\.apple\.com|[a-z0-9-]+\.push\.apple\.com)$", alias="WEBPUSH_ENDPOINT_HOST_PATTERN")

    fcm_provider: Literal["local", "fcm"] = Field("local", alias="FCM_PROVIDER")
    fcm_project_id: str | None = Field(None, alias="FCM_PROJECT_ID")  # default: the service account's project
    fcm_service_account_json: SecretStr | None = Field(None, alias="FCM_SERVICE_ACCOUNT_JSON")  # path or JSON
    fcm_base_url: str = Field("https://fcm.googleapis.com", alias="FCM_BASE_URL")

    apns_provider: Literal["local", "apns"] = Field("local", alias="APNS_PROVIDER")
    apns_key_id: str | None = Field(None, alias="APNS_KEY_ID")
    apns_team_id: str | None = Field(None, alias="APNS_TEAM_ID")
    apns_private_key: SecretStr | None = Field(None, alias="APNS_PRIVATE_KEY")  # .p8 PEM text or its path
    apns_topic: str | None = Field(None, alias="APNS_TOPIC")  # the app's bundle id
    apns_base_url: str = Field("https://api.push.apple.com", alias="APNS_BASE_URL")
    apns_ca_file: Path | None = Field(None, alias="APNS_CA_FILE")  # extra CA to trust (tests only)

    sms_provider: Literal["local", "twilio"] = Field("local", alias="SMS_PROVIDER")
    whatsapp_provider: Literal["local", "twilio"] = Field("local", alias="WHATSAPP_PROVIDER")
    # a Messaging Service (sender pool, Advanced Opt-Out) or fixed senders per channel
    twilio_messaging_service_sid: str | None = Field(None, alias="TWILIO_MESSAGING_SERVICE_SID")
    twilio_messaging_from: str | None = Field(None, alias="TWILIO_MESSAGING_FROM")  # E.164
    twilio_whatsapp_from: str | None = Field(None, alias="TWILIO_WHATSAPP_FROM")  # E.164, no "whatsapp:" prefix

    provider_timeout: float = Field(10, alias="PROVIDER_TIMEOUT", gt=0, le=120)  # push and SMS calls, seconds

    card_provider: Literal["testcard", "stripe"] = Field("testcard", alias="CARD_PROVIDER")
    stripe_api_key: SecretStr | None = Field(None, alias="STRIPE_API_KEY")
    stripe_webhook_secret: SecretStr | None = Field(None, alias="STRIPE_WEBHOOK_SECRET")
    # Only for tests and proxies: where the Stripe SDK sends its API calls.
    stripe_api_base: str | None = Field(None, alias="STRIPE_API_BASE")
    stripe_max_retries: int = Field(2, alias="STRIPE_MAX_RETRIES", ge=0, le=5)

    # Square (where it is offered: see payment_method_countries)
    square_access_token: SecretStr | None = Field(None, alias="SQUARE_ACCESS_TOKEN")
    square_location_id: str | None = Field(None, alias="SQUARE_LOCATION_ID")
    square_webhook_signature_key: SecretStr | None = Field(None, alias="SQUARE_WEBHOOK_SIGNATURE_KEY")
    # the exact URL Square calls (it is part of the signed payload); default PUBLIC_BASE_URL/webhooks/square
    square_webhook_url: str | None = Field(None, alias="SQUARE_WEBHOOK_URL")
    square_base_url: str | None = Field(None, alias="SQUARE_BASE_URL")  # tests and sandboxes only

    # USDT through a crypto processor with signed IPN callbacks (NOWPayments-compatible API)
    usdt_api_key: SecretStr | None = Field(None, alias="USDT_API_KEY")
    usdt_ipn_secret: SecretStr | None = Field(None, alias="USDT_IPN_SECRET")
    usdt_api_base: str = Field("https://api.nowpayments.io", alias="USDT_API_BASE")
    usdt_pay_currency: str = Field("usdttrc20", alias="USDT_PAY_CURRENCY")
    usdt_hold_minutes: int = Field(60, alias="USDT_HOLD_MINUTES", ge=10, le=1440)

    # What a client is told when paying by bank transfer (account, IBAN, reference rules);
    # unset: bank transfers answer 503 naming it.
    bank_transfer_instructions: str | None = Field(None, alias="BANK_TRANSFER_INSTRUCTIONS", max_length=2000)
    bank_transfer_hold_hours: int = Field(48, alias="BANK_TRANSFER_HOLD_HOURS", ge=1, le=168)
    # upload caps: the largest a request body may be on upload routes, then per kind
    max_upload_bytes: int = Field(25 * 1_048_576, alias="MAX_UPLOAD_BYTES", ge=1024)
    max_audio_bytes: int = Field(25 * 1_048_576, alias="MAX_AUDIO_BYTES", ge=1024)
    max_image_bytes: int = Field(5 * 1_048_576, alias="MAX_IMAGE_BYTES", ge=1024)

    # Private media storage: a local directory under the data dir, or S3-compatible (boto3
    # reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment).
    storage_backend: Literal["local", "s3"] = Field("local", alias="STORAGE_BACKEND")
    s3_bucket: str | None = Field(None, alias="S3_BUCKET")
    s3_endpoint_url: str | None = Field(None, alias="S3_ENDPOINT_URL")
    s3_region: str = Field("us-east-1", alias="S3_REGION")
    # how long a signed media URL works
    media_url_ttl_seconds: int = Field(300, alias="MEDIA_URL_TTL_SECONDS", ge=10, le=86400)

    # ---- daily horoscopes (horoscopes/): ingest of TikTok posts with yt-dlp (the Python package,
    # or the binary at YTDLP_BIN), only from these hosts (comma-separated, subdomains included);
    # text-to-speech: local espeak-ng → ffmpeg, or ElevenLabs over HTTP. TTS_* are not VOICE_*:
    # VOICE_PROVIDER already chooses the live-call provider.
    ytdlp_bin: str | None = Field(None, alias="YTDLP_BIN")
    horoscope_ingest_hosts: str = Field("tiktok.com", alias="HOROSCOPE_INGEST_HOSTS")
    tts_provider: Literal["local", "elevenlabs"] = Field("local", alias="TTS_PROVIDER")
    tts_api_key: SecretStr | None = Field(None, alias="TTS_API_KEY")
    tts_voice_id: str | None = Field(None, alias="TTS_VOICE_ID")
    tts_base_url: str = Field("https://api.elevenlabs.io", alias="TTS_BASE_URL")

    # Bearer token Alertmanager presents on POST /webhooks/alertmanager; unset: 503 naming it.
    alertmanager_token: SecretStr | None = Field(None, alias="ALERTMANAGER_TOKEN", min_length=16)
    # Master keys of the encrypted config store, "v2:<base64 32 bytes>,v1:<…>": the highest
    # version seals new values, older ones still open what they sealed until re-encrypted.
    # Unset: one key derived from SECRET_KEY (v1).
    secrets_master_keys: SecretStr | None = Field(None, alias="SECRETS_MASTER_KEYS")

    # Ed25519 seed (base64, 32 bytes) that signs audit exports; unset: derived from SECRET_KEY.
    audit_signing_key: SecretStr | None = Field(None, alias="AUDIT_SIGNING_KEY")
    # Every attestation's head is also written where the database owner cannot rewrite it: an
    # append-only file outside the database (default: $SAMIA_DATA_DIR/audit-anchors.jsonl) or
    # objects in an S3 bucket with Object Lock (COMPLIANCE retention), on S3_ENDPOINT_URL.
    audit_anchor: Literal["file", "s3"] = Field("file", alias="AUDIT_ANCHOR")
    audit_anchor_file: Path | None = Field(None, alias="AUDIT_ANCHOR_FILE")
    audit_anchor_bucket: str | None = Field(None, alias="AUDIT_ANCHOR_BUCKET")
    audit_anchor_retention_days: int = Field(2555, alias="AUDIT_ANCHOR_RETENTION_DAYS", ge=1, le=36500)

    # Edge (seeds 004): browsers on these origins may call the API with credentials
    # (comma-separated scheme://host[:port]); "*" grants any origin without credentials and is
    # refused in production. HSTS on HTTPS responses; HTTPS_REDIRECT sends plain HTTP to HTTPS.
    cors_origins: str | None = Field(None, alias="CORS_ORIGINS")
    hsts_max_age: int = Field(31_536_000, alias="HSTS_MAX_AGE", ge=0, le=63_072_000)
    https_redirect: bool = Field(False, alias="HTTPS_REDIRECT")

    # Readers' assistant: the local deterministic drafter, or an OpenAI-compatible endpoint.
    ai_provider: Literal["local", "openai"] = Field("local", alias="AI_PROVIDER")
    ai_base_url: str = Field("https://api.openai.com/v1", alias="AI_BASE_URL")
    ai_api_key: SecretStr | None = Field(None, alias="AI_API_KEY")
    ai_model: str = Field("gpt-4o-mini", alias="AI_MODEL")

    hold_ttl_seconds: int = Field(600, alias="HOLD_TTL_SECONDS", ge=30, le=3600)

    # Shared secret for POST /api/cron/<task> (X-Job-Token); unset: the route answers 503.
    job_token: SecretStr | None = Field(None, alias="JOB_TOKEN", min_length=32)

    # Bearer token Prometheus presents on GET /metrics; unset: the route answers 503 naming it.
    metrics_token: SecretStr | None = Field(None, alias="METRICS_TOKEN", min_length=16)

    runbooks_dir: Path | None = Field(None, alias="RUNBOOKS_DIR")  # default: the repository's RUNBOOKS/

    log_level: str = Field("INFO", alias="LOG_LEVEL")

    @model_validator(mode="after")
    def _no_wildcard_origin_in_production(self) -> Settings:
        if self.env == "prod" and "*" in self.cors_origin_list:
            raise ValueError("CORS_ORIGINS may not be '*' in production: list the storefront's origins")
        return self

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in (self.cors_origins or "").split(",") if o.strip()]

    @property
    def anchor_file(self) -> Path:
        return self.audit_anchor_file or self.data_dir / "audit-anchors.jsonl"

    def subkey(self, purpose: str) -> bytes:
        """A key for one purpose (JWT signing, email links, OTP HMAC), derived from SECRET_KEY."""
        return _derive(self.secret_key.get_secret_value(), purpose)

    @property
    def jwt_key(self) -> bytes:
        return self.subkey("jwt-access-v1")


@lru_cache(maxsize=64)
def _derive(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


def load_settings() -> Settings:
    """Settings from the environment. On the embedded default a development SECRET_KEY is
    generated once and kept in $SAMIA_DATA_DIR/secrets.env (mode 0600)."""
    if not os.environ.get("SECRET_KEY") and not os.environ.get("DATABASE_URL"):
        data_dir = Path(os.environ.get("SAMIA_DATA_DIR", "var"))
        path = data_dir / "secrets.env"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(f"SECRET_KEY={secrets.token_urlsafe(48)}\n")
            path.chmod(0o600)
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            os.environ.setdefault(key.strip(), value.strip())
    try:
        return Settings()
    except Exception as e:
        sys.exit(f"samia: configuration error: {e}")
