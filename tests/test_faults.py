"""Faults: a SIGKILL at any moment of any writer, and a full disk.

Each writer (Markdown folder, feed, EPUB, ingest, the main job) runs the real command
line in a child forked from this process, where every module is imported already, so
that a child starts in milliseconds. Before the faults, the outputs hold a previous
version, made from the examples with other titles and one file fewer, so that a new
run changes them.

- Killed 50 times per writer, one child per core at a time: at a moment of its CPU
  time drawn over one undisturbed run (a busy machine stretches the clock on the wall,
  not that one) or, every other time, in a write (see `Victim`). Afterwards each output
  is its previous version byte for byte or the complete new one (both versions parse),
  and the archive passes `PRAGMA integrity_check`, holds every article it held and each
  source's articles all old or all new (one transaction per source). A kill inside
  `write_atomic` leaves a hidden `.NAME.feedx-convert-XXXXXXXX.tmp` that no reader takes for
  an output and that the next run writing into the folder removes once it is stale.
- On a full disk (a filled-up tmpfs where this machine lets us mount one; a file size
  limit, RLIMIT_FSIZE, everywhere) the command exits 1 with one `error: PATH: reason`
  line per output it could not write and no traceback; each output is its previous
  version or the new one, never part of one, and no temporary file is left.

The kills go by /proc/PID/schedstat: Linux only.
"""

from __future__ import annotations

import functools
import glob
import io
import json
import math
import os
import random
import re
import resource
import selectors
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import feedparser
import pytest
import yaml
from conftest import read_source
from goldens import ROOT
from lxml import etree

from convert.cli import main
from convert.config import load_config
from convert.fsutil import STALE_TEMP_SECONDS, FileBatch, write_atomic, write_if_changed
from convert.plan import settings_of

KILLS = 50
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
LANES = max(2, min(8, CORES or 2))  # children killed side by side: one per core
TIMEOUT = 120  # seconds a run may take before the test calls it hung
ARCHIVE = "out/archive.sqlite"
TEMP = re.compile(r"\.(?P<target>.+)\.feedx-convert-[a-z0-9_]{8}\.tmp")
DROPPED = "zaobao-realtime.txt"  # not in the previous version: the new one adds it
FILLER = "FILLER"  # fills the tmpfs; not an output


@dataclass(frozen=True)
class Writer:
    """One command under test, run in its work folder; it writes only into `out/`."""

    name: str
    argv: tuple[str, ...]  # globs are expanded in the work folder, as a shell would
    archive: bool  # writes the archive at ARCHIVE
    fsize: int  # the file size limit for the full-disk test: below its outputs' sizes


WRITERS = {
    w.name: w
    for w in (
        Writer("markdown", ("markdown", "examples/*.txt", "-o", "out/md"), False, 4096),
        Writer(
            "feed",
            (
                "feed",
                "examples/feedx-nytimes.xml",
                "examples/*.txt",
                "-o",
                "out/feed.xml",
                "--self-url",
                "https://example.org/feed.xml",
            ),
            False,
            40_000,
        ),
        Writer(
            "epub",
            ("-c", "overlay.yaml", "epub", "examples/*.txt", "-o", "out/book.epub"),
            False,
            40_000,
        ),
        Writer(
            "ingest",
            ("ingest", "examples/*.txt", "examples/*.xml", "--archive", ARCHIVE),
            True,
            40_000,
        ),
        # The shipped job; one process, so that a kill leaves no worker behind.
        Writer("run", ("run", "--archive", ARCHIVE, "-j", "1"), True, 40_000),
    )
}


# --- children ------------------------------------------------------------------------------


def expand(argv: tuple[str, ...], cwd: Path) -> list[str]:
    out: list[str] = []
    for arg in argv:
        if glob.has_magic(arg):
            out += sorted(glob.glob(arg, root_dir=cwd))
        else:
            out.append(arg)
    return out


