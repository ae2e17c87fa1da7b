"""The dashboard in headless Chromium at 1280x800 and 390x844, light and dark.

Every page: answers 200, one h1, a page title, no horizontal overflow at phone width, the nav links
all answer 200. Activity: the chart draws points for seeded data (7 d, 1 h and a custom range), a
filter changes the result, both CSV exports download the right rows. The model page's health charts
have points for seeded generations; catalog sorting changes the order; the rankings come from the
rollups. An outsider gets 404 on every organization view. Screenshots go to var/screenshots/dashboard/
(gitignored; CI keeps them as artifacts) and are worth a look after any change to templates or CSS.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from analytics.rollup import rollup_run
from billing.models import Generation
from organizations.services import api_key_create
from proxy.catalog.build import DEFAULT_OUT
from proxy.catalog.services import catalog_load, catalog_read
from proxy.selectors import catalog_cache_clear
from tests.support import Triad

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots" / "dashboard"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        message = f"{CHROMIUM} is missing: run `bash scripts/system-deps.sh`"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must run the browser tests, never silently skip them
        pytest.skip(message)
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs a loop in this thread
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            yield launched
            launched.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def seeded(triad: Triad) -> Triad:
    """Traffic over the last week on two models and two apps, plus one outsider generation."""
    key = api_key_create(organization=triad.org, name="backend", created_by=triad.owner).api_key
    now = timezone.now()
    for n in range(12):
        Generation.objects.create(
            generation_id=f"gen-browser-{n}",
            organization=triad.org,
            api_key=key,
            model="anthropic/claude-sonnet-4" if n % 3 else "openai/gpt-4o",
            provider_slug="anthropic" if n % 3 else "openai",
            provider_name="Anthropic" if n % 3 else "OpenAI",
            tokens_prompt=100 + n,
            tokens_completion=50,
            cost_nanos=20_295 * (n + 1),
            latency_ms=300 + n,
            ttft_ms=120,
            generation_time_ms=500 + 20 * n,
            finish_reason="stop",
            app_title="Cool Chat" if n % 2 else "",
            http_referer="https://docs.example.org/page",
            created_at=now - timedelta(days=n % 5, hours=n),
        )
    # Two recent requests on gpt-4o for the 1 h chart, one after a failed attempt on another endpoint.
    for n, (attempts, minutes) in enumerate(
        [([{"endpoint_tag": "azure", "provider_name": "Azure", "status": 503}], 3), ([], 14)]
    ):
        Generation.objects.create(
            generation_id=f"gen-browser-recent-{n}",
            organization=triad.org,
            api_key=key,
            model="openai/gpt-4o",
            provider_slug="openai",
            provider_name="OpenAI",
            endpoint_tag="openai",
            tokens_prompt=40,
            tokens_completion=200,
            cost_nanos=5_000,
            latency_ms=900,
            ttft_ms=200,
            generation_time_ms=800,
            provider_responses=[*attempts, {"endpoint_tag": "openai", "provider_name": "OpenAI", "status": 200}],
            created_at=now - timedelta(minutes=minutes),
        )
    Generation.objects.create(
        generation_id="gen-secret",
        organization=triad.outsider_org,
        model="secret/model",
        provider_slug="p",
        provider_name="P",
        created_at=now,
    )
    catalog_cache_clear()
    catalog_load(data=catalog_read(DEFAULT_OUT))
    # Earlier hours are rolled up (rankings, popularity and model health read only the rollups); the
    # current hour stays raw, as it is in production between rollup runs.
    rollup_run(now=now, lag=timedelta(0))
    return triad


def _context(browser: Any, live_server: Any, user: Any, *, viewport: dict[str, int], scheme: str) -> Any:
    """A browser context already signed in as `user` (the session cookie from Django's test client)."""
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport=viewport, color_scheme=scheme, accept_downloads=True)
    context.set_default_timeout(10_000)
    host = live_server.url.split("//", 1)[1].split(":")[0]
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "domain": host, "path": "/"}])
    return context


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    if page.viewport_size["width"] < 760:  # a phone page is too tall to judge whole: keep the first screen too
        page.screenshot(path=str(SCREENSHOTS / f"{name}-screen.png"))


