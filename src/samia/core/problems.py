"""RFC 9457 problem details: one error family, database errors mapped once by SQLSTATE."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import psycopg_pool
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from samia.core.middleware import BodyTooLarge

log = structlog.get_logger("samia.problems")

PROBLEM = "application/problem+json"

# Titles per stable code; Accept-Language: ar selects the second.
TITLES: dict[str, tuple[str, str]] = {
    "validation_error": ("The request is not valid", "الطلب غير صالح"),
    "malformed_json": ("The request body is not valid JSON", "نص الطلب ليس JSON صالحًا"),
    "body_too_large": ("The request body is too large", "نص الطلب كبير جدًا"),
    "unauthenticated": ("Authentication required", "يجب تسجيل الدخول"),
    "invalid_token": ("The access token is not valid", "رمز الدخول غير صالح"),
    "session_revoked": ("This session is no longer valid", "هذه الجلسة لم تعد صالحة"),
    "invalid_credentials": ("Email or password is wrong", "البريد الإلكتروني أو كلمة المرور غير صحيحة"),
    "forbidden": ("You may not do this", "غير مسموح لك بهذا الإجراء"),
    "superadmin_reserved": ("Only the super admin may do this", "هذا الإجراء للمشرف الأعلى فقط"),
    "delete_reserved": ("Only the super admin may delete users", "حذف المستخدمين للمشرف الأعلى فقط"),
    "protected_field": ("This field can only be changed by an admin", "لا يغيّر هذا الحقل إلا المشرف"),
    "last_superadmin": ("The last super admin cannot be removed", "لا يمكن إزالة آخر مشرف أعلى"),
    "not_found": ("Not found", "غير موجود"),
    "method_not_allowed": ("Method not allowed", "الطريقة غير مسموحة"),
    "conflict": ("The request conflicts with the current state", "الطلب يتعارض مع الحالة الحالية"),
    "email_taken": ("This email is already registered", "هذا البريد الإلكتروني مسجّل مسبقًا"),
    "slot_taken": ("That time is already taken", "هذا الموعد محجوز"),
    "not_available": ("The reader is not available then", "القارئ غير متاح في هذا الوقت"),
    "idempotency_in_progress": ("A request with this Idempotency-Key is still in progress",
                                "طلب بمفتاح التكرار نفسه ما زال قيد التنفيذ"),
    "idempotency_key_reused": ("This Idempotency-Key was used with a different request",
                               "استُخدم مفتاح التكرار هذا مع طلب مختلف"),
    "method_not_allowed_here": ("This payment method is not offered in your country",
                                "طريقة الدفع هذه غير متاحة في بلدك"),
    "payment_failed": ("The payment did not go through", "لم تتم عملية الدفع"),
    "insufficient_funds": ("The wallet balance is too low", "رصيد المحفظة غير كافٍ"),
    "under_age": ("You must be at least 18 years old", "يجب أن يكون عمرك 18 عامًا على الأقل"),
    "unknown_country": ("Unknown country", "دولة غير معروفة"),
    "rate_limited": ("Too many requests", "طلبات كثيرة جدًا"),
    "provider_not_configured": ("This service is not configured", "هذه الخدمة غير مهيأة"),
    "provider_unavailable": ("An outside service is unavailable", "خدمة خارجية غير متاحة"),
    "storage_unavailable": ("File storage is unavailable", "تخزين الملفات غير متاح"),
    "budget_exhausted": ("This service has used its monthly budget", "استنفدت هذه الخدمة ميزانيتها الشهرية"),
    "database_unavailable": ("The database is unavailable", "قاعدة البيانات غير متاحة"),
    "internal_error": ("Something went wrong on our side", "حدث خطأ من جهتنا"),
    "illegal_transition": ("The order cannot make this move now", "لا يمكن نقل الطلب إلى هذه الحالة الآن"),
    "reveal_out_of_order": ("Reveal the cards in order", "اكشف البطاقات بالترتيب"),
    "unsupported_media": ("This file type is not accepted here", "نوع الملف هذا غير مقبول هنا"),
    "invalid_signature": ("This link is not valid", "هذا الرابط غير صالح"),
    "url_expired": ("This link has expired", "انتهت صلاحية هذا الرابط"),
    "consent_required": ("The client's consent is required first", "يلزم الحصول على موافقة العميل أولًا"),
    "in_instant_window": ("You are inside an approved instant window", "أنت ضمن نافذة فورية معتمدة"),
    "case_taken": ("Another monitor holds this case", "مراقب آخر يتولى هذه الحالة"),
    "claim_required": ("Claim the case first", "تولَّ الحالة أولًا"),
    "already_reviewed": ("You have already reviewed this", "لقد قيّمت هذا من قبل"),
    "already_replied": ("You have already replied to this review", "لقد رددت على هذا التقييم من قبل"),
    "flagged_text": ("This text cannot be published as written", "لا يمكن نشر هذا النص كما هو"),
    "pre_ritual_required": ("The client must confirm the preparation first", "يجب أن يؤكد العميل التحضير أولًا"),
    "no_pre_ritual": ("This session has no preparation to confirm", "لا تحضير لتأكيده في هذه الجلسة"),
    "feature_disabled": ("This feature is switched off", "هذه الميزة متوقفة"),
    "terms_not_accepted": ("Accept the current terms of service and privacy policy first",
                           "يرجى قبول شروط الخدمة وسياسة الخصوصية الحالية أولًا"),
    "age_not_verified": ("A date of birth showing you are 18 or older is needed first",
                         "يلزم تاريخ ميلاد يثبت أن عمرك 18 عامًا أو أكثر أولًا"),
    "dob_required": ("A staff account needs a date of birth", "يحتاج حساب الموظف إلى تاريخ ميلاد"),
    "stale_version": ("A newer version of this document was published", "نُشرت نسخة أحدث من هذه الوثيقة"),
    "request_open": ("You already have an open request of this kind", "لديك طلب مفتوح من هذا النوع"),
    "already_decided": ("This request was already decided", "تم البت في هذا الطلب من قبل"),
    "own_request": ("Another admin must decide your own request", "يجب أن يبت مشرف آخر في طلبك"),
    "reason_required": ("A reason is required", "يلزم ذكر السبب"),
}


class ProblemResponse(JSONResponse):
    """ASCII-escaped, so that no echoed field name can make the body unencodable."""
    media_type = PROBLEM

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()


class Problem(BaseModel):
    """RFC 9457 problem details, with our stable `code`."""
    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    code: str
    instance: str | None = None
    detail: str | None = None
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": Problem, "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                "description": "Problem details (RFC 9457)"} for s in statuses}


# Every route may answer these; documented once for the whole API.
RESPONSES = _responses(400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 503)


class AppError(Exception):
    """An error with its HTTP status and stable code.

    keep: commit the transaction's work before answering (e.g. a failed OTP attempt
    must still count). audit: after rollback, append an audit row for the refusal.
    """

    def __init__(self, status: int, code: str, detail: str | None = None, *,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None,
                 keep: bool = False, audit: dict[str, Any] | None = None) -> None:
        super().__init__(detail or code)
        self.status, self.code, self.detail = status, code, detail
        self.headers, self.extra, self.keep, self.audit = headers or {}, extra or {}, keep, audit


def invalid(loc: list[Any], msg: str, *, code: str = "validation_error", detail: str | None = None,
            **extra: Any) -> AppError:
    """A 422 for one bad field, shaped like the framework's own validation errors."""
    return AppError(422, code, detail or msg, extra={"errors": [{"loc": loc, "msg": msg, "type": code}], **extra})