def fork_cli(argv: list[str], cwd: Path, fsize: int | None, out: int, err: int) -> int:
    """Start `feedx-convert ARGV` in a forked child, in `cwd`, writing to fds out and err."""
    pid = os.fork()
    if pid:
        return pid
    code = 70
    try:
        os.chdir(cwd)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            stream = io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8")
            setattr(sys, name, stream)
        os.environ["XDG_CACHE_HOME"] = str(cwd / "cache")
        if fsize is not None:
            # Writes past the limit then fail with EFBIG instead of killing the process.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        code = main(argv)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def cpu_time(pid: int) -> float:
    """Seconds of CPU the process has had so far, as the kernel counts it."""
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as stats:
            return int(stats.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return math.inf  # reaped already: past any moment


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str
    cpu: float  # seconds of CPU the child took
    trace: list[tuple[float, float]]  # (time.time(), CPU seconds so far), while it ran

    def cpu_at(self, moment: float) -> float:
        """The child's CPU time at wall-clock `moment` (a file's mtime, say)."""
        earlier = [cpu for wall, cpu in self.trace if wall <= moment]
        return earlier[-1] if earlier else 0.0


def run_cli(argv: list[str], cwd: Path, fsize: int | None = None) -> Done:
    """Run to the end; stdout and stderr through pipes (a file size limit spares them)."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    trace = [(time.time(), 0.0)]
    pid = fork_cli(argv, cwd, fsize, out_w, err_w)
    os.close(out_w)
    os.close(err_w)
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    deadline = time.perf_counter() + TIMEOUT
    with selectors.DefaultSelector() as selector:
        for fd in chunks:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            if time.perf_counter() > deadline:  # hung: fail, but leave nothing running
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise AssertionError(f"{argv}: no end after {TIMEOUT} s")
            for key, _ in selector.select(timeout=0.001):
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fd].append(data)
                else:
                    selector.unregister(key.fd)
                    os.close(key.fd)
            trace.append((time.time(), cpu_time(pid)))
    _, status, usage = os.wait4(pid, 0)
    text = {fd: b"".join(parts).decode("utf-8", "replace") for fd, parts in chunks.items()}
    cpu = usage.ru_utime + usage.ru_stime
    return Done(os.waitstatus_to_exitcode(status), text[out_r], text[err_r], cpu, trace)


def reap(pid: int) -> int:
    """The child's exit code once it ends; killed (and the test failed) if it hangs."""
    deadline = time.perf_counter() + TIMEOUT
    while time.perf_counter() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"child {pid}: no end after {TIMEOUT} s")


def ended(pid: int) -> bool:
    """The child has ended (well: a kill test's runs never fail on their own)."""
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        assert os.waitstatus_to_exitcode(status) == 0
    return bool(done)


def kill(pid: int) -> bool:
    """SIGKILL the child and reap it; False when it had ended before the signal."""
    os.kill(pid, signal.SIGKILL)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    assert code in (0, -signal.SIGKILL)  # 0: it ended between the last look and the kill
    return code != 0


# --- states ----------------------------------------------------------------------------------


def snapshot(out: Path) -> dict[str, bytes]:
    """Every file under `out` by relative path, but for temporary files and the filler."""
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not TEMP.fullmatch(p.name) and p.name != FILLER
    }


def outputs(files: dict[str, bytes]) -> dict[str, bytes]:
    """The outputs among `files`: all but the archive and its companions (lock, WAL)."""
    return {rel: data for rel, data in files.items() if not rel.startswith("archive.sqlite")}


def temps(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob(".*") if TEMP.fullmatch(p.name))


