"""The dashboard in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Signs in through the allauth form, creates a key through the htmx form, copies nothing but checks the
key is shown once, then renames, limits, disables and deletes it. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from accounts.models import User
from organizations.models import ApiKey, Membership
from organizations.services import organization_create_personal
from tests.support import Triad

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PASSWORD = "a long and unusual passphrase"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        message = f"{CHROMIUM} is missing: run `bash scripts/system-deps.sh`"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must run the browser tests, never silently skip them
        pytest.skip(message)
    # Playwright's sync API runs an event loop in this thread; Django then refuses ORM calls without this.
    # Restored afterwards so the rest of the suite still catches real async-unsafe calls.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
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
def page(browser: Any) -> Iterator[Any]:
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    opened = context.new_page()
    yield opened
    context.close()


def _verified_user(email: str) -> User:
    from allauth.account.models import EmailAddress

    user = User.objects.create_user(email, PASSWORD)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    organization_create_personal(user=user)
    return user


def _sign_in(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.screenshot(path=str(ARTIFACTS / "01-login.png"), full_page=True)
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.auth-form button[type=submit]")
    page.wait_for_url(re.compile(r"/o/[\w-]+/keys/$"))


def test_it_signs_in_and_manages_a_key_in_chromium(live_server: Any, page: Any) -> None:
    base = live_server.url
    user = _verified_user("browser@example.com")
    org = Membership.objects.get(user=user).organization

    _sign_in(page, base, "browser@example.com")
    assert page.locator("h1").inner_text() == "API keys"
    assert page.locator("#org-switcher-select").input_value() == org.slug
    page.screenshot(path=str(ARTIFACTS / "02-keys-empty.png"), full_page=True)

    # Invalid input: the htmx form re-renders with an error and nothing is created.
    page.fill("#id_name", "production")
    page.fill("#id_limit_usd", "-5")
    page.click("form.create-key button[type=submit]")
    page.wait_for_selector(".field.has-error")
    assert ApiKey.objects.count() == 0
    page.screenshot(path=str(ARTIFACTS / "03-create-error.png"), full_page=True)

    page.fill("#id_limit_usd", "25")
    page.select_option("#id_limit_reset", "monthly")
    page.click("form.create-key button[type=submit]")
    page.wait_for_selector("#new-key-value")
    shown = page.locator("#new-key-value").inner_text().strip()
    assert re.fullmatch(r"sk-or-v1-[0-9a-f]{64}", shown)
    api_key = ApiKey.objects.get()
    assert api_key.hash != shown
    assert api_key.limit_nanos == 25_000_000_000
    assert page.url.endswith(f"/o/{org.slug}/keys/")  # an htmx swap, not a navigation
    page.screenshot(path=str(ARTIFACTS / "04-key-created.png"), full_page=True)

    row = page.locator(f"#key-{api_key.public_id}")
    row.get_by_role("link", name="Rename").click()
    page.locator(f"#key-{api_key.public_id} input[name=name]").fill("production backend")
    page.screenshot(path=str(ARTIFACTS / "05-rename.png"), full_page=True)
    page.locator(f"#key-{api_key.public_id}").get_by_role("button", name="Save").click()
    page.wait_for_selector(f"#key-{api_key.public_id} >> text=production backend")

    page.locator(f"#key-{api_key.public_id}").get_by_role("link", name="Limit").click()
    page.locator(f"#key-{api_key.public_id} input[name=limit_usd]").fill("12.5")
    page.locator(f"#key-{api_key.public_id} select[name=limit_reset]").select_option("daily")
    page.screenshot(path=str(ARTIFACTS / "05b-limit.png"), full_page=True)
    page.locator(f"#key-{api_key.public_id}").get_by_role("button", name="Save").click()
    page.wait_for_selector(f"#key-{api_key.public_id} >> text=$12.50")

    page.locator(f"#key-{api_key.public_id}").get_by_role("button", name="Disable").click()
    page.wait_for_selector(f"#key-{api_key.public_id} >> text=Enable")
    api_key.refresh_from_db()
    assert api_key.disabled and api_key.name == "production backend"
    page.screenshot(path=str(ARTIFACTS / "06-disabled.png"), full_page=True)

    page.reload()
    assert shown not in page.content()  # shown once: never again

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"#key-{api_key.public_id}").get_by_role("button", name="Delete").click()
    page.wait_for_selector(f"#key-{api_key.public_id}", state="detached")
    assert not ApiKey.objects.exists()


def test_it_shows_a_member_the_keys_without_manage_controls(live_server: Any, page: Any, triad: Triad) -> None:
    from allauth.account.models import EmailAddress

    from organizations.services import api_key_create

    EmailAddress.objects.create(user=triad.member, email=triad.member.email, verified=True, primary=True)
    api_key_create(organization=triad.org, name="shared", created_by=triad.owner)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", triad.member.email)
    page.fill("input[name=password]", "correct horse battery")
    page.click("form.auth-form button[type=submit]")
    page.wait_for_url(re.compile(r"/o/[\w-]+/keys/$"))
    page.goto(f"{live_server.url}/o/{triad.org.slug}/organization/")
    page.screenshot(path=str(ARTIFACTS / "07-organization-member.png"), full_page=True)
    page.goto(f"{live_server.url}/o/{triad.org.slug}/keys/")
    assert page.locator("text=shared").count() >= 1
    assert page.locator("form.create-key").count() == 0
    assert page.get_by_role("button", name="Delete").count() == 0
    page.screenshot(path=str(ARTIFACTS / "08-keys-member.png"), full_page=True)


def test_it_signs_up_verifies_by_email_and_lands_on_keys(live_server: Any, page: Any) -> None:
    from django.core import mail

    base = live_server.url
    page.goto(f"{base}/accounts/signup/")
    page.fill("input[name=email]", "fresh@example.com")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.screenshot(path=str(ARTIFACTS / "09-signup.png"), full_page=True)
    page.click("form.auth-form button[type=submit]")
    page.wait_for_url(re.compile(r"/accounts/confirm-email/$"))
    page.screenshot(path=str(ARTIFACTS / "10-verification-sent.png"), full_page=True)

    link = re.search(r"https?://\S+/accounts/confirm-email/[^/\s]+/", mail.outbox[-1].body)
    assert link is not None
    path = link.group(0).split("/accounts/", 1)[1]
    page.goto(f"{base}/accounts/{path}")
    page.screenshot(path=str(ARTIFACTS / "11-confirm-email.png"), full_page=True)
    page.click("form.auth-form button[type=submit]")
    # Confirming in the browser that signed up signs the user in (ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION).
    page.wait_for_url(re.compile(r"/o/[\w-]+/keys/$"))
    assert "fresh's workspace" in page.locator("#org-switcher-select").inner_text()

    page.goto(f"{base}/settings/")
    page.screenshot(path=str(ARTIFACTS / "12-settings.png"), full_page=True)
    slug = Membership.objects.get(user__email="fresh@example.com").organization.slug
    page.goto(f"{base}/o/{slug}/organization/")
    page.screenshot(path=str(ARTIFACTS / "13-organization-owner.png"), full_page=True)


def test_it_creates_an_organization_and_switches_back_with_the_switcher(
    live_server: Any, page: Any, triad: Triad
) -> None:
    from allauth.account.models import EmailAddress

    EmailAddress.objects.create(user=triad.owner, email=triad.owner.email, verified=True, primary=True)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", triad.owner.email)
    page.fill("input[name=password]", "correct horse battery")
    page.click("form.auth-form button[type=submit]")
    page.wait_for_url(re.compile(rf"/o/{triad.org.slug}/keys/$"))

    page.goto(f"{live_server.url}/o/{triad.org.slug}/organization/")
    page.fill("input[name=name]", "Side Project")
    page.get_by_role("button", name="Create organization").click()
    page.wait_for_url(re.compile(r"/o/side-project/organization/$"))
    assert page.locator("#org-switcher-select").input_value() == "side-project"

    # The switcher posts through htmx on change and follows the HX-Redirect to that org's keys.
    page.select_option("#org-switcher-select", triad.org.slug)
    page.wait_for_url(re.compile(rf"/o/{triad.org.slug}/keys/$"))
    assert page.locator("#org-switcher-select").input_value() == triad.org.slug
    page.screenshot(path=str(ARTIFACTS / "14-switched.png"), full_page=True)


def test_it_signs_out_with_a_post_and_offers_a_password_reset(live_server: Any, page: Any) -> None:
    _verified_user("leaving@example.com")
    _sign_in(page, live_server.url, "leaving@example.com")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/$|/accounts/login/"))
    page.goto(f"{live_server.url}/settings/")
    page.wait_for_url(re.compile(r"/accounts/login/"))

    page.goto(f"{live_server.url}/accounts/password/reset/")
    page.fill("input[name=email]", "leaving@example.com")
    page.screenshot(path=str(ARTIFACTS / "15-password-reset.png"), full_page=True)
    page.click("form.auth-form button[type=submit]")
    page.wait_for_url(re.compile(r"/accounts/password/reset/done/$"))
    page.screenshot(path=str(ARTIFACTS / "16-password-reset-done.png"), full_page=True)


def test_it_tells_the_user_when_an_htmx_action_fails(live_server: Any, page: Any) -> None:
    from organizations.services import api_key_create

    user = _verified_user("stale@example.com")
    org = Membership.objects.get(user=user).organization
    issued = api_key_create(organization=org, name="stale", created_by=user)
    _sign_in(page, live_server.url, "stale@example.com")
    ApiKey.objects.filter(pk=issued.api_key.pk).delete()  # deleted in another tab

    page.locator(f"#key-{issued.api_key.public_id}").get_by_role("button", name="Disable").click()
    page.wait_for_selector("#htmx-error")
    assert "no longer exists" in page.locator("#htmx-error").inner_text()
    page.screenshot(path=str(ARTIFACTS / "17-htmx-error.png"), full_page=True)
