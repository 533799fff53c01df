"""Mailing a book: one message per address, through the configured SMTP server.

Before each message the book passes the preflight (`kindle.preflight`) with the
address's size limit (a Kindle's `kindle.max_mb`, else `smtp.max_mb`); a book that
fails it is not sent. A temporary failure (a 4xx answer, a dropped connection, a
timeout) is retried with backoff; a refused login or a 5xx answer is final. The
password comes from the environment variable `smtp.password_env` names, and appears
in no message this module makes.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
import time
import unicodedata
from dataclasses import dataclass
from email import encoders
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import quote

from convert.config import Kindle, Smtp
from convert.delivery.kindle import BookUnreadable, KindleRules, preflight, title_of
from convert.errors import ConfigError, ConvertError

log = logging.getLogger(__name__)

_MB = 1_000_000


class NotSent(ConvertError):
    """A book that did not go to an address, and why: `BOOK: not sent to ADDRESS: …`."""

    def __init__(self, book: Path, address: str, reason: str) -> None:
        super().__init__(str(book), f"not sent to {address}: {reason}")


class _Temporary(Exception):
    """A failure worth another attempt."""


@dataclass(frozen=True, slots=True)
class Mailer:
    """Sends books through one server, with the login from the environment."""

    smtp: Smtp
    """The server and how to reach it."""

    kindle: Kindle
    """What a Kindle address takes."""

    password: str
    """The login's password (from the environment; never shown)."""

    def __repr__(self) -> str:  # a log line or traceback never shows the password
        return f"Mailer({self.smtp.host}:{self.smtp.port})"

    def send(self, book: Path, address: str) -> None:
        """Mail `book` to `address`; NotSent (one line) when it does not go."""
        limit = self.limit_for(address)
        try:
            problems = preflight(book, KindleRules(frozenset(self.kindle.languages), limit))
        except BookUnreadable as error:
            raise NotSent(book, address, str(error)) from None
        except OSError as error:
            raise NotSent(book, address, error.strerror or str(error)) from None
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            reason = f"{problems[0]}{more}; see `feedx-convert check {book}`"
            raise NotSent(book, address, reason)
        message = compose(book.read_bytes(), book.name, title_of(book), self.smtp.sender, address)
        attempts = self.smtp.retries + 1
        for attempt in range(attempts):
            try:
                self._deliver(message, address)
                log.info("%s: sent to %s", book, address)
                return
            except _Temporary as error:
                if attempt + 1 == attempts:
                    raise NotSent(book, address, f"{error} ({attempts} attempts)") from None
                pause = self.smtp.backoff * 2**attempt
                log.warning("%s: %s; trying again in %g s", address, error, pause)
                time.sleep(pause)
            except _Final as error:
                raise NotSent(book, address, str(error)) from None

    def limit_for(self, address: str) -> int:
        """The largest book that may be mailed to `address`, in bytes."""
        domain = address.rsplit("@", 1)[-1].lower()
        kindle = any(domain == d or domain.endswith("." + d) for d in self.kindle.domains)
        return int((self.kindle.max_mb if kindle else self.smtp.max_mb) * _MB)

    def _deliver(self, message: Message, address: str) -> None:
        smtp = self.smtp
        try:
            with self._connect() as server:
                if smtp.security == "starttls":
                    server.starttls(context=self._tls())
                if smtp.username:
                    server.login(smtp.username, self.password)
                server.send_message(message, from_addr=smtp.sender, to_addrs=[address])
        except smtplib.SMTPAuthenticationError as error:
            raise _Final(f"login refused ({_said(error.smtp_code, error.smtp_error)})") from None
        except smtplib.SMTPRecipientsRefused as error:
            code, text = next(iter(error.recipients.values()))
            raise _by_code(code, f"address refused ({_said(code, text)})") from None
        except smtplib.SMTPResponseException as error:
            said = _said(error.smtp_code, error.smtp_error)
            raise _by_code(error.smtp_code, f"the server answered {said}") from None
        except smtplib.SMTPNotSupportedError:
            raise _Final("the server offers no STARTTLS (smtp.security)") from None
        except smtplib.SMTPServerDisconnected:
            raise _Temporary("the server dropped the connection") from None
        except ssl.SSLError as error:
            raise _Final(f"TLS failed: {error.reason or error}") from None
        except TimeoutError:
            raise _Temporary(f"no answer within {smtp.timeout:g} s (smtp.timeout)") from None
        except OSError as error:
            where = f"{smtp.host}:{smtp.port}"
            raise _Temporary(f"cannot reach {where}: {error.strerror or error}") from None

    def _connect(self) -> smtplib.SMTP:
        smtp = self.smtp
        if smtp.security == "tls":
            return smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=self._tls())
        return smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.smtp.ca_file or None)


class _Final(Exception):
    """A failure that another attempt would meet again."""


def _by_code(code: int, reason: str) -> Exception:
    return _Temporary(reason) if 400 <= code < 500 else _Final(reason)


def _said(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(words.split())}".strip()


def mailer(smtp: Smtp, kindle: Kindle) -> Mailer:
    """The mailer of the config; ConfigError when it cannot send (no host, no password)."""
    if not smtp.host:
        raise ConfigError("smtp.host", "no mail server: set smtp.host (and smtp.from)")
    if not smtp.sender:
        raise ConfigError("smtp.from", "no sender: the address approved in Amazon's settings")
    password = ""
    if smtp.username:
        if not smtp.password_env:
            raise ConfigError(
                "smtp.password_env", "a login needs the name of the variable holding its password"
            )
        password = os.environ.get(smtp.password_env, "")
        if not password:
            raise ConfigError(
                "smtp.password_env",
                f"the environment variable {smtp.password_env} is not set (it holds the password)",
            )
    return Mailer(smtp, kindle, password)


def compose(data: bytes, file_name: str, title: str, sender: str, address: str) -> Message:
    """The message: a line of text (Send to Kindle refuses empty ones) and the book."""
    # The compat32 classes: they keep the Content-Disposition below as written, where
    # the newer EmailMessage would render its two file names as one.
    message = MIMEMultipart()
    message["From"] = sender
    message["To"] = address
    message["Subject"] = Header(title, "utf-8").encode()
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1])
    message.attach(MIMEText(f"{title}\n\nThe book is attached: {file_name}\n", "plain", "utf-8"))
    book = MIMEBase("application", "epub+zip")
    book.set_payload(data)
    encoders.encode_base64(book)
    safe = ascii_file_name(file_name)
    # The ASCII name for every mail program, the real one (RFC 2231) for those that read it.
    disposition = f'attachment; filename="{safe}"'
    if safe != file_name:
        disposition += f"; filename*=utf-8''{quote(file_name, safe='')}"
    book["Content-Disposition"] = disposition
    message.attach(book)
    return message


def ascii_file_name(name: str) -> str:
    """`name` in ASCII letters, digits, `.`, `-` and `_` (accents dropped; others `-`)."""
    stem, dot, ending = name.rpartition(".")
    if not dot:
        stem, ending = name, ""
    plain = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    plain = re.sub(r"[^A-Za-z0-9._-]+", "-", plain).strip("-.") or "book"
    ending = re.sub(r"[^A-Za-z0-9]+", "", ending)
    return f"{plain}.{ending}" if ending else plain
