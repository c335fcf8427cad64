"""Every message the platform sends, in English and Arabic: a title (the email subject, the
push title) and a body with {placeholders} from the send's params. No personal data here:
the recipient's own details are in their account, not in the message. A test checks that
every template exists in both languages and that every template the schema queues is here."""

from __future__ import annotations

from typing import Any, Literal

Lang = Literal["en", "ar"]

EN: dict[str, tuple[str, str]] = {
    "verify_email": ("Confirm your email for Samia Tarot",
                     "Welcome to Samia Tarot.\n\nConfirm your email address by opening:\n{link}\n\n"
                     "The link is valid for 48 hours."),
    "payment_failed": ("Your Samia Tarot payment did not go through",
                       "Your payment did not go through, so the reserved time was released.\n"
                       "You can choose a time again and retry whenever you like."),
    "booking_cancelled": ("A Samia Tarot booking was cancelled",
                          "Booking {booking} was cancelled. Any refund is shown in your account."),
    "booking_rescheduled": ("A Samia Tarot booking moved", "Booking {booking} has a new time; see your bookings."),
    "booking_reminder": ("Your Samia Tarot session is coming up", "Booking {booking} starts in {in}."),
    "reader_no_show": ("Reader no-show", "The reader did not start booking {booking}; the client was refunded "
                                         "in full."),
    "late_payment_credited": ("Your payment is in your Samia Tarot wallet",
                              "Your payment for booking {booking} arrived after the reserved time had gone to "
                              "someone else, so the full amount was credited to your wallet."),
    "order_assigned": ("A new reading for you", "Order {order} is assigned to you; it is in your queue."),
    "order_rejected": ("A reading came back from review",
                       "The monitor sent order {order} back with a note; it is in your queue."),
    "reading_delivered": ("Your Samia Tarot reading is ready", "Your reading for order {order} is ready to listen to."),
    "order_refunded": ("A refund to your Samia Tarot wallet",
                       "The payment for order {order} was returned to your wallet ({reason})."),
    "review_overdue": ("A reading is waiting too long for review", "Order {order} is past its review deadline."),
    "data_request_filed": ("A data request is waiting", "A {kind} request ({request}) was filed; it is in the "
                                                         "data-request queue with its deadline."),
    "data_request_approved": ("Your data request was approved",
                              "Your {kind} request ({request}) was approved and is being carried out."),
    "data_request_declined": ("About your data request",
                              "Your {kind} request ({request}) was declined; the reason is in your account."),
    "data_export_ready": ("Your Samia Tarot data export is ready",
                          "Your data export ({request}) is ready; download it from your account while it lasts."),
    "emergency_siren": ("Emergency call waiting", "A client needs an emergency reading now (request {request})."),
    "incident_page": ("{severity} incident {incident}", "Incident {incident} ({severity}) needs you; acknowledge it "
                                                       "in the console."),
    "horoscope_ready": ("Your horoscope is ready", "Today's horoscope for {sign} is ready to read and listen to."),
}

AR: dict[str, tuple[str, str]] = {
    "verify_email": ("أكّد بريدك الإلكتروني في سامية تاروت",
                     "أهلًا بك في سامية تاروت.\n\nأكّد عنوان بريدك بفتح الرابط:\n{link}\n\n"
                     "الرابط صالح لمدة 48 ساعة."),
    "payment_failed": ("لم تتم عملية الدفع في سامية تاروت",
                       "لم تتم عملية الدفع، لذلك أُلغي حجز الموعد.\nيمكنك اختيار موعد والمحاولة مجددًا متى شئت."),
    "booking_cancelled": ("أُلغي حجز في سامية تاروت", "أُلغي الحجز {booking}. أي استرداد يظهر في حسابك."),
    "booking_rescheduled": ("تغيّر موعد حجز في سامية تاروت", "للحجز {booking} موعد جديد؛ راجع حجوزاتك."),
    "booking_reminder": ("جلستك في سامية تاروت تقترب", "يبدأ الحجز {booking} خلال {in}."),
    "reader_no_show": ("لم يحضر القارئ", "لم يبدأ القارئ الحجز {booking}؛ واسترد العميل المبلغ كاملًا."),
    "late_payment_credited": ("دفعتك في محفظة سامية تاروت",
                              "وصلت دفعتك للحجز {booking} بعد أن ذهب الموعد المحجوز لشخص آخر، "
                              "فأُضيف المبلغ كاملًا إلى محفظتك."),
    "order_assigned": ("قراءة جديدة لك", "أُسند إليك الطلب {order}؛ تجده في قائمتك."),
    "order_rejected": ("عادت قراءة من المراجعة", "أعاد المشرف الطلب {order} مع ملاحظة؛ تجده في قائمتك."),
    "reading_delivered": ("قراءتك في سامية تاروت جاهزة", "قراءتك للطلب {order} جاهزة للاستماع."),
    "order_refunded": ("استرداد إلى محفظتك في سامية تاروت", "أُعيد مبلغ الطلب {order} إلى محفظتك ({reason})."),
    "review_overdue": ("قراءة تنتظر المراجعة طويلًا", "تجاوز الطلب {order} موعد مراجعته."),
    "data_request_filed": ("طلب بيانات بانتظارك", "قُدّم طلب {kind} ({request})؛ تجده في قائمة طلبات البيانات "
                                                 "مع موعده النهائي."),
    "data_request_approved": ("قُبل طلب بياناتك", "قُبل طلب {kind} ({request}) ويجري تنفيذه."),
    "data_request_declined": ("بخصوص طلب بياناتك", "رُفض طلب {kind} ({request})؛ السبب موجود في حسابك."),
    "data_export_ready": ("نسخة بياناتك من سامية تاروت جاهزة",
                          "نسخة بياناتك ({request}) جاهزة؛ نزّلها من حسابك ما دامت متاحة."),
    "emergency_siren": ("مكالمة طارئة بانتظارك", "عميل يحتاج قراءة طارئة الآن (الطلب {request})."),
    "incident_page": ("حادثة {severity} رقم {incident}", "الحادثة {incident} ({severity}) تحتاجك؛ أكّد استلامها "
                                                        "في لوحة التحكم."),
    "horoscope_ready": ("برجك اليوم جاهز", "أبراج اليوم جاهزة للقراءة والاستماع، ومعها برج {sign}."),
}


class _Params(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def render(template: str, lang: str, params: dict[str, Any]) -> tuple[str, str]:
    """Title and body in the recipient's language (English for anything but Arabic)."""
    table = AR if lang == "ar" else EN
    if template not in table:
        raise ValueError(f"unknown template {template}")
    title, body = table[template]
    values = _Params({k: str(v) for k, v in params.items()})
    return title.format_map(values), body.format_map(values)
