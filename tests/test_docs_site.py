"""The docs site (mkdocs.yml, issue 19) builds with ``mkdocs build --strict`` and holds the API
reference of every public package.

``--strict`` turns every warning into a failure: a broken link or anchor between the pages, a
page missing from the nav, a docstring mkdocstrings cannot parse. CI also runs the build
(.ci/run); this test says which page or name went missing. Skipped, saying why, without the
``docs`` extra (in requirements/dev.lock). About 20 s: griffe reads the whole source tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

#: API reference page -> names it must document (as ``id="<module>.<name>"`` anchors).
REFERENCE = {
    "vfr": ["vfr.notebook.load_prices", "vfr.notebook.build_features", "vfr.notebook.score",
            "vfr.notebook.backtest_scores", "vfr.notebook.evaluate", "vfr.notebook.BacktestReport"],
    "data": ["vfr.data.MarketStore", "vfr.data.read_prices", "vfr.data.ingest.ingest"],
    "features": ["vfr.features.build_features", "vfr.features.build_all_features"],
    "ml": ["vfr.ml.ModelRegistry", "vfr.ml.build_dataset", "vfr.ml.train.train"],
    "scoring": ["vfr.scoring.classic_scores", "vfr.scoring.blend", "vfr.scoring.select.select"],
    "backtest": ["vfr.backtest.run_backtest", "vfr.backtest.evaluate_factor"],
    "metrics": ["vfr.metrics.deflated_sharpe_ratio", "vfr.metrics.pbo_cscv", "vfr.metrics.ic_summary"],
    "research": ["vfr.research.record_trial", "vfr.research.n_trials"],
    "risk": ["vfr.risk.historical_var_es", "vfr.risk.optimize_weights"],
    "monitoring": ["vfr.monitoring.check_drift", "vfr.monitoring.psi"],
    "serving": ["vfr.serving.create_app", "vfr.serving.ServingEngine"],
}


def _nav_pages(nav: list) -> set[str]:
    pages: set[str] = set()
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages |= _nav_pages(value) if isinstance(value, list) else {value}
    return pages


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason=f"{module} is in the docs extra: pip install -e '.[docs]' "
                                           "(requirements/dev.lock has it)")
    out = tmp_path_factory.mktemp("docs") / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
                           "-d", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    return out


def test_every_docs_page_is_in_the_nav() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with mkdocs (the docs extra)")
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    docs = REPO / config.get("docs_dir", "docs")
    pages = {p.relative_to(docs).as_posix() for p in docs.rglob("*.md")}
    assert pages == _nav_pages(config["nav"]), "docs/ pages and the nav of mkdocs.yml differ"
    assert {f"reference/{name}.md" for name in REFERENCE} <= pages


def test_the_site_builds_strict_with_the_guides(site: Path) -> None:
    assert (site / "index.html").is_file()
    for page in (REPO / "docs").glob("*.md"):
        if page.stem != "index":
            assert (site / page.stem / "index.html").is_file(), page.name
    assert (site / "img" / "dashboard.png").is_file()  # operations.md's screenshot
    assert (site / "notebooks" / "quickstart.ipynb").is_file()
    assert not list(site.rglob("*.jsonl"))  # data kept beside the docs is not published


@pytest.mark.parametrize("page", sorted(REFERENCE))
def test_the_api_reference_documents_the_public_names(site: Path, page: str) -> None:
    html = (site / "reference" / page / "index.html").read_text(encoding="utf-8")
    missing = [name for name in REFERENCE[page] if f'id="{name}"' not in html]
    assert not missing, f"reference/{page}: not documented: {missing}"


def test_a_docstring_is_rendered_with_its_parameters(site: Path) -> None:
    html = (site / "reference" / "metrics" / "index.html").read_text(encoding="utf-8")
    section = html.split('id="vfr.metrics.deflated_sharpe_ratio"', 1)[1][:20000]
    assert "Deflated Sharpe ratio" in section and "n_trials" in section and "sr_variance" in section
