"""The manager page in a real browser: Playwright driving Debian's headless Chromium against `bentoml serve`."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from leadscore.tools.demo import example_request
from tests.conftest import ARTIFACTS
from tests.integration.conftest import API_KEY, post

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ARTIFACTS / "manager-page"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed: `make test` installs it (apt-get install chromium)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def scored(server, sim_dir: Path):
    """Leads the page can show: scored through the API like a CRM would, one of them with personal data
    as its very id (the page must mask it)."""
    request = example_request(sim_dir, n_leads=12)
    assert post(server, "/score", request).status_code == 200
    tagged = dict(request["leads"][0], lead_id="13800138000")
    assert post(server, "/score", {"as_of": request["as_of"], "leads": [tagged]}).status_code == 200
    return request


def login(page, url: str) -> None:
    page.goto(f"{url}/manager")
    assert page.url.endswith("/manager/login"), "the page needs the key first"
    page.fill("#key", API_KEY)
    page.click("#login")
    page.wait_for_url(f"{url}/manager")


def test_list_to_lead_and_team_in_a_real_browser(server, browser, scored) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    login(page, server["url"])
    scores = [float(s) for s in page.locator("#leads .score").all_inner_texts()]
    assert len(scores) >= 12 and scores == sorted(scores, reverse=True), "sorted by health score"
    assert "13800138000" not in page.content() and "[PHONE]" in page.content()
    page.screenshot(path=str(SHOTS / "list.png"), full_page=True)

    page.select_option("#filter-tier", index=1)
    page.click("#apply")
    tier = page.locator("#filter-tier").input_value()
    assert tier and set(page.locator("#leads .tier").all_inner_texts()) == {tier}

    page.goto(f"{server['url']}/manager")
    first_id = page.locator(".lead-link").first.inner_text()
    page.locator(".lead-link").first.click()
    page.wait_for_selector("#factors")
    assert first_id in page.locator("#lead-title").inner_text()
    assert page.locator("#factors .factor").count() >= 2
    assert re.search(r"[+-]\d+\.\d分", page.locator("#factors").inner_text())
    page.wait_for_selector("#trend .main-svg")  # the trend is a plotly chart now (plotly.js served offline)
    assert page.locator("#trend .scatterlayer .trace").count() == 1 and page.locator("#radar polygon").count() == 2
    assert page.locator("#actions li").count() >= 1 and page.locator("#timeline li").count() >= 1
    page.screenshot(path=str(SHOTS / "lead.png"), full_page=True)

    page.goto(f"{server['url']}/manager/team")
    assert page.locator(".owner-row").count() >= 2
    page.screenshot(path=str(SHOTS / "team.png"), full_page=True)


def test_the_page_fits_a_phone(server, browser, scored) -> None:
    page = browser.new_page(viewport={"width": 375, "height": 812}, is_mobile=True)
    login(page, server["url"])
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375 + 1, f"the list is {width}px wide on a 375px screen"
    page.locator(".lead-link").first.click()
    page.wait_for_selector("#factors")
    assert page.evaluate("document.documentElement.scrollWidth") <= 376
    page.screenshot(path=str(SHOTS / "lead-phone.png"), full_page=True)


def test_a_wrong_key_does_not_open_the_page(server, browser) -> None:
    page = browser.new_page()
    page.goto(f"{server['url']}/manager/login")
    page.fill("#key", "not-the-key-0123456789")
    page.click("#login")
    assert "密钥无效" in page.content()
    page.goto(f"{server['url']}/manager/team")
    assert page.url.endswith("/manager/login")
