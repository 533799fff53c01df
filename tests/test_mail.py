"""Mailing books: a real SMTP server on 127.0.0.1 (aiosmtpd), STARTTLS with a
certificate made here (trustme), and what arrives checked byte for byte.

Servers that answer 421 once, refuse the login, or drop the connection in the middle
of DATA; a book over its address's limit or failing the preflight is never sent; the
main job's `send_to` mails each book once per address, however often it runs.
"""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import ssl
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from goldens import ROOT

from convert.cli import main
from convert.delivery.kindle import title_of

PASSWORD = "s3cret-Pa55"
PASSWORD_ENV = "FEEDX_TEST_SMTP_PASSWORD"
SENDER = "digest@example.org"
KINDLE = "reader@kindle.com"


class Mailbox:
    """The server's handler: keeps what arrives; answers DATA as told, in turn."""

    def __init__(self) -> None:
        self.arrived: list[Envelope] = []
        self.answers: list[str] = []  # for the next DATA commands: "drop", or a reply
        self.greetings = 0  # EHLOs: two per connection (before and after STARTTLS)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self.greetings += 1
        session.host_name = hostname  # what aiosmtpd leaves to a handler's EHLO hook
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        answer = self.answers.pop(0) if self.answers else "250 OK"
        if answer == "drop":
            assert server.transport is not None
            server.transport.close()  # mid-DATA: the message is never acknowledged
            return "250 never seen"
        if answer.startswith("250"):
            self.arrived.append(envelope)
        return answer

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == b"reader"
        # handled=False: aiosmtpd answers (535 on a failure) itself.
        return AuthResult(success=ok and data.password == PASSWORD.encode(), handled=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


@pytest.fixture
def mailbox(authority: tuple[trustme.CA, Path]) -> Iterator[tuple[Mailbox, int]]:
    """A server that takes mail only after STARTTLS and a login."""
    ca, _path = authority
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_require_tls=True,
        authenticator=box.authenticate,
    )
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("book")
    path = folder / "digest-2024-W21.epub"
    source = str(ROOT / "examples" / "wsj-no-images.txt")
    assert main(["epub", source, "-o", str(path), "--week", "all"]) == 0
    return path


def config(tmp_path: Path, port: int, ca: Path, more: str = "", kindle: str = "") -> Path:
    path = tmp_path / "mail.yaml"
    path.write_text(
        "smtp:\n"
        "  host: 127.0.0.1\n"
        f"  port: {port}\n"
        "  security: starttls\n"
        "  username: reader\n"
        f"  password_env: {PASSWORD_ENV}\n"
        f"  from: {SENDER}\n"
        "  timeout: 5\n"
        "  retries: 2\n"
        "  backoff: 0.05\n"
        f"  ca_file: {ca}\n" + more + (f"kindle:\n{kindle}" if kindle else ""),
        "utf-8",
    )
    return path


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)


def send(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], list[str]]:
    capsys.readouterr()
    code = main(args)
    captured = capsys.readouterr()
    assert PASSWORD not in captured.out + captured.err  # never shown, whatever happened
    return code, captured.out.splitlines(), captured.err.splitlines()


def parsed(envelope: Envelope) -> email.message.EmailMessage:
    assert isinstance(envelope.content, bytes)
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


