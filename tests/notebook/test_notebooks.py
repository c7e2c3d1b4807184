"""The notebooks run top to bottom on a small simulated CRM, in order (02 explains the model 01 registered)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.slow
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.fixture(scope="module")
def notebook_home(tmp_path_factory) -> Path:
    """Its own MLflow store, so the notebooks' champion is theirs and the session's stays untouched."""
    home = tmp_path_factory.mktemp("notebook-home")
    os.environ["LEADSCORE_NOTEBOOK_LEADS"] = "1500"
    return home


@pytest.mark.parametrize("name", ["01_retrain.ipynb", "02_explain.ipynb"])
def test_notebook_runs(name: str, notebook_home: Path) -> None:
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    env = {"LEADSCORE_HOME": str(notebook_home), "BENTOML_HOME": str(notebook_home / "bentoml")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    started = time.perf_counter()
    try:
        NotebookClient(
            book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(notebook_home)}}
        ).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    seconds = time.perf_counter() - started
    out = ARTIFACTS / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(book, out / name)
    (out / f"{name}.seconds").write_text(f"{seconds:.1f}\n")
    print(f"{name}: executed in {seconds:.1f} s")
    errors = [
        o
        for cell in book.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
    images = sum("image/png" in o.get("data", {}) for cell in book.cells for o in cell.get("outputs", []))
    if name.startswith("02"):  # summary, two dependence plots, the waterfall, the reliability curve
        assert images >= 5, f"{images} plots drawn"