def _overflow(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


# live_server is a WSGI server, so Django buffers the export's async iterator there (and warns); under
# ASGI, as deployed, it is streamed. The streaming itself is tested in tests/analytics.
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume asynchronous iterators")
def test_the_activity_chart_filters_and_export(browser: Any, live_server: Any, seeded: Triad) -> None:
    context = _context(browser, live_server, seeded.member, viewport=DESKTOP, scheme="light")
    page = context.new_page()
    page.goto(f"{live_server.url}/o/{seeded.org.slug}/activity/?range=7d")
    page.wait_for_selector("#activity-chart[data-points]")
    assert page.evaluate("!!Chart.getChart(document.getElementById('activity-canvas'))")
    assert int(page.get_attribute("#activity-chart", "data-points") or 0) > 0
    assert page.get_attribute("#activity-chart", "data-buckets") == "7"
    drawn = page.evaluate(
        """() => { const c = document.getElementById('activity-canvas');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
    )
    assert drawn > 1000  # bars, axes and legend are painted, not just an empty canvas
    labels = page.evaluate("Chart.getChart(document.getElementById('activity-canvas')).data.datasets.map(d => d.label)")
    assert sorted(labels) == ["anthropic/claude-sonnet-4", "openai/gpt-4o"]
    assert "secret/model" not in page.content()
    _shot(page, "activity-desktop-light")

    # The metric switch reloads only the chart, through htmx.
    page.click("label[for=metric-cost]")
    page.wait_for_function("window.activitySeries && window.activitySeries.metric === 'cost'")
    assert "metric=cost" in page.url

    # A filter changes the result: one model, one series, fewer requests.
    page.select_option("#activity-model", "openai/gpt-4o")
    page.wait_for_url("**model=openai%2Fgpt-4o**")
    page.wait_for_function("window.activitySeries && window.activitySeries.series.length === 1")
    assert page.inner_text("#activity-requests") == "6"

    # The aggregate export: the chart's rows (per day x model) for the same filter.
    with page.expect_download() as download_info:
        page.click("#activity-export-aggregates")
    aggregates = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert {r["model"] for r in aggregates} == {"openai/gpt-4o"}
    assert sum(int(r["requests"]) for r in aggregates) == 6
    assert len(aggregates) == len({r["bucket_start"] for r in aggregates}) >= 2  # one row per day with traffic

    # The export downloads exactly the filtered rows.
    with page.expect_download() as download_info:
        page.click("#activity-export")
    path = download_info.value.path()
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text())))
    expected = Generation.objects.filter(organization=seeded.org, model="openai/gpt-4o").count()
    assert len(rows) == expected == 6
    assert {r["model"] for r in rows} == {"openai/gpt-4o"}

    # Drill down: the list links to a generation's detail page.
    page.goto(f"{live_server.url}/o/{seeded.org.slug}/activity/generations/")
    page.locator("#generation-table tbody a").first.click()
    page.wait_for_selector("#generation-id")
    assert page.inner_text("h1") in {"anthropic/claude-sonnet-4", "openai/gpt-4o"}
    _shot(page, "generation-detail-desktop-light")
    context.close()


def _pages(triad: Triad) -> dict[str, str]:
    slug = triad.org.slug
    return {
        "keys": f"/o/{slug}/keys/",
        "credits": f"/o/{slug}/credits/",
        "activity": f"/o/{slug}/activity/",
        "generations": f"/o/{slug}/activity/generations/",
        "generation": f"/o/{slug}/activity/generations/gen-browser-1/",
        "models": "/models/",
        "model": "/models/openai/gpt-4o/",
        "rankings": "/rankings/",
        "organization": f"/o/{slug}/organization/",
        "byok": f"/o/{slug}/byok/",
        "audit": f"/o/{slug}/audit/",
        "settings": "/settings/",
    }


@pytest.mark.parametrize(("viewport_name", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_fits_the_screen_in_both_themes(
    browser: Any, live_server: Any, seeded: Triad, viewport_name: str, viewport: dict[str, int], scheme: str
) -> None:
    context = _context(browser, live_server, seeded.owner, viewport=viewport, scheme=scheme)
    page = context.new_page()
    problems: list[str] = []  # every page is checked and photographed before the test fails
    for name, path in _pages(seeded).items():
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 200, path
        if name == "activity":
            page.wait_for_selector("#activity-chart[data-points]")
        _shot(page, f"{name}-{viewport_name}-{scheme}")
        if page.locator("h1").count() != 1:
            problems.append(f"{path} has {page.locator('h1').count()} h1")
        if not page.title().split(" · ")[0].strip():
            problems.append(f"{path} has an empty page title")
        if (extra := _overflow(page)) > 0:
            wide = page.evaluate(
                """() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right >
                   window.innerWidth + 1).slice(-3).map(e => e.tagName + '.' + e.className).join(', ')"""
            )
            problems.append(f"{path} is {extra} px wider than the {viewport_name} screen ({wide})")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        if (background == "rgb(15, 18, 24)") != (scheme == "dark"):
            problems.append(f"{path} background {background} in {scheme} mode")
    assert not problems, "\n".join(problems)

    # Every nav link answers 200 (read from the page, so a new item is covered without editing this test).
    links = page.eval_on_selector_all("#main-nav a", "els => els.map(a => a.getAttribute('href'))")
    assert len(links) >= 6
    for href in links:
        status = page.request.get(f"{live_server.url}{href}").status
        assert status == 200, f"nav link {href} answered {status}"
    context.close()


def test_the_phone_menu_sign_out_switcher_and_theme_toggle(browser: Any, live_server: Any, seeded: Triad) -> None:
    context = _context(browser, live_server, seeded.owner, viewport=PHONE, scheme="light")
    page = context.new_page()
    page.goto(f"{live_server.url}/o/{seeded.org.slug}/keys/")
    assert not page.locator("#main-nav").is_visible()  # collapsed behind Menu
    page.get_by_role("button", name="Menu").click()
    assert page.locator("#main-nav").is_visible()
    _shot(page, "keys-phone-menu-open")
    for selector in ("#main-nav a[href$='/activity/']", "button:has-text('Sign out')", "#org-switcher-select"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], selector

    page.locator("[data-theme-toggle]").first.click()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    page.reload()  # the choice is remembered and applied before paint
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(15, 18, 24)"
    context.close()


def test_an_outsider_gets_404_for_the_activity_pages(browser: Any, live_server: Any, seeded: Triad) -> None:
    context = _context(browser, live_server, seeded.outsider, viewport=DESKTOP, scheme="light")
    page = context.new_page()
    for path in (
        "/activity/",
        "/activity/?range=1h",
        "/activity/?range=custom&from=2026-01-01&to=2026-01-31",
        "/activity/series.json",
        "/activity/generations/",
        "/activity/generations/gen-browser-1/",
        "/activity/generations.csv",
        "/activity/aggregates.csv",
        "/keys/",
        "/credits/",
        "/organization/",
        "/byok/",
        "/audit/",
    ):
        # page.request: the CSV answers would be downloads for page.goto; the status is what matters.
        response = page.request.get(f"{live_server.url}/o/{seeded.org.slug}{path}")
        assert response.status == 404, path
    context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_public_pages_fit_a_phone_signed_out(browser: Any, live_server: Any, seeded: Triad, scheme: str) -> None:
    context = browser.new_context(viewport=PHONE, color_scheme=scheme)
    page = context.new_page()
    for name, path in {
        "landing": "/",
        "models": "/models/?q=claude",
        "model": "/models/openai/gpt-4o/",
        "rankings": "/rankings/",
    }.items():
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 200, path
        _shot(page, f"public-{name}-phone-{scheme}")
        assert page.locator("h1").count() == 1, path
        assert _overflow(page) <= 0, f"{path} is {_overflow(page)} px wider than the phone screen"
        assert page.get_by_role("link", name="Sign in").is_visible()
    assert page.evaluate("!!Chart.getChart(document.getElementById('rankings-canvas'))")
    context.close()


def test_the_one_hour_and_custom_ranges_chart_points(browser: Any, live_server: Any, seeded: Triad) -> None:
    context = _context(browser, live_server, seeded.member, viewport=DESKTOP, scheme="dark")
    page = context.new_page()
    page.goto(f"{live_server.url}/o/{seeded.org.slug}/activity/?range=1h")
    page.wait_for_selector("#activity-chart[data-points]")
    assert page.get_attribute("#activity-chart", "data-buckets") == "12"  # 5-minute buckets
    assert int(page.get_attribute("#activity-chart", "data-points") or 0) >= 2
    # gen-browser-0 (just now) and the two recent ones; the chart and the totals count the same rows.
    assert page.inner_text("#activity-requests") == "3"
    assert page.evaluate("window.activitySeries.total") == 3
    _shot(page, "activity-1h-desktop-dark")

    today = timezone.now().date()
    page.fill("#range-from", (today - timedelta(days=3)).isoformat())
    page.fill("#range-to", today.isoformat())
    assert page.is_checked("#range-custom")  # picking a date selects "Custom"
    page.click("#activity-form button[type=submit]")
    page.wait_for_url("**range=custom**")
    page.wait_for_selector("#activity-chart[data-points]")
    assert page.get_attribute("#activity-chart", "data-buckets") == "4"
    assert int(page.get_attribute("#activity-chart", "data-points") or 0) > 0
    _shot(page, "activity-custom-desktop-dark")

    # A backwards range is refused with a reason, and the page still works (the last 7 days shown).
    slug = seeded.org.slug
    response = page.goto(f"{live_server.url}/o/{slug}/activity/?range=custom&from=2026-03-10&to=2026-03-01")
    assert response is not None and response.status == 400
    assert "start date must be on or before the end date" in page.inner_text("#range-error")
    page.wait_for_selector("#activity-chart[data-points]")
    assert page.get_attribute("#activity-chart", "data-buckets") == "7"
    context.close()

    phone = _context(browser, live_server, seeded.member, viewport=PHONE, scheme="light").new_page()
    phone.goto(f"{live_server.url}/o/{slug}/activity/?range=custom&from={today - timedelta(days=3)}&to={today}")
    phone.wait_for_selector("#activity-chart[data-points]")
    assert _overflow(phone) <= 0
    _shot(phone, "activity-custom-phone-light")


@pytest.mark.parametrize(("viewport_name", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_model_page_charts_endpoint_health(
    browser: Any, live_server: Any, seeded: Triad, viewport_name: str, viewport: dict[str, int], scheme: str
) -> None:
    page = browser.new_context(viewport=viewport, color_scheme=scheme).new_page()
    page.goto(f"{live_server.url}/models/anthropic/claude-sonnet-4/?health=7d")
    for metric in ("uptime", "latency", "throughput"):
        page.wait_for_selector(f"#health-{metric}[data-points]")
        assert int(page.get_attribute(f"#health-{metric}", "data-points") or 0) > 0, metric
    labels = page.evaluate("Chart.getChart(document.getElementById('health-uptime-canvas')).data.datasets[0].label")
    assert "anthropic" in labels.lower()
    assert _overflow(page) <= 0
    page.locator("#health").scroll_into_view_if_needed()
    _shot(page, f"model-health-{viewport_name}-{scheme}")


def test_catalog_sorting_changes_the_order(browser: Any, live_server: Any, seeded: Triad) -> None:
    page = browser.new_context(viewport=DESKTOP, color_scheme="light").new_page()
    page.goto(f"{live_server.url}/models/")
    first = page.locator("#models-table tbody .model-id").all_inner_texts()
    page.select_option("#models-sort", "popular")
    page.wait_for_url("**sort=popular**")
    popular = page.locator("#models-table tbody .model-id").all_inner_texts()
    assert popular != first
    # The seeded traffic: claude-sonnet-4 used most, then gpt-4o (rolled-up hours only).
    assert popular[:2] == ["anthropic/claude-sonnet-4", "openai/gpt-4o"]
    page.select_option("#models-sort", "price-desc")
    page.wait_for_url("**sort=price-desc**")
    assert page.locator("#models-table tbody .model-id").all_inner_texts() != popular
    _shot(page, "models-sorted-desktop-light")
    page.click("a[rel=next]")
    assert "sort=price-desc" in page.url and "page=2" in page.url
    assert page.locator("#models-sort").input_value() == "price-desc"


def test_the_rankings_come_from_the_rollups(browser: Any, live_server: Any, seeded: Triad) -> None:
    cache.clear()
    page = browser.new_context(viewport=DESKTOP, color_scheme="dark").new_page()
    page.goto(f"{live_server.url}/rankings/?period=month")
    text = page.inner_text("main")
    assert "anthropic/claude-sonnet-4" in text and "openai/gpt-4o" in text
    assert seeded.org.name not in text and seeded.outsider_org.name not in text
    assert page.evaluate("!!Chart.getChart(document.getElementById('rankings-canvas'))")
    _shot(page, "rankings-desktop-dark")
