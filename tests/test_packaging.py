"""A non-editable install carries the templates and the default config.

The wheel is built from this checkout and installed without its dependencies into
a fresh venv; the dependencies come from the test venv through a .pth file, so
the test needs no network. The command then runs from outside the checkout.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from goldens import ROOT


def test_wheel_installs_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("feedx_convert-*.whl")

    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # Dependencies from the test venv; its editable-install hook is a .pth file there,
    # which a path added this way does not run, so `convert` comes from the wheel.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", "utf-8")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )

    work = tmp_path / "elsewhere"
    work.mkdir()
    example = ROOT / "examples" / "nyt-putin-harbin.txt"
    where = subprocess.run(
        [python, "-c", "import convert; print(convert.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=work,
    ).stdout
    assert where.startswith(str(site))
    done = subprocess.run(
        [env_dir / "bin" / "feedx-convert", "markdown", str(example)],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("---\ntitle: 普京访问哈工大")
    installed = site / "convert"
    assert (installed / "config.yaml").is_file()
    assert (installed / "templates" / "markdown" / "front-matter.yaml.j2").is_file()