def restore(out: Path, files: dict[str, bytes]) -> None:
    """Put `files` back; remove what they do not hold (but temporary files)."""
    for rel in snapshot(out):
        if rel not in files:
            (out / rel).unlink()
    for rel, data in files.items():
        path = out / rel
        if not path.exists() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def archive_rows(path: Path) -> dict[str, str]:
    """Key to content hash of every article, after checking the file."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return dict(conn.execute("SELECT key, content_hash FROM article").fetchall())
    finally:
        conn.close()


def check_complete(rel: str, data: bytes) -> None:
    """`data` is a whole output of its kind, as its readers see it."""
    if rel.endswith((".xml", ".atom")):
        parsed = feedparser.parse(data)
        assert parsed.bozo == 0 and parsed.entries, rel
    elif rel.endswith(".json"):
        assert json.loads(data)["items"], rel
    elif rel.endswith(".epub"):
        with zipfile.ZipFile(io.BytesIO(data)) as book:
            assert book.testzip() is None, rel
            container = etree.fromstring(book.read("META-INF/container.xml"))
            (opf,) = container.xpath("//*[local-name()='rootfile']/@full-path")
            package = etree.fromstring(book.read(opf))
            assert package.xpath("//*[local-name()='spine']/*"), rel
    elif rel.endswith(".md"):
        _, front, body = data.decode("utf-8").split("---\n", 2)
        assert isinstance(yaml.safe_load(front), dict) and body.strip(), rel
    else:
        raise AssertionError(f"unexpected output {rel}")


# --- the previous and the new version, made once per writer ----------------------------------


@dataclass(frozen=True)
class Versions:
    writer: Writer
    previous: dict[str, bytes]  # every file under out/, the archive included
    new: dict[str, bytes]  # outputs only
    previous_rows: dict[str, str]
    new_rows: dict[str, str]
    groups: list[set[str]]  # keys stored in one transaction: all old or all new
    seconds: float  # CPU seconds of one undisturbed run
    last_write: float  # CPU seconds into that run when it wrote its last output


def old_examples(folder: Path) -> Path:
    """The examples with other titles and one file fewer: the previous version's input."""
    old = folder / "old-examples"
    if not old.exists():
        shutil.copytree(ROOT / "examples", old)
        (old / DROPPED).unlink()
        for path in old.glob("*.txt"):
            stamp, title, rest = path.read_text("utf-8").split("\n", 2)
            path.write_text(f"{stamp}\n{title.replace('[', '[旧版：', 1)}\n{rest}", "utf-8")
    return old


def workdir(folder: Path, inputs: Path) -> Path:
    """A work folder: `examples/` (a copy of `inputs`), the overlay, and `out/`."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(folder / "examples", ignore_errors=True)
    shutil.copytree(inputs, folder / "examples")
    # Pictures from a closed local port: no request leaves the machine, none waits.
    (folder / "overlay.yaml").write_text(
        'image_mirror: "http://127.0.0.1:9/{host}{path}"\n'
        'download: {allow_networks: ["127.0.0.1/32"], retries: 0, timeout: 1}\n',
        "utf-8",
    )
    (folder / "out").mkdir(exist_ok=True)
    return folder


def transactions(writer: Writer, work: Path, new_rows: dict[str, str]) -> list[set[str]]:
    """The keys each transaction of the new run stores."""
    config = load_config()
    identity = settings_of(config).identity

    def keys(source: str) -> set[str]:
        articles = read_source(str(work / source), config).articles
        return {identity.copy_key(a) for a in articles} & set(new_rows)

    if writer.name == "ingest":  # one per input
        return [keys(source) for source in expand(("examples/*.txt", "examples/*.xml"), work)]
    # the job: one per configured source
    txt = set().union(*(keys(s) for s in expand(("examples/*.txt",), work)))
    return [txt, keys("examples/feedx-nytimes.xml")]


class AllVersions:
    """Each writer's versions, made on first use (a selected test makes only its own)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.old = old_examples(base)
        self.made: dict[str, Versions] = {}

    def __getitem__(self, name: str) -> Versions:
        if name not in self.made:
            self.made[name] = self.make(WRITERS[name])
        return self.made[name]

    def make(self, writer: Writer) -> Versions:
        work = workdir(self.base / writer.name, self.old)
        done = run_cli(expand(writer.argv, work), work)
        assert done.code == 0, done.err
        previous = snapshot(work / "out")
        previous_rows = archive_rows(work / ARCHIVE) if writer.archive else {}
        workdir(work, ROOT / "examples")
        done = run_cli(expand(writer.argv, work), work)
        assert done.code == 0, done.err
        new = outputs(snapshot(work / "out"))
        new_rows = archive_rows(work / ARCHIVE) if writer.archive else {}
        assert new.keys() >= outputs(previous).keys() and new_rows.keys() >= previous_rows.keys()
        # The new run changes the outputs (those of unchanged articles stay) and the rows.
        assert outputs(previous) != new or not new
        assert new_rows != previous_rows or not writer.archive
        for rel, data in new.items():
            check_complete(rel, data)
        for rel, data in outputs(previous).items():
            check_complete(rel, data)
        changed = [rel for rel, data in new.items() if previous.get(rel) != data]
        written = max((work / "out" / rel).stat().st_mtime for rel in changed) if changed else 0
        return Versions(
            writer=writer,
            previous=previous,
            new=new,
            previous_rows=previous_rows,
            new_rows=new_rows,
            groups=transactions(writer, work, new_rows) if writer.archive else [],
            seconds=done.cpu,
            last_write=done.cpu_at(written) if changed else done.cpu,
        )


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> AllVersions:
    return AllVersions(tmp_path_factory.mktemp("versions"))


