"""Config: the schema is enforced on load, with the file, line and key in every error."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from convert.config import load_config
from convert.errors import ConfigError
from convert.plan import settings_of


def overlay(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("promo:\n  markers: [x]\n  hostz: [a]\n", 3, "promo.hostz: unknown key"),
        ("sites:\n  a.org:\n    remvoe: [p]\n", 3, "sites.a.org.remvoe: unknown key"),
        ("timezone: Mars/Olympus\n", 1, "timezone: unknown time zone"),
        ("sites:\n  a.org:\n    remove: ['p[[']\n", 3, "bad CSS selector"),
        ("promo:\n  leading_stamp: '(unclosed'\n", 2, "bad regular expression"),
        ("download:\n  timeout: soon\n", 2, "download.timeout: expected a number"),
        ("download:\n  allow_private: 1\n", 2, "expected true or false"),
        ("image_mirror: ftp://x.org/{path}\n", 1, "must start with http"),
        ("tracking_parameters: utm_source\n", 1, "expected a list"),
        # Values that passed every check and then broke the run (issue 16).
        ("download:\n  deadline: .nan\n", 2, "download.deadline: expected a finite number"),
        ("epub:\n  budget_mb: .nan\n", 2, "epub.budget_mb: expected a finite number"),
        ("download:\n  timeout: -.inf\n", 2, "download.timeout: expected a finite number"),
        ("max_input_bytes: " + "9" * 31 + "\n", 1, "max_input_bytes: too large"),
        ("timezone: !!python/name:os.system x\n", 1, "YAML tag !!python/name:os.system is not"),
        ("timezone: !custom Asia/Shanghai\n", 1, "YAML tag !custom is not allowed"),
        ("sites: &s\n  a.org: *s\n", 1, "an alias that holds itself"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", 0, "nested deeper than 32 levels"),
        ("memory_mb: .nan\n", 1, "memory_mb: expected a finite number"),
        ("memory_mb: 0\n", 1, "memory_mb: must be greater than 0"),
        (
            "timezone: UTC\nmemory_mb: 260\n",
            2,
            "memory_mb: 260 MB leaves no room for decoding pictures beside 150 MB for the rest"
            " of the process and 120 MB for the downloads in flight (8 × download.max_bytes)",
        ),
    ],
)
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = overlay(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.where == (f"{path}:{line}" if line else str(path))
    assert message in caught.value.reason


def test_aliases_are_checked_once_and_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    shared = overlay(
        tmp_path,
        "sites:\n  a.example.com: &rules {name: A, timezone: Europe/London, remove: ['.ad']}\n"
        "  b.example.com: *rules\n",
    )
    config = load_config(shared)
    assert config.sites["a.example.com"] is config.sites["b.example.com"]  # built once
    # Seven levels of ten aliases each: ten million values once expanded. It took
    # minutes to check each use; now its size is known from its 70 nodes.
    levels = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 7)]
    bomb = overlay(tmp_path, "\n".join(levels) + "\n")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"more than 100,000 values \(aliases included\)"):
        load_config(bomb)
    assert time.monotonic() - started < 5  # generous: it takes milliseconds


def test_a_config_file_over_a_megabyte_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = overlay(tmp_path, "# " + "x" * 1_000_000 + "\n")
    with pytest.raises(ConfigError, match="larger than 1,000,000 bytes"):
        load_config(path)


def test_a_config_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = overlay(tmp_path, "timezone: !!python/object/apply:os.system [id]\n")
    done = subprocess.run(
        [sys.executable, "-m", "convert", "-c", str(path), "markdown", "-"],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: {path}:1: YAML tag !!python/object/apply:os.system is not allowed in a config"
    ]


def test_overlay_merges_mappings_and_replaces_lists(tmp_path: Path) -> None:
    config = load_config(
        overlay(tmp_path, "sites:\n  a.org:\n    name: A\npromo:\n  markers: [广告]\n")
    )
    assert config.sites["a.org"].name == "A"
    assert "cn.nytimes.com" in config.sites  # the shipped sites are still there
    assert config.promo.markers == ("广告",)
    assert "feedx.net" in config.promo.hosts


def test_environment_variables_are_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIRROR_HOST", "img.example.org")
    config = load_config(overlay(tmp_path, "image_mirror: https://${MIRROR_HOST}/{host}{path}\n"))
    assert config.image_mirror == "https://img.example.org/{host}{path}"
    monkeypatch.delenv("MIRROR_HOST")
    with pytest.raises(ConfigError, match="MIRROR_HOST is not set"):
        load_config(overlay(tmp_path, "image_mirror: https://${MIRROR_HOST}/{path}\n"))


def test_rules_match_host_suffixes() -> None:
    config = load_config()
    sites = settings_of(config).reading.sites
    assert sites.publication("www.bbc.com").name == "BBC News 中文"
    assert sites.publication("unknown.example").name == "unknown.example"
    assert str(sites.publication("www.zaobao.com.sg").zone) == "Asia/Singapore"


def test_not_yaml_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(overlay(tmp_path, "a: [unclosed\n"))
