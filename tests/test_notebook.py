"""docs/notebooks/quickstart.ipynb runs top to bottom without an error (issue 19).

Executed with nbclient in a fresh kernel, from the notebook's folder, on the shared development
data (skipped, saying why, when it is absent). Its run time is in docs/benchmarks.md.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.conftest import REPO, SHARED_DATA, require_shared

NOTEBOOK = REPO / "docs" / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_executes_without_errors() -> None:
    require_shared()
    nbformat = pytest.importorskip("nbformat", reason="nbformat is a dev dependency (requirements/dev.lock)")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is a dev dependency (requirements/dev.lock)")
    pytest.importorskip("ipykernel", reason="ipykernel (the notebook's kernel) is a dev dependency")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    os.environ.setdefault("VFR_SHARED_DATA", str(SHARED_DATA))  # inherited by the kernel
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError naming the cell on the first error
    elapsed = time.perf_counter() - start
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "VFR backtest" in html and "strategy_net" in html  # the backtest's HTML summary
    assert "VFR score evaluation" in html and "rank_ic_mean" in html
    assert any("image/png" in o.get("data", {}) for o in outputs)  # bt.plot()
    text = "".join(o.get("text", "") for o in outputs)
    assert "report.html" in text
    print(f"quickstart.ipynb executed in {elapsed:.1f} s")