def state(out: Path, v: Versions) -> tuple[str, str]:
    """Check `out` after a fault; (outputs, archive), each "old", "new" or "mixed"."""
    files = snapshot(out)
    now = outputs(files)
    old = outputs(v.previous)
    for rel in old.keys() | v.new.keys():
        if rel not in now:
            assert rel not in old, f"{rel}: the previous version is gone"
            continue
        assert now[rel] in (old.get(rel), v.new[rel]), f"{rel}: neither old nor new"
    assert now.keys() <= old.keys() | v.new.keys(), "an unexpected file"
    for path in temps(out):  # a kill in write_atomic: hidden, beside the output it was for
        target = path.parent / TEMP.fullmatch(path.name)["target"]  # type: ignore[index]
        assert str(target.relative_to(out)) in old.keys() | v.new.keys(), path
    outputs_state = "old" if now == old else "new" if now == v.new else "mixed"
    if not v.writer.archive:
        return outputs_state, "old"
    rows = archive_rows(out.parent / ARCHIVE)
    assert rows.keys() >= v.previous_rows.keys(), "an article of the previous version is gone"
    for key, content in rows.items():
        assert content in (v.previous_rows.get(key), v.new_rows[key]), key
    for keys in v.groups:  # a transaction: all or nothing
        changed = {k for k in keys if v.previous_rows.get(k) != v.new_rows[k]}
        assert len({rows.get(k) == v.new_rows[k] for k in changed}) <= 1, "half a transaction"
    rows_state = "old" if rows == v.previous_rows else "new" if rows == v.new_rows else "mixed"
    return outputs_state, rows_state


MOMENTS = {
    "old": "before any replace or commit",
    "mixed": "between replaces or commits",
    "new": "after the last",
}


# --- SIGKILL ---------------------------------------------------------------------------------


@dataclass
class Victim:
    """A child to be killed: at `due` seconds of its CPU time ("anywhere" in its run), or
    ("at a write") at the first temporary file seen after that, a few ms later, so that
    the kill lands in the write, most likely in its fsync, or just after the replace."""

    work: Path
    at_write: bool
    due: float
    before: set[str]  # temporary files left by earlier kills
    deadline: float  # perf_counter() when it counts as hung
    kill_at: float = math.inf  # perf_counter(), once its write is seen


