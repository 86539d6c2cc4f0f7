"""Cases for the report tests, built once per session.

* ``sample_case``: ``forensics investigate sample_logs/`` run through the CLI (as the README's main job);
* ``hard_case``: the hard scenario (seed 4, scale 0.3: residential pool, ids from a list, a pause), with
  the balancer's logs of 2022-12-20 missing (the gateways' copies remain);
* ``injected_case``: a small nginx case whose attacker, scanner and paths carry HTML and formula
  payloads (a ``<script>`` user agent, an ``<img onerror>`` path, a ``=HYPERLINK(...)`` user agent).

And ``chromium``: the headless browser, or a skip outside CI (in CI a missing browser is a failure).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from payloads import injected_evidence

from forensics import api, sample
from forensics.analyze import analyze
from forensics.cli import main

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Built:
    case: Path
    output: str = ""
    truth: dict | None = None

    @property
    def doc(self) -> dict:
        return json.loads((self.case / "findings.json").read_text())


@pytest.fixture(scope="session")
def sample_case(tmp_path_factory) -> Built:
    case = tmp_path_factory.mktemp("sample") / "case"
    result = CliRunner().invoke(main, ["investigate", str(ROOT / "sample_logs"), "--case", str(case)])
    assert result.exit_code == 0, result.output
    truth = json.loads((ROOT / "sample_logs" / "truth.json").read_text())
    return Built(case, result.output, truth)


@pytest.fixture(scope="session")
def hard_case(tmp_path_factory) -> Built:
    base = tmp_path_factory.mktemp("hard")
    evidence, case = base / "evidence", base / "case"
    sample.generate(evidence, scale=0.3, seed=4, profile="hard")
    # The balancer's logs of one day inside the window are lost: a coverage gap the gateways cover.
    for day in evidence.glob("AWSLogs/*/elasticloadbalancing/*/2022/12/20"):
        shutil.rmtree(day)
    api.ingest([str(evidence)], case)
    api.inventory(str(case))
    analyze(case)
    api.report(case)
    return Built(case, "", json.loads((evidence / "truth.json").read_text()))


@pytest.fixture(scope="session")
def injected_case(tmp_path_factory) -> Built:
    base = tmp_path_factory.mktemp("injected")
    evidence = injected_evidence(base / "evidence")
    case = base / "case"
    result = CliRunner().invoke(main, ["investigate", str(evidence), "--case", str(case)])
    assert result.exit_code == 0, result.output
    return Built(case, result.output)


# --------------------------------------------------------------------------------------------------
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


class Chromium:
    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.runs = 0

    def _run(self, args: list[str]) -> subprocess.CompletedProcess:
        self.runs += 1
        profile = self.workdir / f"profile-{self.runs}"  # a fresh user-data-dir per run
        cmd = [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, capture_output=True, timeout=180, check=False)

    def dump_dom(self, page: Path) -> str:
        """The DOM after load (scripts, had any run, would have changed it)."""
        done = self._run(["--dump-dom", page.resolve().as_uri()])
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
        return done.stdout.decode("utf-8")

    def screenshot(self, page: Path, out: Path, size: tuple[int, int] = (1400, 4000)) -> Path:
        done = self._run(
            [f"--screenshot={out}", f"--window-size={size[0]},{size[1]}", page.resolve().as_uri()]
        )
        assert out.exists(), done.stderr.decode(errors="replace")[-2000:]
        return out


@pytest.fixture(scope="session")
def chromium(tmp_path_factory) -> Chromium:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None and Path("/usr/bin/chromium").exists():
        binary = "/usr/bin/chromium"
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (.ci/run installs the Debian package `chromium`)")
        pytest.skip("chromium is not installed (CI installs it; outside CI the browser tests are skipped)")
    return Chromium(binary, tmp_path_factory.mktemp("chromium"))
