"""notebooks/investigation.ipynb runs, cell by cell in one namespace, on a case made by `investigate`.

No Jupyter kernel is needed: the notebook is nbformat 4 JSON, and its code cells are plain Python (no
magics), executed in order the way a kernel would. Its own asserts check what it finds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "investigation.ipynb"


def test_notebook_is_nbformat_4():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4 and nb["metadata"]["kernelspec"]["language"] == "python"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(code) >= 8
    for c in code:
        assert c["outputs"] == [] and c["execution_count"] is None  # committed clean
        assert not any(line.lstrip().startswith(("%", "!")) for line in c["source"])


def test_notebook_runs_on_the_sample_case(sample_case, monkeypatch):
    monkeypatch.setenv("FORENSICS_CASE", str(sample_case.case))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(NOTEBOOK.parent)
    pytest.importorskip("matplotlib.pyplot")
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    namespace: dict = {"__name__": "__notebook__"}
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        exec(compile("".join(cell["source"]), f"{NOTEBOOK.name}[cell {i}]", "exec"), namespace)
    window = next(f for f in sample_case.doc["findings"] if f["kind"] == "exfiltration_window")
    assert namespace["records"] == window["distinct_objects"]
    assert namespace["findings"].height == len(sample_case.doc["findings"])
    assert int(namespace["daily"]["records"].sum()) == window["distinct_objects"]
    assert namespace["fig"].axes[0].get_title().startswith("Records taken per day by A1")
    import matplotlib.pyplot as plt

    plt.close("all")
