"""Config: the schema is enforced on load, with the file, line and key in every error."""

from __future__ import annotations

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
    ],
)
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = overlay(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.where == f"{path}:{line}"
    assert message in caught.value.reason


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
