"""Start-up of the API (issue 17): the champion is loaded before the first request, start-up
survives a missing model and a slow registry, and the docs pages work offline."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving.conftest import Built, make_settings, running
from vfr.ml import ModelRegistry
from vfr.serving import ServingEngine, create_app


class SlowRegistry:
    """The real registry, with ``load`` slowed down (a large artifact on a remote store) and,
    when ``gate`` is given, ``champion_version`` blocked until it is set (a registry that hangs)."""

    def __init__(self, registry: Any, load_delay_s: float = 0.0, gate: threading.Event | None = None) -> None:
        self._registry = registry
        self.load_delay_s = load_delay_s
        self.gate = gate

    def __getattr__(self, name: str) -> Any:
        return getattr(self._registry, name)

    def load(self, *args: Any, **kwargs: Any) -> Any:
        time.sleep(self.load_delay_s)
        return self._registry.load(*args, **kwargs)

    def champion_version(self, name: str) -> str | None:
        if self.gate is not None:
            self.gate.wait(60)
        return self._registry.champion_version(name)


def _select_ml(client: httpx.Client) -> dict[str, Any]:
    r = client.get("/api/stocks/select", params={"include_ml": True, "ml_confidence_threshold": 0})
    assert r.status_code == 200, r.text
    return r.json()["ml"]


def test_first_ml_request_after_start_uses_the_preloaded_champion(built: Built, tmp_path: Path) -> None:
    # loading the model takes longer than the whole ML budget: only a champion loaded at
    # start-up can answer the very first request
    settings = make_settings(built, tmp_path, ml_timeout_ms=1000)
    registry = SlowRegistry(ModelRegistry.from_settings(settings), load_delay_s=2.0)
    app = create_app(settings, engine=ServingEngine(settings, registry=registry), warm=True)
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        ml = _select_ml(client)
        assert ml["status"] == "ok", ml
        assert ml["models"] == [{"name": built.model_name, "version": built.champion}]
        assert {"name": built.model_name, "version": built.champion} in app.state.engine.models.loaded()


def test_start_up_without_a_model_serves_classic(built: Built, tmp_path: Path) -> None:
    settings = make_settings(built, tmp_path, model_name="no-such-model")
    with running(create_app(settings, warm=True)) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/api/health").status_code == 200
        ml = _select_ml(client)
        assert ml["status"].startswith("unavailable"), ml


def test_a_hanging_registry_does_not_hold_the_server_back(built: Built, tmp_path: Path) -> None:
    settings = make_settings(built, tmp_path, ml_timeout_ms=500)
    gate = threading.Event()
    registry = SlowRegistry(ModelRegistry.from_settings(settings), gate=gate)
    app = create_app(settings, engine=ServingEngine(settings, registry=registry), warm=True, warmup_wait_s=0.5)
    try:
        t0 = time.monotonic()
        with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
            assert time.monotonic() - t0 < 15
            assert client.get("/api/health").status_code == 200
            gate.set()  # the registry answers again: the background warm-up finishes
            deadline = time.monotonic() + 30
            while not app.state.engine.models.loaded() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _select_ml(client)["status"] == "ok"
    finally:
        gate.set()


_ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets(shared_api: httpx.Client, page: str) -> None:
    r = shared_api.get(page)
    assert r.status_code == 200
    assert "http://" not in r.text and "https://" not in r.text, r.text  # no CDN, no web font
    assets = _ASSET.findall(r.text)
    assert len(assets) >= 2, r.text  # the script and its stylesheet or favicon
    for url in assets:
        assert url.startswith("/"), f"{page} loads {url} from elsewhere"
        got = shared_api.get(url)
        assert got.status_code == 200, url
        assert len(got.content) > 100, url


def test_swagger_oauth2_redirect_is_served(shared_api: httpx.Client) -> None:
    assert shared_api.get("/docs/oauth2-redirect").status_code == 200


def test_warmup_wait_is_a_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Issue 17: start-up's wait for the warm-up is ``api_warmup_wait_s`` (VFR_API_WARMUP_WAIT_S,
    default 30 s); ``create_app(warmup_wait_s=...)`` still overrides it."""
    import vfr.serving.app as app_module
    from vfr.config import Settings

    waits: list[float] = []

    async def fake_warm_up(engine, wait_s: float) -> bool:
        waits.append(wait_s)
        return True

    monkeypatch.setattr(app_module, "warm_up", fake_warm_up)
    monkeypatch.setenv("VFR_API_WARMUP_WAIT_S", "2.5")
    assert Settings(home=tmp_path).api_warmup_wait_s == 2.5
    monkeypatch.delenv("VFR_API_WARMUP_WAIT_S")
    assert Settings(home=tmp_path).api_warmup_wait_s == 30.0 == app_module.WARMUP_WAIT_S
    for kwargs, expected in (({}, 7.0), ({"warmup_wait_s": 0.5}, 0.5)):
        settings = Settings(home=tmp_path, api_warmup_wait_s=7.0, service_alert_interval_s=0)
        with running(app_module.create_app(settings, warm=True, **kwargs)):
            pass
        assert waits[-1] == expected
    root = Path(__file__).resolve().parents[2]
    for doc in ("README.md", "docs/api.md"):
        assert "VFR_API_WARMUP_WAIT_S" in (root / doc).read_text(encoding="utf-8"), doc
