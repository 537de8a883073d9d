"""Selection and analysis through HTTP against a real uvicorn server and the session store."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.serving.conftest import Built, client_for, make_settings
from vfr.data import MarketStore
from vfr.ml import ModelRegistry
from vfr.scoring import select


def _store_selection(built: Built, **kwargs):
    with MarketStore(built.store_url) as store:
        features = store.read_table("features", start=built.latest, end=built.latest)
        universe = store.read_universe()
    return select(features, date=built.latest, universe=universe, **kwargs)


def test_select_without_ml_is_exactly_the_classic_selection(shared_api: httpx.Client, built: Built) -> None:
    r = shared_api.get("/api/stocks/select")
    assert r.status_code == 200, r.text
    body = r.json()
    expected = _store_selection(built).table
    assert body["date"] == str(built.latest.date())
    assert body["ml"] == {"requested": False, "status": "disabled", "horizon": None, "models": [], "fallback": [],
                          "route": None, "confidence_threshold": None, "latency_ms": None}
    assert [row["symbol"] for row in body["results"]] == expected["symbol"].tolist()
    np.testing.assert_allclose([row["classic_score"] for row in body["results"]], expected["classic_score"])
    np.testing.assert_allclose([row["composite"] for row in body["results"]], expected["composite"])
    assert [row["recommendation"] for row in body["results"]] == expected["recommendation"].tolist()
    assert all(row["ml_probability"] is None for row in body["results"])
    # POST with a JSON body gives the same answer
    post = shared_api.post("/api/stocks/select", json={})
    assert post.status_code == 200 and post.json()["results"] == body["results"]


def test_select_with_ml_uses_the_champion_and_matches_scoring(shared_api: httpx.Client, built: Built) -> None:
    r = shared_api.get("/api/stocks/select", params={"include_ml": "true", "ml_confidence_threshold": 0})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ml"]["status"] == "ok"
    assert body["ml"]["models"] == [{"name": built.model_name, "version": built.champion}]
    assert body["ml"]["route"] == "champion"
    model = ModelRegistry(built.tracking_uri).load(built.model_name)
    expected = _store_selection(built, include_ml=True, model=model).table
    assert [row["symbol"] for row in body["results"]] == expected["symbol"].tolist()
    np.testing.assert_allclose([row["ml_probability"] for row in body["results"]], expected["ml_probability"],
                               rtol=1e-6)
    np.testing.assert_allclose([row["composite"] for row in body["results"]], expected["composite"], rtol=1e-9)


def test_confidence_threshold_blends_only_confident_predictions(shared_api: httpx.Client) -> None:
    body = shared_api.get("/api/stocks/select", params={"include_ml": True, "ml_confidence_threshold": 0.6}).json()
    assert body["ml"]["status"] == "ok" and body["ml"]["confidence_threshold"] == 0.6
    for row in body["results"]:
        assert row["ml_blended"] == (row["ml_confidence"] >= 0.6)
        if not row["ml_blended"]:
            assert row["composite"] == pytest.approx(row["classic_score"])
    composites = [row["composite"] for row in body["results"]]
    assert composites == sorted(composites, reverse=True)
    assert [row["rank"] for row in body["results"]] == list(range(1, len(composites) + 1))


def test_select_a_sector_a_symbol_list_top_and_date(shared_api: httpx.Client, built: Built) -> None:
    with MarketStore(built.store_url) as store:
        universe = store.read_universe()
    sector = universe["sector"].value_counts().index[0]
    members = set(universe.loc[universe["sector"] == sector, "symbol"])
    body = shared_api.get("/api/stocks/select", params={"sector": sector}).json()
    assert {row["symbol"] for row in body["results"]} == members
    body = shared_api.get("/api/stocks/select", params={"symbols": "AAPL,MSFT,JPM,ZZZZ", "top": 2}).json()
    assert body["count"] == 2 and {row["symbol"] for row in body["results"]} <= {"AAPL", "MSFT", "JPM"}
    assert body["unknown_symbols"] == ["ZZZZ"]
    earlier = (built.latest - pd.Timedelta(days=40))
    with MarketStore(built.store_url) as store:
        dates = store.read_table("features", columns=["date"])["date"]
    day = dates[dates <= earlier].max()
    body = shared_api.get("/api/stocks/select", params={"date": str(day.date()), "top": 5}).json()
    assert body["date"] == str(day.date()) and body["count"] == 5
    assert shared_api.get("/api/stocks/select", params={"sector": "Nonexistent"}).status_code == 404
    r = shared_api.get("/api/stocks/select", params={"date": "2001-01-02"})
    assert r.status_code == 404 and "latest available" in r.json()["detail"]


def test_analyze_gives_scores_prediction_contributions_and_recommendation(shared_api: httpx.Client,
                                                                          built: Built) -> None:
    r = shared_api.get("/api/stocks/analyze", params={"symbols": "AAPL,JPM"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ml"]["status"] == "ok"
    assert [a["symbol"] for a in body["results"]] == ["AAPL", "JPM"]
    full = shared_api.get("/api/stocks/select", params={"include_ml": True}).json()
    ranks = {row["symbol"]: row for row in full["results"]}
    for a in body["results"]:
        pred = a["ml_prediction"]
        assert 0 < pred["probability"] < 1 and 0 <= pred["confidence"] <= 1
        assert pred["model_version"] == built.champion and pred["predicted_class"] == int(pred["probability"] >= 0.5)
        assert len(pred["top_contributions"]) == 5
        contribs = [abs(c["contribution"]) for c in pred["top_contributions"]]
        assert contribs == sorted(contribs, reverse=True)
        assert a["recommendation"] in {"STRONG_BUY", "BUY", "HOLD", "SELL", "STRONG_SELL"}
        assert a["composite"] == pytest.approx(ranks[a["symbol"]]["composite"])
        assert a["universe_rank"] == ranks[a["symbol"]]["rank"] and a["universe_size"] == len(SMALL_UNIVERSE(full))
    assert shared_api.get("/api/stocks/analyze", params={"symbols": "ZZZZ"}).status_code == 404


def SMALL_UNIVERSE(full: dict) -> list[str]:  # noqa: N802 - helper named for the reader
    return [row["symbol"] for row in full["results"]]


def test_contributions_are_lightgbm_pred_contrib(shared_api: httpx.Client, built: Built) -> None:
    model = ModelRegistry(built.tracking_uri).load(built.model_name)
    with MarketStore(built.store_url) as store:
        row = store.read_table("features", start=built.latest, end=built.latest, symbols=["MSFT"])
    contrib = model.contributions(row)
    assert list(contrib.columns) == model.feature_columns and contrib.index.equals(row.index)
    # the model's contributions are LightGBM's pred_contrib (without the bias column) ...
    booster = model.model.booster
    full = booster.predict(row[model.feature_columns].to_numpy(np.float32), pred_contrib=True,
                           num_iteration=model.model.best_iteration)[0]
    np.testing.assert_allclose(contrib.iloc[0].to_numpy(), full[:-1], rtol=1e-12)
    # ... whose SHAP values + bias sum to the raw score (log-odds) of the prediction
    p = model.predict_proba(row)[0]
    assert full.sum() == pytest.approx(np.log(p / (1 - p)), rel=1e-5)
    top = shared_api.get("/api/stocks/analyze", params={"symbols": "MSFT"}).json()["results"][0]
    first = top["ml_prediction"]["top_contributions"][0]
    i = model.feature_columns.index(first["feature"])
    assert first["contribution"] == pytest.approx(full[i], rel=1e-6)
    assert np.abs(full[:-1]).max() == pytest.approx(abs(first["contribution"]), rel=1e-6)


@pytest.mark.parametrize(("params", "field"), [
    ({"symbols": "aapl"}, "symbols.0"),
    ({"symbols": "AAPL;DROP"}, "symbols.0"),
    ({"ml_horizon": "1h"}, "ml_horizon"),
    ({"ml_horizon": "2y"}, "ml_horizon"),
    ({"ml_confidence_threshold": "1.5"}, "ml_confidence_threshold"),
    ({"top": "0"}, "top"),
    ({"date": "2019-13-01"}, "date"),
    ({"date": "2999-01-01"}, "date"),
    ({"ml_models": "bad model!"}, "ml_models.0"),
    ({"symbols": ",".join(f"S{i}" for i in range(601))}, "symbols"),
])
def test_invalid_input_answers_422_naming_the_field(shared_api: httpx.Client, params: dict, field: str) -> None:
    r = shared_api.get("/api/stocks/select", params=params)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "validation_error"
    assert field in [d["field"] for d in body["detail"]]
    assert "Traceback" not in r.text and "/work" not in r.text and "site-packages" not in r.text


def test_intraday_horizons_explain_that_intraday_data_is_not_configured(shared_api: httpx.Client) -> None:
    for h in ("1h", "4h"):
        r = shared_api.get("/api/stocks/select", params={"include_ml": True, "ml_horizon": h})
        assert r.status_code == 422
        assert "intraday data" in r.json()["detail"][0]["message"]
    r = shared_api.post("/api/stocks/select", json={"include_ml": True, "ml_horizon": "4h"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "ml_horizon"
    r = shared_api.post("/api/stocks/select", json={"unknown": 1})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "unknown"


def test_analyze_validation(shared_api: httpx.Client) -> None:
    r = shared_api.get("/api/stocks/analyze")
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "symbols"
    r = shared_api.get("/api/stocks/analyze", params={"symbols": ",".join(f"S{i}" for i in range(51))})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "symbols"


def test_a_horizon_without_a_model_falls_back_to_classic(shared_api: httpx.Client) -> None:
    classic = shared_api.get("/api/stocks/select").json()["results"]
    body = shared_api.get("/api/stocks/select", params={"include_ml": True, "ml_horizon": "1m"}).json()
    assert body["ml"]["status"].startswith("unavailable:") and "horizon" in body["ml"]["status"]
    assert body["results"] == classic


def test_docs_and_openapi_are_served(shared_api: httpx.Client) -> None:
    assert shared_api.get("/docs").status_code == 200
    spec = shared_api.get("/openapi.json").json()
    for path in ("/api/stocks/select", "/api/stocks/analyze", "/api/ml/predict", "/api/ml/models",
                 "/api/ml/models/{name}", "/api/ml/models/{name}/promote", "/api/ml/models/{name}/rollback",
                 "/api/ml/health", "/api/health", "/api/admin/data-sources"):
        assert path in spec["paths"], path


def test_health_and_request_ids(shared_api: httpx.Client) -> None:
    r = shared_api.get("/api/health", headers={"X-Request-ID": "abc-123"})
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["store"] == "ok"
    assert r.headers["x-request-id"] == "abc-123"
    r = shared_api.get("/api/nowhere")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_cors_is_off_by_default_and_configurable(shared_api: httpx.Client, built: Built, tmp_path) -> None:
    pre = {"Origin": "https://example.com", "Access-Control-Request-Method": "GET"}
    r = shared_api.options("/api/stocks/select", headers=pre)
    assert "access-control-allow-origin" not in r.headers
    r = shared_api.get("/api/health", headers={"Origin": "https://example.com"})
    assert "access-control-allow-origin" not in r.headers
    settings = make_settings(built, tmp_path, cors_origins=["https://example.com"])
    with client_for(settings) as client:
        r = client.options("/api/stocks/select", headers=pre)
        assert r.headers.get("access-control-allow-origin") == "https://example.com"