@pytest.mark.usefixtures("password")
def test_the_book_arrives_byte_for_byte_over_starttls(
    mailbox: tuple[Mailbox, int],
    authority: tuple[trustme.CA, Path],
    book: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    box, port = mailbox
    named = tmp_path / "周报 2024-W21.epub"
    shutil.copy(book, named)
    job = config(tmp_path, port, authority[1])
    code, out, err = send(
        ["-c", str(job), "send", str(named), "--to", KINDLE, "--to", "me@example.org"], capsys
    )
    assert (code, err) == (0, [])
    assert out == [f"{named}: sent to {KINDLE}", f"{named}: sent to me@example.org"]
    assert [e.rcpt_tos for e in box.arrived] == [[KINDLE], ["me@example.org"]]
    for envelope in box.arrived:
        assert envelope.mail_from == SENDER
        message = parsed(envelope)
        assert message["Subject"] == title_of(book) and "2024" in message["Subject"]
        assert message["From"] == SENDER
        (attachment,) = message.iter_attachments()
        assert attachment.get_content_type() == "application/epub+zip"
        assert attachment.get_content() == book.read_bytes()
        disposition = attachment["Content-Disposition"].encode()  # as sent
        raw = envelope.content
        assert isinstance(raw, bytes)
        assert b'filename="2024-W21.epub"' in raw
        (encoded,) = [p for p in raw.split(b";") if p.strip().startswith(b"filename*=")]
        value = encoded.strip().split(b"=", 1)[1].split(b"\r\n")[0].decode()
        charset, _language, quoted = value.split("'", 2)
        assert (charset, unquote(quoted, charset)) == ("utf-8", named.name), disposition
        with zipfile.ZipFile(book) as opened:  # a whole book, still
            assert opened.read("mimetype") == b"application/epub+zip"


@pytest.mark.usefixtures("password")
def test_a_421_is_retried_and_the_book_goes_once(
    mailbox: tuple[Mailbox, int],
    authority: tuple[trustme.CA, Path],
    book: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    box, port = mailbox
    box.answers = ["421 4.3.2 Service busy, try again later"]
    job = config(tmp_path, port, authority[1])
    code, out, err = send(["-c", str(job), "send", str(book), "--to", KINDLE], capsys)
    assert code == 0 and out == [f"{book}: sent to {KINDLE}"]
    assert len(box.arrived) == 1
    assert len(err) == 1 and err[0].startswith(f"warning: {KINDLE}: the server answered 421")


@pytest.mark.usefixtures("password")
def test_a_connection_dropped_mid_data_is_retried(
    mailbox: tuple[Mailbox, int],
    authority: tuple[trustme.CA, Path],
    book: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    box, port = mailbox
    box.answers = ["drop"]
    job = config(tmp_path, port, authority[1])
    code, _out, err = send(["-c", str(job), "send", str(book), "--to", KINDLE], capsys)
    assert code == 0 and len(box.arrived) == 1
    assert err == [f"warning: {KINDLE}: the server dropped the connection; trying again in 0.05 s"]
    assert parsed(box.arrived[0]).get_payload()  # the message arrived whole the second time


@pytest.mark.usefixtures("password")
def test_a_server_that_always_drops_is_one_error_line_and_exit_1(
    mailbox: tuple[Mailbox, int],
    authority: tuple[trustme.CA, Path],
    book: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    box, port = mailbox
    box.answers = ["drop"] * 3
    job = config(tmp_path, port, authority[1])
    code, out, err = send(["-c", str(job), "send", str(book), "--to", KINDLE], capsys)
    assert (code, out, box.arrived) == (1, [], [])
    assert err[-1] == (
        f"error: {book}: not sent to {KINDLE}: the server dropped the connection (3 attempts)"
    )


def test_a_refused_login_is_one_line_and_not_retried(
    mailbox: tuple[Mailbox, int],
    authority: tuple[trustme.CA, Path],
    book: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    box, port = mailbox
    monkeypatch.setenv(PASSWORD_ENV, "wrong-" + PASSWORD)
    job = config(tmp_path, port, authority[1])
    code, out, err = send(["-c", str(job), "send", str(book), "--to", KINDLE], capsys)
    assert (code, out, box.arrived, box.greetings) == (1, [], [], 2)  # one connection
    assert len(err) == 1
    assert err[0].startswith(f"error: {book}: not sent to {KINDLE}: login refused (535")
    assert "wrong-" not in err[0]


def test_a_missing_password_is_a_config_error(
    authority: tuple[trustme.CA, Path],
    book: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    job = config(tmp_path, free_port(), authority[1])
    code, _out, err = send(["-c", str(job), "send", str(book), "--to", KINDLE], capsys)
    assert code == 2
    assert err == [
        f"error: smtp.password_env: the environment variable {PASSWORD_ENV} is not set"
        " (it holds the password)"
    ]


@pytest.mark.usefixtures("password")
def test_a_book_over_the_limit_or_failing_the_preflight_is_not_sent(
    mailbox: tuple[Mailbox, int],
    authority: tuple[trustme.CA, Path],
    book: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    box, port = mailbox
    job = config(tmp_path, port, authority[1], kindle="  max_mb: 0.001\n")
    code, _out, err = send(
        ["-c", str(job), "send", str(book), "--to", KINDLE, "--to", "me@example.org"], capsys
    )
    size = book.stat().st_size / 1e6
    assert code == 1
    assert err == [
        f"error: {book}: not sent to {KINDLE}: {size:.1f} MB, over the 0.001 MB a mailed"
        f" book may weigh (lower epub.budget_mb); see `feedx-convert check {book}`"
    ]
    assert [e.rcpt_tos for e in box.arrived] == [["me@example.org"]]  # smtp.max_mb: 25

    broken = tmp_path / "broken.epub"
    with zipfile.ZipFile(book) as source, zipfile.ZipFile(broken, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith(".opf"):
                data = data.replace(b"<dc:language>zh-Hans<", b"<dc:language>xx<")
            target.writestr(info, data)
    job = config(tmp_path, port, authority[1])
    code, _out, err = send(["-c", str(job), "send", str(broken), "--to", KINDLE], capsys)
    assert code == 1 and len(box.arrived) == 1
    assert err == [
        f"error: {broken}: not sent to {KINDLE}: dc:language 'xx' is not a language Kindle"
        f" converts; see `feedx-convert check {broken}`"
    ]


@pytest.mark.usefixtures("password")
def test_the_job_sends_each_book_once_per_address(
    mailbox: tuple[Mailbox, int],
    authority: tuple[trustme.CA, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A rerun (the book unchanged) sends nothing; a new address gets the book once; a
    new book goes again. Remembered in the archive: two hosts' runs share it."""
    box, port = mailbox
    source = tmp_path / "in"
    source.mkdir()
    shutil.copy(ROOT / "examples" / "wsj-no-images.txt", source)

    def job(addresses: str) -> Path:
        return config(
            tmp_path,
            port,
            authority[1],
            more=(
                f"archive: {tmp_path / 'archive.sqlite'}\n"
                f"sources:\n  - path: {source}\n"
                "outputs:\n"
                f"  - epub: {{path: {tmp_path / 'out' / 'book.epub'}, week: all,"
                f" send_to: [{addresses}]}}\n"
            ),
        )

    first = job(KINDLE)
    assert send(["-c", str(first), "run", "-q"], capsys)[0] == 0
    assert send(["-c", str(first), "run", "-q"], capsys)[0] == 0
    assert [e.rcpt_tos for e in box.arrived] == [[KINDLE]]

    both = job(f"{KINDLE}, me@example.org")
    assert send(["-c", str(both), "run", "-q"], capsys)[0] == 0
    assert [e.rcpt_tos for e in box.arrived] == [[KINDLE], ["me@example.org"]]

    shutil.copy(ROOT / "examples" / "nyt-putin-harbin.txt", source)  # a new book
    assert send(["-c", str(both), "run", "-q"], capsys)[0] == 0
    assert sorted(e.rcpt_tos[0] for e in box.arrived[2:]) == sorted([KINDLE, "me@example.org"])
    books = [parsed(e).get_payload()[1].get_content() for e in box.arrived]  # type: ignore[index]
    assert books[0] == books[1] != books[2] == books[3]


def test_a_failed_mailing_fails_the_run_and_the_other_outputs_are_written(
    mailbox: tuple[Mailbox, int],
    authority: tuple[trustme.CA, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refused login: one error line, exit 1; the book and the feed are written, and
    the next run (the login fixed) sends the book it could not send."""
    box, port = mailbox
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    book, feed = tmp_path / "out" / "book.epub", tmp_path / "out" / "feed.xml"
    job = config(
        tmp_path,
        port,
        authority[1],
        more=(
            f"archive: {tmp_path / 'archive.sqlite'}\n"
            f"sources:\n  - path: {ROOT / 'examples' / 'wsj-no-images.txt'}\n"
            "outputs:\n"
            f"  - epub: {{path: {book}, week: all, send_to: [{KINDLE}]}}\n"
            f"  - feed: {{path: {feed}, self_url: 'https://e.org/f.xml'}}\n"
        ),
    )
    code, _out, err = send(["-c", str(job), "run", "-q"], capsys)
    assert code == 1 and box.arrived == []
    assert [line for line in err if line.startswith("error:")] == [
        f"error: {book}: not sent to {KINDLE}: login refused (535 5.7.8 Authentication"
        " credentials invalid)"
    ]
    assert book.stat().st_size > 0 and feed.stat().st_size > 0
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    assert send(["-c", str(job), "run", "-q"], capsys)[0] == 0
    assert [e.rcpt_tos for e in box.arrived] == [[KINDLE]]