def kill_many(v: Versions, lanes: list[Path], argv: list[str]) -> Counter[str]:
    """KILLS runs, each killed at a random moment and checked; what the kills hit."""
    rng = random.Random(f"feedx-faults-{v.writer.name}")
    folders = sorted({Path("out", rel).parent for rel in v.new})
    tally: Counter[str] = Counter()
    running: dict[int, Victim] = {}
    started = 0
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        while started < KILLS or running:
            for work in lanes:
                if started == KILLS or any(c.work == work for c in running.values()):
                    continue
                restore(work / "out", v.previous)
                # Every other kill at a write (for a writer of files), the rest anywhere.
                at_write = bool(v.new) and started % 2 == 1
                due = rng.uniform(0.0, v.last_write if at_write else v.seconds)
                before = {str(p) for p in temps(work / "out")}
                pid = fork_cli(argv, work, None, null, null)
                running[pid] = Victim(work, at_write, due, before, time.perf_counter() + TIMEOUT)
                started += 1
            for pid, c in list(running.items()):
                killed = step(pid, c, [c.work / f for f in folders], rng)
                if killed is not None:
                    del running[pid]
                    tally.update(judge(v, c, killed))
            # A child has at most a second of CPU per second: no look is due before that.
            pause = [
                c.kill_at - time.perf_counter() if c.kill_at < math.inf else c.due - cpu_time(pid)
                for pid, c in running.items()
            ]
            time.sleep(max(0.0005, min(pause, default=0.0)))
    finally:
        os.close(null)
        for pid in running:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return tally


def step(pid: int, c: Victim, folders: list[Path], rng: random.Random) -> bool | None:
    """Look at one child: True once killed, False once ended, None while it runs on."""
    now = time.perf_counter()
    if now >= c.deadline:
        kill(pid)
        raise AssertionError(f"child {pid} in {c.work}: no end after {TIMEOUT} s")
    if now >= c.kill_at:
        return kill(pid)
    if ended(pid):
        return False
    if c.kill_at < math.inf or cpu_time(pid) < c.due:
        return None
    if not c.at_write:
        return kill(pid)
    fresh = (e for f in folders for e in _entries(f) if e.path not in c.before)
    if any(TEMP.fullmatch(e.name) for e in fresh):
        c.kill_at = now + rng.uniform(0.0, 0.003)
    return None


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except FileNotFoundError:
        return []


def judge(v: Versions, c: Victim, killed: bool) -> list[str]:
    """Check the lane after a kill; what the kill hit."""
    files, rows = state(c.work / "out", v)
    parts = {files} if v.new else set()
    parts |= {rows} if v.writer.archive else set()
    moment = parts.pop() if len(parts) == 1 else "mixed"
    hit = [MOMENTS[moment] if killed else "done before the kill"]
    if {str(p) for p in temps(c.work / "out")} - c.before:
        hit.append("inside write_atomic")
    return hit


