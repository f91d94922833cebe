"""The service's own page in a real headless Chromium (Debian's, driven by Playwright), against a real HTTP server.

The page renders a chart with data, a signed-in caller's approve click changes the
recommendation's state (in the database, as that caller), and an event raised by the engine
appears without a reload. A screenshot is left in tests/.artifacts/page.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

import intelligence.runtime.wiring
from api.app import create_app
from intelligence.runtime.wiring import build_service
from intelligence.settings import load_settings
from intelligence.vocabulary import ManualClock
from tests.driving import drive
from tests.fakes.kernel import MemoryKernel
from tests.serving import serve

pytestmark = pytest.mark.e2e

START = datetime(2026, 1, 1, 5, 30, tzinfo=UTC).timestamp()
ARTIFACTS = Path(__file__).resolve().parent.parent / ".artifacts"
CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright cannot download its own builds here
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def running(tmp_path, monkeypatch):
    kernel = MemoryKernel()
    monkeypatch.setattr(intelligence.runtime.wiring, "_meta_kernel", lambda settings: kernel)
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    (tokens / "alice").write_text("alice-token\n")
    settings = load_settings(
        None,
        **{
            "storage.state_dir": str(tmp_path / "state"),
            "mlflow.enabled": False,
            "api.tokens_dir": str(tokens),
            "policy.mode": "approve",
        },
    )
    clock = ManualClock(START)
    svc = build_service(settings, clock=clock)
    drive(svc, clock, 40)
    with serve(create_app(settings, service=svc)) as url:
        yield svc, clock, url
    svc.stop()


def _open(browser: Browser, url: str, token: str | None = None) -> Page:
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"{r.url}: {r.failure}") if "/v1/events" not in r.url else None)
    if token is not None:  # as if signed in before: the token is in the tab's session storage
        page.add_init_script(f"sessionStorage.setItem('icos-token', {token!r})")
    page.goto(url)
    page.wait_for_selector("#chart[data-ready='1']", timeout=30_000)
    page.errors = errors  # type: ignore[attr-defined]
    return page


def test_the_page_renders_a_chart_with_data_and_every_panel(running, browser):
    _, _, url = running
    page = _open(browser, url)
    assert page.locator("#chart canvas").count() == 1
    drawn = page.evaluate("() => { const d = window.__icos; return [d.firstChartMs !== null, d.renders]; }")
    assert drawn[0]
    assert drawn[1] >= 1
    expect(page.locator("#timebasis")).to_have_text("simulated time")
    expect(page.locator("#clusters li")).to_have_count(3)
    expect(page.locator("#status")).to_have_text("ok")
    assert page.locator("#workloads li").count() >= 5
    assert "requests/s" in page.locator("#chartsub").inner_text()
    assert page.locator("#recs li[data-rec]").count() >= 1
    assert page.locator("#models tr").count() == 3  # cpu, memory, requests
    # no approve buttons for a caller without a token
    assert page.locator("#recs button.approve").count() == 0
    assert page.errors == []  # type: ignore[attr-defined]
    page.close()


def test_an_approve_click_changes_the_recommendation_and_a_live_event_appears(running, browser):
    svc, clock, url = running
    page = _open(browser, url, token="alice-token")
    expect(page.locator("#who")).to_have_text("signed in as alice")
    card = page.locator("#recs li[data-rec]").filter(has=page.locator("button.approve")).first
    rec_id = int(card.get_attribute("data-rec") or 0)
    card.locator("button.approve").click()
    expect(page.locator(f"#recs li[data-rec='{rec_id}'] .state")).to_have_attribute("data-state", "approved")
    stored = svc.actuator.store.get(rec_id)
    assert stored is not None
    assert stored.status.value == "approved"
    audit = svc.actuator.audit.entries(20)
    assert any(e["event"] == "approved" and e["detail"]["by"] == "alice" for e in audit)

    before = page.evaluate("window.__icos.events")
    drive(svc, clock, 1)  # the approval is enacted at the next step: action.enacted, recommendation.changed
    # the stream delivers this step's events (the approval's own may have arrived before ``before`` was read)
    page.wait_for_function("n => window.__icos.events > n", arg=before, timeout=30_000)
    expect(page.locator("#tab-events li.new").first).to_be_visible(timeout=30_000)
    action = svc.actuator.ledger.for_recommendation(rec_id)
    assert action is not None
    assert action.state.value == "enacted"
    enacted = page.locator("#tab-events li.new[data-type='eu.icos.intelligence.action.enacted']")
    expect(enacted).to_have_count(1, timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page.png"), full_page=True)
    assert (ARTIFACTS / "page.png").stat().st_size > 10_000
    assert page.errors == []  # type: ignore[attr-defined]
    page.close()