def not_found(what: str = "resource") -> AppError:
    return AppError(404, "not_found", f"No such {what}")


def title(code: str, lang: str = "en") -> str:
    en, ar = TITLES.get(code, (code.replace("_", " ").capitalize(), None))
    return ar if lang == "ar" and ar else en


def lang_of(request: Request) -> str:
    return "ar" if request.headers.get("accept-language", "").lower().startswith("ar") else "en"


def problem(request: Request, status: int, code: str, detail: str | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": title(code, lang_of(request)),
        "status": status,
        "code": code,
        "instance": request.url.path,
    }
    if detail:
        body["detail"] = detail
    rid = getattr(request.state, "request_id", None)
    if rid:
        body["request_id"] = rid
    body.update(extra)
    return ProblemResponse(body, status_code=status, headers=headers)


def from_db_error(exc: psycopg.Error) -> AppError:
    """Map a database error to an AppError by SQLSTATE, hint and constraint name."""
    diag = exc.diag
    state, hint = diag.sqlstate or "", diag.message_hint or ""
    constraint, column = diag.constraint_name or "", diag.column_name
    if state == "42501":
        code = hint or "forbidden"
        return AppError(403, code, diag.message_primary, audit={"event": "access.denied", "reason": code})
    if state == "P0002":
        return AppError(404, hint or "not_found", diag.message_primary)
    if state == "23P01":
        code = {"reader_capacity_no_overlap": "slot_taken"}.get(constraint, "conflict")
        return AppError(409, code, "that time is already taken" if code == "slot_taken" else None)
    if state == "23505":
        if constraint == "payment_transactions_one_live_charge":
            return AppError(409, "conflict", "this booking already has a payment in progress or paid")
        code = {"profiles_email_key": "email_taken", "reviews_order_id_key": "already_reviewed",
                "reviews_call_id_key": "already_reviewed"}.get(constraint, "conflict")
        return AppError(409, code, f"duplicate value violates {constraint}" if code == "conflict" else None)
    if hint in ("reveal_out_of_order", "consent_required", "pre_ritual_required"):  # seeds 002: a missing step: 400
        return AppError(400, hint, diag.message_primary)
    if state in ("23514", "23502", "23503") or state.startswith("22"):
        code = hint or ("invalid_reference" if state == "23503" else "validation_error")
        where = column or constraint
        errors = [{"loc": ["body", where] if where else ["body"], "msg": diag.message_primary,
                   "type": code}]
        return AppError(422, code, diag.message_primary, extra={"errors": errors})
    if not state and isinstance(exc, psycopg.DataError):  # refused client-side, e.g. a NUL in text
        return AppError(422, "validation_error", "a value cannot be stored")
    if state == "55000":  # object_not_in_prerequisite_state: a state that forbids the change
        return AppError(409, hint or "conflict", diag.message_primary)
    if state in ("40001", "40P01", "55P03"):
        return AppError(409, "conflict", "concurrent update; retry the request")
    if state == "57014":
        return AppError(503, "database_unavailable", "the query took too long")
    return AppError(500, "internal_error")