def run_in_each(argv: list[str], lanes: list[Path]) -> list[int]:
    """Run to the end in every lane at once; the exit codes."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        pids = [fork_cli(argv, work, None, null, null) for work in lanes]
    finally:
        os.close(null)
    return [reap(pid) for pid in pids]


@pytest.mark.skipif(not Path("/proc/self/schedstat").exists(), reason="Linux only")
@pytest.mark.parametrize("name", list(WRITERS))
def test_sigkill_at_random_moments_leaves_old_or_new_never_half(
    name: str, versions: AllVersions, tmp_path: Path
) -> None:
    v = versions[name]
    # Children side by side, each in a work folder of its own.
    lanes = [workdir(tmp_path / f"lane{n}", ROOT / "examples") for n in range(LANES)]
    argv = expand(v.writer.argv, lanes[0])
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    tally = kill_many(v, lanes, argv)
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime
    print(f"{name}: {KILLS} kills in runs of {v.seconds:.2f} s CPU ({seconds:.1f} s in all)")
    print(f"{name}: {dict(tally)}")

    # What kills left goes with the next write once stale; the outputs are then the new ones.
    left = [path for work in lanes for path in temps(work / "out")]
    stale = time.time() - STALE_TEMP_SECONDS - 60
    for path in left:
        os.utime(path, (stale, stale))
    for work in lanes:
        restore(work / "out", v.previous)
    assert run_in_each(argv, lanes) == [0] * LANES
    for work in lanes:
        assert temps(work / "out") == []
        assert outputs(snapshot(work / "out")) == v.new
    print(f"{name}: {len(left)} temporary files left by kills, removed by the next run")


def _planted_temps(folder: Path) -> tuple[Path, Path, Path]:
    """A stale temporary file of ours, a fresh one, and a user's file shaped like the
    names we used to give ours (`.NAME.XXXXXXXX.tmp`), old."""
    stale = folder / ".feed.xml.feedx-convert-abcd_123.tmp"
    fresh = folder / ".feed.xml.feedx-convert-zz99zz99.tmp"
    users = folder / ".notes.txt.abcdefgh.tmp"  # not of our making
    for path in (stale, fresh, users):
        path.write_bytes(b"<rss")
    old = time.time() - STALE_TEMP_SECONDS - 1
    os.utime(stale, (old, old))
    os.utime(users, (old, old))
    return stale, fresh, users


def test_a_stale_temporary_file_goes_with_the_next_write_a_fresh_one_stays(
    tmp_path: Path,
) -> None:
    stale, fresh, users = _planted_temps(tmp_path)
    write_atomic(tmp_path / "feed.xml", "<rss/>")
    assert not stale.exists() and fresh.exists() and users.exists()
    assert (tmp_path / "feed.xml").read_text() == "<rss/>"


def test_a_run_with_nothing_to_change_still_sweeps_its_output_folders(tmp_path: Path) -> None:
    """Temp files of killed runs stayed until a later run wrote into that folder: a
    rerun with nothing to change never swept."""
    out = tmp_path / "out"
    out.mkdir()
    seed = str(ROOT / "examples" / "wsj-no-images.txt")
    argv = ["feed", seed, "-o", str(out / "feed.xml"), "--self-url", "https://e.org/f.xml"]
    assert main(argv) == 0
    stale, fresh, users = _planted_temps(out)
    before = (out / "feed.xml").stat().st_mtime_ns
    assert main(argv) == 0
    assert (out / "feed.xml").stat().st_mtime_ns == before  # nothing was written
    assert not stale.exists() and fresh.exists() and users.exists()


def test_a_batch_shows_files_only_whole_and_only_at_its_commit(tmp_path: Path) -> None:
    """FileBatch: nothing appears before the commit; a file that cannot be moved is
    reported, not raised, and leaves no temporary file; what is not committed goes."""
    (tmp_path / "taken.md").mkdir()  # a folder where a file should go: cannot be replaced
    with FileBatch() as batch:
        write_if_changed(tmp_path / "a.md", "甲", batch)
        write_if_changed(tmp_path / "taken.md", "乙", batch)
        assert not (tmp_path / "a.md").exists() and len(temps(tmp_path)) == 2
        failed = batch.commit()
        assert [path.name for path, _error in failed] == ["taken.md"]
        assert (tmp_path / "a.md").read_text("utf-8") == "甲"
        assert temps(tmp_path) == [] and len(batch) == 0
        write_if_changed(tmp_path / "b.md", "丙", batch)
    # Left without a commit: the temporary file is thrown away, nothing half-shown.
    assert not (tmp_path / "b.md").exists() and temps(tmp_path) == []


# --- a full disk --------------------------------------------------------------------------------


@functools.cache
def can_mount_tmpfs() -> bool:
    """Root, and allowed to mount (not in every container)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    probe = tempfile.mkdtemp(prefix="feedx-faults-")
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe],
            capture_output=True,
            check=False,
        )
        if mounted.returncode:
            return False
        subprocess.run(["umount", probe], check=True)
        return True
    finally:
        os.rmdir(probe)


def fill(folder: Path, leave: int) -> None:
    """Fill the file system of `folder` but for `leave` bytes."""
    stats = os.statvfs(folder)
    with open(folder / FILLER, "wb") as filler:
        filler.write(b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave))
    stats = os.statvfs(folder)
    assert stats.f_bavail * stats.f_frsize <= leave


