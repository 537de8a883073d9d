"""The ops dashboard: ``GET /api/dashboard/summary`` and the ``/dashboard`` page, driven in headless
Chromium (Playwright) against a real uvicorn server.

Data: a copy of the session store (real prices, features and the real trained model) on which
the real :func:`vfr.pipeline.stage_backtest` writes ``backtest_equity``; a private registry with
three versions of the session model (v2 champion); a real drift check (KS of early versus late
features) saved with :func:`vfr.monitoring.save_drift_report` and its alert published through
:class:`vfr.monitoring.AlertManager`; retraining runs recorded in the serving database with
:func:`vfr.opsdb.runs.start_run` / :func:`~vfr.opsdb.runs.finish_run`.

The page screenshot goes to ``test-artifacts/dashboard.png`` under the repository root (or
``$VFR_TEST_ARTIFACTS``). Browser tests skip when Playwright or ``/usr/bin/chromium`` is missing
(no browser is downloaded).
"""

from __future__ import annotations

import io
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from tests.serving.conftest import Built, auth, client_for, free_port, make_settings
from vfr.backtest import BacktestConfig
from vfr.config import Settings
from vfr.data import MarketStore
from vfr.ml import ModelRegistry
from vfr.opsdb import runs as retraining_runs
from vfr.pipeline import stage_backtest
from vfr.retraining import SCHEDULE, next_runs
from vfr.serving import mint_token
from vfr.serving.dashboard import (
    MAX_CURVE_POINTS,
    NO_ALERTS,
    NO_BACKTEST,
    NO_DRIFT,
    NO_RETRAINING,
)

REPO = Path(__file__).resolve().parents[2]
VIEWPORT = {"width": 1440, "height": 900}
BREACHED_BG = "rgb(254, 226, 226)"  # --bad-bg of the page
GOOD_BG = "rgb(220, 252, 231)"  # --good-bg of the page
KEPT_REASON = ("challenger v3 did not beat champion v2 on the walk-forward rank IC; champion kept until the next "
               "scheduled retraining (the full decision report is kept with the run)")


