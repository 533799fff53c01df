"""The command line as a user meets it: messages, exit codes, files."""

from __future__ import annotations

import http.server
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from goldens import ROOT

from convert.cli import main

SEED = ROOT / "examples" / "nyt-putin-harbin.txt"


def run(
    *args: str, stdin: bytes | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """`python -m convert ARGS` in a fresh process, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "convert", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )


def test_one_input_prints_markdown() -> None:
    done = run("markdown", str(SEED))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("---\ntitle: 普京访问哈工大")
    assert done.stderr == ""


def test_standard_input() -> None:
    done = run("markdown", "-", stdin=SEED.read_bytes())
    assert done.returncode == 0, done.stderr
    assert "# 普京访问哈工大" in done.stdout


def test_bad_inputs_are_one_line_each_and_the_rest_is_converted(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    notes = tmp_path / "notes.txt"
    notes.write_text("just some notes\n", "utf-8")
    undecodable = tmp_path / "undecodable.txt"
    undecodable.write_bytes(
        b"<!--1716170821000-->\n[t](https://a.org/x)\n------\n\n<p>\xff\xfe\xfd</p>"
    )
    missing = tmp_path / "missing.txt"
    out = tmp_path / "out"
    done = run(
        "markdown",
        str(missing),
        str(empty),
        str(SEED),
        str(notes),
        str(undecodable),
        "-o",
        str(out),
    )
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines == [
        f"error: {missing}: no such file",
        f"error: {empty}: empty file",
        f"error: {notes}: not a feedx article, feed, OPML list or HTML page "
        "(expected '<!--epoch-->' and '[title](url)', <rss>, <feed>, <opml> or HTML tags)",
        f"error: {undecodable}: undecodable bytes: neither UTF-8 (byte 53) nor GB18030 (byte 53)",
    ]
    assert "Traceback" not in done.stderr
    assert [p.name for p in out.iterdir()] == [
        "2024-05-20-world-20240520-putin-xi-china-russia-military-ties.md"
    ]


def test_folder_output_for_all_examples(tmp_path: Path) -> None:
    examples = sorted(str(p) for p in (ROOT / "examples").glob("*.txt"))
    assert main(["markdown", *examples, "-o", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == len(examples)
    assert all(n.isascii() and len(n) <= 100 and n.endswith(".md") for n in names)
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file is left behind


def test_a_folder_is_its_inputs_and_a_readme_beside_them_is_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / "saved"
    folder.mkdir()
    shutil.copy(SEED, folder / "putin.txt")
    readme = folder / "README.md"
    # Markdown that mentions tags in passing is documentation, not an HTML page.
    readme.write_text("# Saved\n\nDumps whose body starts with `<h2>` or `<p>`.\n", "utf-8")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(64))
    out = tmp_path / "out"
    done = run("-v", "markdown", str(folder), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert [p.suffix for p in out.iterdir()] == [".md"]  # the one dump, converted
    assert "2 files that are no input left alone (README.md, photo.jpg)" in done.stderr
    matched = run("-v", "markdown", str(folder / "*"), "-o", str(tmp_path / "globbed"))
    assert matched.returncode == 0, matched.stderr  # a glob we expand is taken the same way
    assert [p.suffix for p in (tmp_path / "globbed").iterdir()] == [".md"]
    named = run("markdown", str(readme))  # named on its own, it is refused loudly
    assert named.returncode == 1
    assert f"{readme}: not a feedx article" in named.stderr


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["markdown", str(SEED), str(SEED)]) == 2
    assert "several inputs need -o" in capsys.readouterr().err
    assert main(["markdown", str(SEED), "--download-images"]) == 2
    assert main(["frobnicate"]) == 2


def test_unknown_config_key_names_key_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "my.yaml"
    config.write_text("timezone: Asia/Shanghai\nimage_mirorr: https://x.org/{path}\n", "utf-8")
    assert main(["-c", str(config), "markdown", str(SEED)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {config}:2: image_mirorr: unknown key")
    assert len(err.splitlines()) == 1


def test_inspect_prints_article_json() -> None:
    done = run("inspect", str(SEED))
    assert done.returncode == 0, done.stderr
    assert '"published": "2024-05-20T09:52:45+08:00"' in done.stdout


@pytest.mark.parametrize(
    "command",
    [["markdown"], ["inspect"], ["feed"], ["ingest"], ["epub"], ["archive", "stats"], ["run"]],
    ids=" ".join,
)
def test_help_shows_examples(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    assert "Example" in capsys.readouterr().out


def test_terminal_escapes_in_messages_are_not_echoed_raw(tmp_path: Path) -> None:
    hostile = tmp_path / "evil\x1b[31mred\u202e.txt"
    hostile.write_bytes(b"")
    done = run("markdown", str(hostile), "-o", str(tmp_path / "o"))
    assert done.returncode == 1
    assert "\x1b" not in done.stderr and "\u202e" not in done.stderr
    assert "\\x1b[31mred\\u202e" in done.stderr


def test_feed_command_writes_the_format_its_ending_says(tmp_path: Path) -> None:
    feed = str(ROOT / "examples" / "feedx-nytimes.xml")
    for name, root in (("out.xml", "<rss"), ("out.atom", "<feed"), ("out.json", '"version"')):
        done = run(
            "-q",
            "feed",
            feed,
            "-o",
            str(tmp_path / name),
            "--self-url",
            f"https://example.org/{name}",
        )
        assert done.returncode == 0, done.stderr
        assert root in (tmp_path / name).read_text("utf-8")[:300]


def test_feed_from_standard_input_and_a_missing_source(tmp_path: Path) -> None:
    out = tmp_path / "f.xml"
    done = run(
        "-q",
        "feed",
        "-",
        str(tmp_path / "nope.xml"),
        "-o",
        str(out),
        stdin=(ROOT / "examples" / "feedx-nytimes.xml").read_bytes(),
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"error: {tmp_path / 'nope.xml'}: no such file"]
    assert out.read_text("utf-8").count("<item>") == 11  # the 12th has no text


def test_markdown_of_a_feed_needs_a_folder(tmp_path: Path) -> None:
    feed = str(ROOT / "examples" / "feedx-nytimes.xml")
    done = run("markdown", feed)
    assert done.returncode == 1
    assert "holds 11 articles; give -o DIR" in done.stderr
    done = run("-q", "markdown", feed, "-o", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert len(list(tmp_path.glob("*.md"))) == 11


def test_parallel_markdown_matches_serial(tmp_path: Path) -> None:
    inputs = [str(p) for p in sorted((ROOT / "examples").glob("*.txt"))]
    inputs += [str(ROOT / "examples" / "feedx-nytimes.xml")]
    assert main(["-q", "markdown", *inputs, "-o", str(tmp_path / "one"), "--jobs", "1"]) == 0
    assert main(["-q", "markdown", *inputs, "-o", str(tmp_path / "two"), "--jobs", "2"]) == 0
    one = {p.name: p.read_bytes() for p in (tmp_path / "one").iterdir()}
    two = {p.name: p.read_bytes() for p in (tmp_path / "two").iterdir()}
    assert one == two
    assert len(one) == 18


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_parallel_feed_matches_serial(tmp_path: Path, fmt: str) -> None:
    """Worker processes make each item's summary where they read it: same feed bytes."""
    inputs = [str(p) for p in sorted((ROOT / "examples").glob("*.txt"))]
    inputs += [str(ROOT / "examples" / "feedx-nytimes.xml")]
    assert len(inputs) >= 8  # enough for the worker pool
    feeds = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"feed-{jobs}.{fmt}"
        argv = ["-q", "feed", *inputs, "-o", str(out), "--format", fmt, "--jobs", jobs]
        assert main([*argv, "--self-url", "https://example.org/feed"]) == 0
        feeds[jobs] = out.read_bytes()
    assert feeds["1"] == feeds["2"]
    item = {"rss": b"<item>", "atom": b"<entry>", "json": b'"content_html"'}[fmt]
    assert feeds["1"].count(item) == 18


@pytest.mark.parametrize("command", ["markdown", "ingest"])
def test_parallel_workers_messages_reach_the_parents_stderr(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Errors and warnings said in a worker are told by the parent, once each, in order."""
    inputs = [str(p) for p in sorted((ROOT / "examples").glob("*.txt"))]
    seed = ROOT / "examples" / "nyt-putin-harbin.txt"
    copy = tmp_path / "copy-of-seed.txt"
    copy.write_bytes(seed.read_bytes())
    missing = str(tmp_path / "missing.txt")
    inputs = [missing, *inputs, str(copy)]
    assert len(inputs) >= 8  # enough for the worker pool
    if command == "markdown":
        args = ["markdown", *inputs, "-o", str(tmp_path / "md"), "--jobs", "2"]
    else:
        args = ["ingest", *inputs, "--archive", str(tmp_path / "a.sqlite"), "--jobs", "2"]
    assert main(args) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines.count(f"error: {missing}: no such file") == 1
    if command == "markdown":
        copies = [line for line in lines if "the same article as" in line]
        assert len(copies) == 1, lines
        assert len(list((tmp_path / "md").glob("*.md"))) == len(inputs) - 2


def _live_processes_of_group(group: int) -> list[int]:
    """Processes of `group` that are alive (a zombie waiting to be reaped is not)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_killed_run_leaves_no_worker_behind(tmp_path: Path) -> None:
    """A SIGKILLed run's workers end with it (they would wait for work forever, holding
    its stdout open, so that whoever reads it never sees the end)."""
    seed = (ROOT / "examples" / "nyt-putin-harbin.txt").read_text("utf-8")
    inputs = []
    for number in range(400):
        path = tmp_path / f"{number:03d}.txt"
        path.write_text(seed.replace("putin-xi", f"putin-xi-{number}"), "utf-8")
        inputs.append(str(path))
    out = tmp_path / "md"
    command = [sys.executable, "-m", "convert", "-q", "markdown", *inputs, "-o", str(out)]
    child = subprocess.Popen([*command, "--jobs", "2"], start_new_session=True)
    deadline = time.monotonic() + 60
    while not _live_processes_of_group(child.pid)[1:] and time.monotonic() < deadline:
        time.sleep(0.02)  # until the workers have started
    workers = _live_processes_of_group(child.pid)
    assert len(workers) >= 2, "the pool never started"
    child.kill()
    child.wait()
    while _live_processes_of_group(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _live_processes_of_group(child.pid)
    for pid in left:  # do not leave them to the next test either
        os.kill(pid, 9)
    assert left == []


def _on_a_terminal(
    argv: list[str], cwd: Path, *, interrupt_on: bytes | None = None
) -> tuple[int, str]:
    """`feedx-convert ARGV` with its stdout and stderr on a pseudo-terminal: the exit
    code and what the terminal showed, escape sequences removed. With `interrupt_on`,
    Ctrl-C is pressed once the terminal shows it (SIGINT to the job's process group)."""
    master, slave = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "convert", *argv],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=cwd,
        start_new_session=True,  # its own group, as a terminal's foreground job is
        env={**os.environ, "COLUMNS": "120", "TERM": "xterm", "PYTHONIOENCODING": "utf-8"},
    )
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            shown += data
        elif child.poll() is not None:
            break
        if interrupt_on is not None and interrupt_on in shown:
            time.sleep(0.3)
            os.killpg(child.pid, signal.SIGINT)
            interrupt_on = None
    os.close(master)
    code = child.wait(timeout=30)
    return code, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode("utf-8", "replace"))


