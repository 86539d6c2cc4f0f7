"""The README is the truth: its commands are the ones CI and users run."""

from __future__ import annotations

import re
from pathlib import Path

from forensics.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(.+?)\n```", text)


def test_readme_opens_with_the_two_commands():
    main_job, tests = _readme_commands()[:2]
    assert "forensics investigate sample_logs/" in main_job
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command():
    tests = _readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci.splitlines()


def test_every_command_is_in_the_readme():
    text = (ROOT / "README.md").read_text()
    for name in main.commands:
        assert f"forensics {name}" in text, f"`forensics {name}` is not documented in README.md"