def artifacts_dir() -> Path:
    path = Path(os.environ.get("VFR_TEST_ARTIFACTS") or REPO / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Ops:
    """A private store (with a backtest) and registry (three versions, v2 champion)."""

    store_url: str
    tracking_uri: str
    versions: list[str]
    champion: str
    equity: dict[str, pd.Series]  # strategy -> net equity of the backtest run

    def settings(self, built: Built, tmp_path: Path) -> Settings:
        return make_settings(built, tmp_path, store_url=self.store_url, mlflow_tracking_uri=self.tracking_uri)


@pytest.fixture(scope="module")
def ops(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Ops:
    root = tmp_path_factory.mktemp("dashboard")
    source = Path(built.store_url.removeprefix("duckdb:///"))
    for suffix in ("", ".wal"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", root / f"store.duckdb{suffix}")
    store_url, tracking_uri = f"duckdb:///{root / 'store.duckdb'}", f"sqlite:///{root / 'mlflow.db'}"
    settings = make_settings(built, root, store_url=store_url, mlflow_tracking_uri=tracking_uri)
    session = ModelRegistry(built.tracking_uri)
    model = session.load(built.model_name)
    metrics = session.run_metrics(built.model_name, built.champion)  # the real walk-forward metrics
    registry = ModelRegistry.from_settings(settings)
    versions = [registry.register(built.model_name, model.model, params={}, metrics=metrics, metadata=model.metadata)
                for _ in range(3)]
    registry.set_champion(built.model_name, versions[1])
    outcome = stage_backtest(settings, BacktestConfig.from_settings(settings, top_n=5), factor_eval=False,
                             console=Console(file=io.StringIO()))
    return Ops(store_url, tracking_uri, versions, versions[1], {k: r.equity for k, r in outcome.results.items()})


def save_real_drift(engine, settings: Settings, db) -> tuple[pd.DataFrame, list]:
    """KS drift of the features of the first year against the last quarter, saved with its alerts."""
    from vfr.monitoring import (
        AlertManager,
        DriftThresholds,
        LogFileSink,
        check_drift,
        save_drift_report,
    )

    model = engine.models.load(settings.model_name, engine.models.champion(settings.model_name))
    with MarketStore(settings.resolved_store_url) as store:
        features = store.read_table("features")
    latest = features["date"].max()
    reference = features[features["date"] < features["date"].min() + pd.Timedelta(days=365)]
    current = features[features["date"] > latest - pd.Timedelta(days=90)]
    reference = reference.assign(probability=model.predict_proba(reference))
    current = current.assign(probability=model.predict_proba(current))
    report = check_drift(reference, current, columns=model.feature_columns,
                         thresholds=DriftThresholds(ks_min_features=1, ks_rank_only=False), model=settings.model_name)
    assert report.feature_drift["breached"].any() and report.alerts, "the real data should show some drift"
    save_drift_report(db, report, model_name=settings.model_name, model_version=str(model.version), as_of=latest)
    sent = AlertManager(db, [LogFileSink(settings.home_dir / "alerts.log")]).publish(report.alerts)
    assert sent == report.alerts
    return report.feature_drift, report.alerts


def record_runs(db, model_name: str, versions: list[str]) -> list[int]:
    """Two finished retraining runs, oldest first: v2 replaced v1, then v3 did not beat v2."""
    old, champion, challenger = versions
    deployed = retraining_runs.start_run(db, trigger="test", model_name=model_name, champion_before=old)
    retraining_runs.finish_run(db, deployed, status="deployed", action="deploy", challenger_version=champion,
                               champion_after=champion, reason=f"v{champion} beat v{old} on every guard metric")
    kept = retraining_runs.start_run(db, trigger="test", model_name=model_name, champion_before=champion)
    retraining_runs.finish_run(db, kept, status="kept", action="keep", challenger_version=challenger,
                               champion_after=champion, reason=KEPT_REASON)
    return [deployed, kept]


def open_page(browser, url: str):
    """A new page on ``url`` with its console errors, uncaught exceptions and requests recorded."""
    page = browser.new_page(viewport=VIEWPORT)
    page.errors, page.requests = [], []
    page.on("console", lambda m: page.errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(f"exception: {e}"))
    page.on("request", lambda r: page.requests.append(r.url))
    page.goto(url)
    return page


def number(text: str) -> float:
    """A formatted number of the page back to a float (``54.0%`` -> 0.54)."""
    text = text.strip()
    return float(text[:-1]) / 100 if text.endswith("%") else float(text)


# -- API ---------------------------------------------------------------------------------------------
def test_summary_matches_the_sources_and_needs_a_member_token(built: Built, ops: Ops, tmp_path: Path) -> None:
    settings = ops.settings(built, tmp_path)
    with client_for(settings) as client:
        db = client.app.state.engine.predlog.engine
        run_id = retraining_runs.start_run(db, trigger="test", model_name=built.model_name,
                                           champion_before=ops.champion)
        retraining_runs.finish_run(db, run_id, status="kept", action="keep", challenger_version=ops.versions[2],
                                   champion_after=ops.champion, reason=KEPT_REASON)
        retraining_runs.start_run(db, trigger="test", model_name="another-model", champion_before="1")  # not shown
        status = client.get("/api/ml/retraining/status", headers=auth(settings, "free")).json()
        assert client.get("/api/dashboard/summary").status_code == 401
        r = client.get("/api/dashboard/summary", headers=auth(settings, "free"))
        assert r.status_code == 200, r.text
        body = r.json()
        select = client.get("/api/stocks/select", params={"include_ml": True, "top": 10}).json()
        assert client.get("/api/dashboard/summary", params={"top": 0}, headers=auth(settings)).status_code == 422
        page = client.get("/dashboard")  # the page itself is open and carries no data
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert built.model_name not in page.text and "AAPL" not in page.text
        assert "/api/dashboard/summary" in client.get("/openapi.json").json()["paths"]

    sel = body["selection"]
    assert sel["date"] == select["date"] == str(built.latest.date()) and sel["ml_status"] == "ok"
    assert sel["models"] == select["ml"]["models"] == [{"name": built.model_name, "version": ops.champion}]
    assert [r["symbol"] for r in sel["rows"]] == [r["symbol"] for r in select["results"]]
    for mine, theirs in zip(sel["rows"], select["results"], strict=True):
        for key in ("rank", "classic_score", "ml_probability", "composite", "recommendation", "ml_blended"):
            assert mine[key] == theirs[key], key

    models = body["models"]
    assert models["champion"] == ops.champion and models["challenger"] is None
    assert [v["version"] for v in models["versions"]] == sorted(ops.versions, key=int, reverse=True)
    champ = [v for v in models["versions"] if v["champion"]]
    assert [v["version"] for v in champ] == [ops.champion] and champ[0]["decision"] == "champion"
    assert champ[0]["loaded"] and champ[0]["traffic_split"] == 1.0
    assert 0 < champ[0]["metrics"]["roc_auc"] < 1

    curves = {c["strategy"]: c for c in body["backtest"]["curves"]}
    assert set(curves) == set(ops.equity) and body["backtest"]["message"] is None
    for name, equity in ops.equity.items():
        c = curves[name]
        assert len(c["dates"]) == len(c["equity"]) == min(len(equity), MAX_CURVE_POINTS)
        assert c["dates"][0] == str(equity.index[0].date()) and c["dates"][-1] == str(equity.index[-1].date())
        assert c["equity"][-1] == pytest.approx(equity.iloc[-1]) and c["equity"][0] == pytest.approx(equity.iloc[0])
        assert c["total_return"] == pytest.approx(equity.iloc[-1] / equity.iloc[0] - 1)

    assert body["drift"] == {"computed_at": None, "as_of": None, "model_name": None, "model_version": None,
                             "breached": 0, "items": [], "message": NO_DRIFT}
    assert body["alerts"] == {"items": [], "message": NO_ALERTS}

    retraining = body["retraining"]
    assert retraining["message"] is None and retraining["running"] is False
    assert retraining["runs"] == status["runs"] and len(retraining["runs"]) == 1
    run = retraining["runs"][0]
    assert run["id"] == run_id and run["status"] == "kept" and run["action"] == "keep" and run["reason"] == KEPT_REASON
    assert run["champion_before"] == ops.champion and run["challenger_version"] == ops.versions[2]
    assert run["champion_after"] == ops.champion and run["finished_at"] >= run["started_at"]
    jobs = [j["job"] for j in retraining["schedule"]]
    assert jobs == [j.id for j in SCHEDULE] == [j["job"] for j in status["schedule"]]
    assert "monthly_retraining" in {j["job"] for j in retraining["schedule"]}
    assert all(j["next_run"] for j in retraining["schedule"])


# -- browser -----------------------------------------------------------------------------------------
def test_dashboard_page_shows_the_summary(built: Built, ops: Ops, tmp_path: Path, browser) -> None:
    settings = ops.settings(built, tmp_path)
    with client_for(settings) as client:
        engine = client.app.state.engine
        drift, alerts = save_real_drift(engine, settings, engine.predlog.engine)
        deployed, kept = record_runs(engine.predlog.engine, settings.model_name, ops.versions)
        summary = client.get("/api/dashboard/summary", headers=auth(settings, "free")).json()
        token = mint_token(settings, "ops-viewer", "free", 1)
        page = open_page(browser, f"{client.base_url}/dashboard#token={token}")
        page.wait_for_selector("body[data-loaded=true]", timeout=30_000)

        # the token left the address bar for the tab's session storage
        assert "token" not in page.url
        assert page.evaluate("sessionStorage.getItem('vfr.dashboard.token')") == token

        # selection: same symbols and numbers as the summary, formatted
        rows = page.locator("#selection-table tbody tr")
        expected = summary["selection"]["rows"]
        assert len(expected) == 10 and rows.count() == 10
        assert [rows.nth(i).get_attribute("data-symbol") for i in range(10)] == [r["symbol"] for r in expected]
        for i, r in enumerate(expected):
            row = rows.nth(i)
            assert row.locator("td.symbol").inner_text() == r["symbol"]
            classic, prob, composite = (row.locator(f"td.{c}").inner_text() for c in ("classic", "mlprob", "composite"))
            assert re.fullmatch(r"\d\.\d{3}", classic) and re.fullmatch(r"\d{1,3}\.\d%", prob), (classic, prob)
            assert abs(number(classic) - r["classic_score"]) <= 5e-4 + 1e-12
            assert abs(number(prob) - r["ml_probability"]) <= 5e-4 + 1e-12
            assert abs(number(composite) - r["composite"]) <= 5e-4 + 1e-12
        assert f"v{ops.champion}" in page.inner_text("#selection-sub")

        # models: the champion is shown and only its row is marked
        assert page.inner_text("#champion-version") == f"v{ops.champion}"
        champion_rows = page.locator("#models-table tr.champion")
        assert champion_rows.count() == 1 and champion_rows.get_attribute("data-version") == ops.champion
        assert page.locator("#models-table tbody tr").count() == len(ops.versions)

        # drift: every breached feature highlighted, the others not
        breached = set(drift.loc[drift["breached"], "feature"])
        highlighted = page.locator("#drift-table tr.breached")
        names = {highlighted.nth(i).get_attribute("data-name") for i in range(highlighted.count())}
        assert breached <= names and names - breached <= {"psi", "brier", "accuracy"}
        first = drift.loc[drift["breached"], "feature"].iloc[0]
        cell = page.locator(f'#drift-table tr[data-name="{first}"] td').first
        assert cell.evaluate("e => getComputedStyle(e).backgroundColor") == BREACHED_BG
        calm = drift.loc[~drift["breached"] & drift["ks_statistic"].notna(), "feature"].iloc[0]
        calm_row = page.locator(f'#drift-table tr[data-name="{calm}"]')
        assert "breached" not in (calm_row.get_attribute("class") or "")
        assert calm_row.locator("td").first.evaluate("e => getComputedStyle(e).backgroundColor") != BREACHED_BG
        stat = float(drift.loc[drift["feature"] == first, "ks_statistic"].iloc[0])
        assert page.locator(f'#drift-table tr[data-name="{first}"] td.statistic').inner_text() == f"{stat:.3f}"

        # backtest: one SVG path per strategy with every point of its curve, left to right
        for curve in summary["backtest"]["curves"]:
            path = page.locator(f'#equity-chart path.curve[data-strategy="{curve["strategy"]}"]')
            points = [tuple(map(float, p)) for p in re.findall(r"[ML](-?[\d.]+),(-?[\d.]+)", path.get_attribute("d"))]
            assert len(points) == sum(v is not None for v in curve["equity"]) > 100
            xs = [x for x, _ in points]
            assert xs == sorted(xs) and xs[-1] - xs[0] > 900
            assert all(0 <= x <= 1100 and 0 <= y <= 300 for x, y in points)
            assert path.bounding_box()["width"] > 500
            legend = page.inner_text(f'.legend-item[data-strategy="{curve["strategy"]}"]')
            assert f"{curve['total_return'] * 100:+.1f}%" in legend

        # alerts: the published alert's message is on the page
        messages = page.locator("#alerts-table .message")
        assert messages.count() == len(alerts) == len(summary["alerts"]["items"])
        assert messages.first.is_visible() and messages.first.text_content() == alerts[0].message

        # retraining: both runs newest first, status badges coloured, the reason in full as a tooltip
        runs = page.locator("#retraining-table tbody tr")
        assert runs.count() == 2
        assert [runs.nth(i).get_attribute("data-run") for i in range(2)] == [str(kept), str(deployed)]
        kept_row = page.locator(f'#retraining-table tr[data-run="{kept}"]')
        assert kept_row.locator("td.status .badge").inner_text() == "kept"
        assert kept_row.locator("td.reason").get_attribute("title") == KEPT_REASON
        reason = kept_row.locator("td.reason")
        assert reason.text_content() == KEPT_REASON and reason.is_visible()
        assert kept_row.locator("td.challenger").inner_text() == f"v{ops.versions[2]}"
        assert kept_row.locator("td.champion").inner_text() == f"v{ops.champion} → v{ops.champion}"
        deployed_row = page.locator(f'#retraining-table tr[data-run="{deployed}"]')
        deployed_badge = deployed_row.locator("td.status .badge")
        assert deployed_badge.inner_text() == "deployed"
        assert deployed_badge.evaluate("e => getComputedStyle(e).backgroundColor") == GOOD_BG
        assert deployed_row.locator("td.champion").inner_text() == f"v{ops.versions[0]} → v{ops.champion}"
        monthly = page.locator('#schedule li[data-job="monthly_retraining"]')
        expected_next = {j["job"]: j["next_run"] for j in summary["retraining"]["schedule"]}
        assert monthly.is_visible()
        assert monthly.locator(".next").get_attribute("title") == expected_next["monthly_retraining"]
        assert monthly.locator(".next").inner_text() == expected_next["monthly_retraining"].replace("T", " ")[:16]
        assert page.locator("#schedule li").count() == len(SCHEDULE)

        page.screenshot(path=str(artifacts_dir() / "dashboard.png"), full_page=True)
        assert not page.errors, page.errors
        page.close()
    assert (artifacts_dir() / "dashboard.png").stat().st_size > 20_000


def test_dashboard_asks_for_a_token_and_says_when_sections_have_no_data(built: Built, tmp_path: Path,
                                                                        browser) -> None:
    settings = make_settings(built, tmp_path)  # the session store: no backtest, no drift check, no alert
    with MarketStore(built.store_url) as store:
        assert not store.has_table("backtest_equity"), "the session store must stay read-only"
    with client_for(settings) as client:
        page = open_page(browser, f"{client.base_url}/dashboard")
        page.wait_for_selector("#login", state="visible")
        assert page.inner_text("#meta") == "not signed in"
        assert not [u for u in page.requests if "/api/" in u]  # no token, no call
        page.fill("#token-input", mint_token(settings, "ops-viewer", "pro", 1))
        page.click("#token-use")
        page.wait_for_selector("body[data-loaded=true]", timeout=30_000)
        assert not page.is_visible("#login")
        assert page.inner_text("#backtest .empty") == NO_BACKTEST
        assert page.inner_text("#drift .empty") == NO_DRIFT
        assert page.inner_text("#alerts .empty") == NO_ALERTS
        assert page.inner_text("#retraining .empty") == NO_RETRAINING
        assert page.locator("#retraining-table").count() == 0
        assert page.locator('#schedule li[data-job="monthly_retraining"]').is_visible()
        assert page.locator("#equity-chart").count() == 0
        assert page.locator("#selection-table tbody tr").count() == 10
        assert page.inner_text("#champion-version") == f"v{built.champion}"
        page.screenshot(path=str(artifacts_dir() / "dashboard-empty.png"), full_page=True)
        assert not page.errors, page.errors
        page.close()

        # a refused token: the page says so and asks again (the 401 itself is logged by the browser)
        bad = open_page(browser, f"{client.base_url}/dashboard#token=not-a-jwt")
        bad.wait_for_selector("#banner", state="visible")
        assert "refused (401)" in bad.inner_text("#banner") and bad.is_visible("#login")
        assert bad.evaluate("sessionStorage.getItem('vfr.dashboard.token')") is None
        assert not [e for e in bad.errors if e.startswith("exception")]
        bad.close()


def test_summary_says_per_section_what_is_unreachable(built: Built, tmp_path: Path) -> None:
    # the market store refuses connections; the registry's database would live under a regular file
    (tmp_path / "a-file").write_text("not a folder")
    settings = make_settings(built, tmp_path, store_url=f"postgresql+psycopg://vfr@127.0.0.1:{free_port()}/none",
                             mlflow_tracking_uri=f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}")
    with client_for(settings) as client:
        r = client.get("/api/dashboard/summary", headers=auth(settings, "free"))
    assert r.status_code == 200, r.text
    body = r.json()
    down = "the market store is not reachable; try again later"
    assert body["selection"]["rows"] == [] and body["selection"]["message"] == down
    assert body["backtest"]["curves"] == [] and body["backtest"]["message"] == down
    assert body["models"]["versions"] == [] and body["models"]["message"].startswith("the model registry could not")
    assert body["drift"]["message"] == NO_DRIFT and body["alerts"]["message"] == NO_ALERTS  # serving DB is fine
    assert body["retraining"]["runs"] == [] and body["retraining"]["message"] == NO_RETRAINING
    assert [j["job"] for j in body["retraining"]["schedule"]] == [j["job"] for j in next_runs(settings)]
    for needle in ("/tmp", "127.0.0.1", "sqlite:", "postgresql", "Traceback"):
        assert needle not in r.text, needle
