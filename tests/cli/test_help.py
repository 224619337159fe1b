"""``panini-video --version``, ``--help``, no arguments, and ``bench --help``: what people read first."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

from panini_video.cli import SUBCOMMANDS, main
from panini_video.cli.bench import BENCHES

ENTRY_POINT = Path(sys.executable).with_name("panini-video")


def commands_section(text: str) -> list[str]:
    """The lines after ``commands:`` up to the next blank line or the closing hint."""
    lines = text.splitlines()
    start = lines.index("commands:") + 1
    section = []
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        section.append(line)
    return section


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_is_the_installed_distribution_s(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([flag]) == 0
    out, err = capsys.readouterr()
    assert out == f"panini-video {importlib.metadata.version('panini-video')}\n"
    assert re.fullmatch(r"panini-video \d+\.\d+\.\d+\S*\n", out)
    assert err == ""


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_the_main_options_and_every_subcommand(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([flag]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith("usage: panini-video [-h]")
    assert "IN OUT" in out.split("\n\n")[0]
    for option in ("--pipeline", "--model", "--device", "--stats-json", "--annotate"):
        assert option in out
    assert "exit codes:" in out
    section = commands_section(out)
    assert [line.split()[0] for line in section] == list(SUBCOMMANDS)
    for line in section:  # one line each: the name, its arguments, then what it does
        summary = line.strip().partition(" ")[2]
        assert len(summary.split()) >= 4, line
    assert out.rstrip().endswith("Run 'panini-video COMMAND --help' for a command's options.")


def test_no_arguments_prints_the_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: panini-video IN OUT [options]")
    for name in SUBCOMMANDS:
        assert f"panini-video {name} " in err


def test_bench_help_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    out, _ = capsys.readouterr()
    assert out.startswith("usage: panini-video bench [-h]")
    assert "``" not in out and "`" not in out
    description = out.split("\n\n")[1]
    assert description.startswith("The benchmarks, one module each in panini_video.bench")
    for name, (_, summary) in BENCHES.items():
        assert re.search(rf"^\s+{name}\s+{re.escape(summary)}$", out, re.M), name


@pytest.mark.skipif(not ENTRY_POINT.is_file(), reason=f"no installed entry point at {ENTRY_POINT}")
def test_the_installed_command_prints_its_version_help_and_usage() -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ENTRY_POINT), *args], capture_output=True, text=True, timeout=120)

    version = run("--version")
    assert (version.returncode, version.stdout) == (0, f"panini-video {importlib.metadata.version('panini-video')}\n")
    helped = run("--help")
    assert helped.returncode == 0 and [line.split()[0] for line in commands_section(helped.stdout)] == list(SUBCOMMANDS)
    bare = run()
    assert bare.returncode == 2 and bare.stdout == "" and bare.stderr.startswith("usage: panini-video IN OUT")