def test_a_run_on_a_terminal_shows_its_phases_and_in_a_pipe_nothing_but_the_summary(
    tmp_path: Path,
) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    code, shown = _on_a_terminal(["run", "--archive", "out/archive.sqlite"], tmp_path)
    assert code == 0, shown
    assert "Traceback" not in shown
    assert "Reading" in shown and "Writing out/feed.xml" in shown
    piped = subprocess.run(
        [sys.executable, "-m", "convert", "run", "--archive", "out/archive.sqlite"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert piped.returncode == 0
    assert "Reading" not in piped.stderr and "\x1b[" not in piped.stderr + piped.stdout
    assert "nothing changed: every output is up to date" in piped.stdout


class _StallingFeed(http.server.BaseHTTPRequestHandler):
    """Answers nothing until the test lets it go: a run waits on it, reading."""

    release = threading.Event()

    def do_GET(self) -> None:
        self.release.wait(60)
        self.send_response(503)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def test_ctrl_c_ends_the_progress_line_says_interrupted_and_exits_130(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StallingFeed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    (tmp_path / "job.yaml").write_text(
        "download: {allow_private: true}\n"
        f"sources:\n  - path: {url}\n  - path: examples/wsj-no-images.txt\n"
        "outputs:\n  - feed: {path: out/feed.xml, self_url: 'https://example.org/f.xml'}\n",
        "utf-8",
    )
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    command = ["-c", "job.yaml", "run", "-j", "1", "--archive", "archive.sqlite"]
    try:
        code, text = _on_a_terminal(command, tmp_path, interrupt_on=b"Reading")
    finally:
        _StallingFeed.release.set()
        server.shutdown()
    assert code == 130, text
    lines = [line.strip("\r") for line in text.split("\n")]
    assert "interrupted" in lines, text  # a line of its own, not glued to the bar
    assert "Traceback" not in text
    assert not (tmp_path / "out" / "feed.xml").exists()  # stopped while reading
    assert not list(tmp_path.rglob("*.tmp"))  # nothing half-written left behind


@pytest.mark.parametrize(
    "command",
    [
        ["markdown", str(SEED)],
        ["inspect", str(SEED)],
        ["feed", str(SEED), "-o", "-"],
        ["archive", "stats", "--archive", "archive.sqlite"],
    ],
    ids=lambda command: command[0] if command[0] != "archive" else "archive-stats",
)
@pytest.mark.parametrize("stdout", ["full", "closed"])
def test_a_full_or_closed_standard_output_is_one_error_line_and_exit_1(
    command: list[str], stdout: str, tmp_path: Path
) -> None:
    if command[0] == "archive":
        assert main(["ingest", str(SEED), "--archive", str(tmp_path / "archive.sqlite")]) == 0
    redirect = "> /dev/full" if stdout == "full" else ">&-"
    done = subprocess.run(
        ["sh", "-c", f'exec "$@" {redirect}', "sh", sys.executable, "-m", "convert", *command],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"},
    )
    reason = "No space left on device" if stdout == "full" else "standard output is closed"
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [f"error: <stdout>: cannot write: {reason}"]