def install(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return problem(request, exc.status, exc.code, exc.detail, exc.headers, **exc.extra)

    @app.exception_handler(psycopg.Error)
    async def _db_error(request: Request, exc: psycopg.Error) -> JSONResponse:
        err = from_db_error(exc)
        if err.status >= 500:
            log.error("database_error", sqlstate=exc.diag.sqlstate, error_class=type(exc).__name__)
        return problem(request, err.status, err.code, err.detail, **err.extra)

    @app.exception_handler(psycopg_pool.PoolTimeout)
    async def _pool_timeout(request: Request, exc: Exception) -> JSONResponse:
        return problem(request, 503, "database_unavailable", headers={"Retry-After": "1"})

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errs):
            return problem(request, 400, "malformed_json", "the body could not be parsed as JSON")
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in errs]
        return problem(request, 422, "validation_error", errors=errors)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: Exception) -> JSONResponse:
        return problem(request, 413, "body_too_large")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if getattr(request.state, "body_too_large", False):
            return problem(request, 413, "body_too_large")
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated",
                403: "forbidden", 413: "body_too_large"}.get(exc.status_code, "error")
        return problem(request, exc.status_code, code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled_error", error_class=type(exc).__name__, path=request.url.path)
        return problem(request, 500, "internal_error")
