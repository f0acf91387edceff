"""Talking to gateways: an SMTP server (email, email-to-fax, a HISP's Direct relay) and an HTTP fax gateway.

Each send returns an Answer: sent (or delivered), a temporary failure worth retrying, a refusal, or "unknown"
when the connection broke after the message was handed over and before the gateway said whether it took it.
`on_handover` is called, and must have committed the idempotency marker, right before that point of no return:
for SMTP just before the final "." that ends DATA; for HTTP just before the request is sent.
"""

from __future__ import annotations

import json
import re
import smtplib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from django.core.mail import EmailMessage

from refloop.letters.models import AttemptOutcome
from refloop.letters.rendering import Document

CRLF = b"\r\n"


@dataclass(frozen=True)
class Answer:
    outcome: str
    text: str
    ref: str = ""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    user: str = ""
    password: str = ""
    use_tls: bool = False
    use_ssl: bool = False
    timeout: int = 30


def build_message(
    *, sender: str, to: str, subject: str, body: str, message_id: str, documents: list[Document]
) -> bytes:
    message = EmailMessage(subject, body, sender, [to], headers={"Message-ID": message_id})
    for document in documents:
        message.attach(document.filename, document.content, "application/pdf")
    return message.message().as_bytes(linesep="\r\n")


def _by_code(step: str, code: int, reply: bytes | str) -> Answer:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    outcome = AttemptOutcome.RETRY if 400 <= code < 500 or code < 0 else AttemptOutcome.FAILED
    return Answer(outcome, f"{step}: {code} {text}".strip())


def _payload(raw: bytes) -> bytes:
    data = re.sub(rb"(?:\r\n|\n|\r(?!\n))", CRLF, raw)
    data = re.sub(rb"(?m)^\.", b"..", data)
    return data if data.endswith(CRLF) else data + CRLF


def smtp_send(server: SmtpServer, *, sender: str, to: str, message: bytes, on_handover: Callable[[], None]) -> Answer:
    """Send one message, calling `on_handover` before the final "." of DATA (see the module docstring)."""
    factory = smtplib.SMTP_SSL if server.use_ssl else smtplib.SMTP
    where = f"{server.host}:{server.port}"
    try:
        connection = factory(server.host, server.port, timeout=server.timeout)
    except smtplib.SMTPResponseException as exc:
        return _by_code(f"connecting to {where}", exc.smtp_code, exc.smtp_error)
    except (smtplib.SMTPException, OSError) as exc:  # refused, unreachable, or no greeting before the timeout
        return Answer(AttemptOutcome.RETRY, f"could not reach {where}: {exc}")
    handed_over = in_data = answered = False
    try:
        connection.ehlo()
        if server.use_tls:
            connection.starttls()
            connection.ehlo()
        if server.user:
            connection.login(server.user, server.password)
        code, reply = connection.mail(sender)
        if code != 250:
            return _by_code("MAIL FROM", code, reply)
        code, reply = connection.rcpt(to)
        if code not in (250, 251):
            return _by_code("RCPT TO", code, reply)
        code, reply = connection.docmd("DATA")
        if code != 354:
            return _by_code("DATA", code, reply)
        in_data = True
        connection.send(_payload(message))
        on_handover()
        handed_over = True
        connection.send(b"." + CRLF)
        code, reply = connection.getreply()
        answered = True
        if code != 250:
            return _by_code("end of DATA", code, reply)
        return Answer(AttemptOutcome.SENT, f"{code} {reply.decode('utf-8', 'replace')}")
    except smtplib.SMTPAuthenticationError as exc:
        return _by_code("login", exc.smtp_code, exc.smtp_error)
    except (smtplib.SMTPException, OSError) as exc:
        if handed_over:
            return Answer(AttemptOutcome.UNKNOWN, f"{where} broke off after the message was handed over: {exc}")
        return Answer(AttemptOutcome.RETRY, f"{where}: {exc or type(exc).__name__}")
    finally:
        if in_data and not answered:  # never say QUIT inside DATA: hang up, and the server drops the message
            connection.close()
        else:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()


def _multipart(fields: dict[str, str], documents: list[Document]) -> tuple[bytes, str]:
    boundary = f"refloop-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for document in documents:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="document"; filename="{document.filename}"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        )
        parts.append(head.encode() + document.content + CRLF)
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def http_fax_send(
    *,
    url: str,
    token: str,
    timeout: int,
    number: str,
    key: str,
    documents: list[Document],
    on_handover: Callable[[], None],
) -> Answer:
    """POST the documents to an HTTP fax gateway with an Idempotency-Key, so a repeat is not faxed twice.

    The gateway answers JSON: {"id": "...", "status": "queued" | "sent" | "delivered" | "failed"}.
    """
    body, content_type = _multipart({"to": number, "reference": key}, documents)
    headers = {"Content-Type": content_type, "Idempotency-Key": key, "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - the URL is a setting
    on_handover()
    try:
        with urlopen(request, timeout=timeout) as response:  # noqa: S310 - the URL is a setting, http(s) only
            status, text = response.status, response.read(4000).decode("utf-8", "replace")
    except HTTPError as exc:
        text = exc.read(500).decode("utf-8", "replace")
        retry = exc.code in (408, 425, 429) or exc.code >= 500
        outcome = AttemptOutcome.RETRY if retry else AttemptOutcome.FAILED
        return Answer(outcome, f"HTTP {exc.code} {exc.reason}: {text}".strip())
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Answer(AttemptOutcome.RETRY, f"fax gateway not reached: {reason}")
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        data = {}
    state = str(data.get("status", "")).lower() if isinstance(data, dict) else ""
    ref = str(data.get("id", "")) if isinstance(data, dict) else ""
    outcome = {"delivered": AttemptOutcome.DELIVERED, "failed": AttemptOutcome.FAILED}.get(state, AttemptOutcome.SENT)
    return Answer(outcome, f"HTTP {status}: {text[:500]}".strip(), ref)