@pytest.mark.parametrize(
    ("name", "how"),
    [
        *((name, "file size limit") for name in WRITERS),
        *((name, "full tmpfs") for name in WRITERS),
        # Room for some Markdown files, or for SQLite's shared memory but not the rows.
        *((name, "nearly full tmpfs") for name in ("markdown", "ingest", "run")),
    ],
)
def test_a_full_disk_is_one_clear_line_and_leaves_the_previous_version(
    name: str, how: str, versions: AllVersions, tmp_path: Path
) -> None:
    v = versions[name]
    work = workdir(tmp_path, ROOT / "examples")
    out = work / "out"
    argv = expand(v.writer.argv, work)
    mounted = how != "file size limit"
    if mounted and not can_mount_tmpfs():
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
    if mounted:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(out)], check=True)
    try:
        restore(out, v.previous)
        if mounted:
            # Nearly full: room for SQLite's shared memory (32 KiB) but not for the
            # transaction; for some of the Markdown files but not all.
            nearly = 48 * 1024 if v.writer.archive else 8 * 1024
            fill(out, nearly if how == "nearly full tmpfs" else 0)
        done = run_cli(argv, work, v.writer.fsize if not mounted else None)
        (out / FILLER).unlink(missing_ok=True)  # room to open the archive for the check
        files, rows = state(out, v)
        assert temps(out) == []
        written = {rel for rel, data in outputs(snapshot(out)).items() if data == v.new.get(rel)}
    finally:
        if mounted:
            subprocess.run(["umount", str(out)], check=True)

    assert done.code == 1, done.err
    assert "Traceback" not in done.err
    lines = done.err.splitlines()
    assert all(re.match(r"(error|warning|info): ", line) for line in lines), done.err
    errors = [line for line in lines if line.startswith("error: ")]
    assert files != "new" or rows != "new"
    # One line for each output still old, one for the archive when it took nothing new;
    # but the job's digest is made from the archive: with the old articles, it is the old.
    from_archive = name == "run" and rows == "old"
    stays = {rel for rel in v.new if rel.endswith(".epub")} if from_archive else set()
    failed = [str(Path("out", rel)) for rel in v.new if rel not in written | stays]
    if v.writer.archive and rows != "new":
        failed.append(ARCHIVE)
    for path in failed:
        assert sum(line.startswith(f"error: {path}: ") for line in errors) == 1, (path, errors)
    # ... and when the archive cannot even be opened, the digest says so, once.
    digest = [line for line in errors if from_archive and line.startswith("error: out/digest-")]
    assert len(errors) == len(failed) + len(digest) and len(digest) <= 1, "\n".join(errors)
    if mounted and ARCHIVE in failed:
        assert f"error: {ARCHIVE}: disk full" in errors
    if name == "run":
        assert "outputs" in done.out and "sources" in done.out  # the summary
    print(f"{name}, {how}: {errors}")


def test_an_archive_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    work = workdir(tmp_path, ROOT / "examples")
    (work / "taken").write_text("a file where the archive's folder would be", "utf-8")
    done = run_cli(["run", "--archive", "taken/archive.sqlite"], work)
    assert done.code == 1
    assert done.err == (
        "error: taken/archive.sqlite.lock: cannot create the lock: taken: File exists\n"
    )


@pytest.mark.parametrize("payload", [b"same bytes\n", b"other bytes\n"])
def test_a_link_planted_as_an_output_is_replaced_never_read_or_written_through(
    tmp_path: Path, payload: bytes
) -> None:
    """An output is compared with what is there before being written: through a link, a
    private file holding the same bytes would have kept the link in place."""
    private = tmp_path / "private.md"
    private.write_bytes(b"same bytes\n")
    out = tmp_path / "out.md"
    out.symlink_to(private)
    assert write_if_changed(out, payload) is True
    assert not out.is_symlink() and out.read_bytes() == payload
    assert private.read_bytes() == b"same bytes\n"


def test_a_pipe_planted_as_an_output_is_replaced_without_blocking(tmp_path: Path) -> None:
    out = tmp_path / "feed.xml"
    os.mkfifo(out)
    assert write_if_changed(out, b"<rss/>") is True  # opened without waiting, never read
    assert out.read_bytes() == b"<rss/>"
