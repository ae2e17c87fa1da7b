"""The first hour (issue 16) in a real Chromium, against the real server process (uvicorn, as `make run`
serves it), following the README: demo_setup's key, a local OpenAI-compatible server added with
provider_add, a completion, a second user who signs up (verification link from the server console),
an invitation (link from the console too), and the usage in Activity for both of them.

The "local server" is the mock provider speaking the OpenAI wire format and listing /v1/models.
Screenshots go to tests/artifacts/first-hour-*.png.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from django.core.management import call_command
from pytest_django.fixtures import Settings

from billing.ledger import org_balance_nanos
from organizations.models import Membership, Organization
from tests.browser.test_keys_browser import ARTIFACTS, browser
from tests.e2e.support import Gateway, _mock_server, _test_database_url, generation, mock_provider, running_gateway
from tests.mockprovider import MockProvider

__all__ = ["_mock_server", "browser", "mock_provider"]

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long and unusual passphrase"
SECOND = "second@example.com"
LINK = re.compile(r">>> Open this link: (\S+)")
USAGE_ROW = 'td[data-label="Model"]:has-text("local-vllm/mock-ok")'  # a row of "Latest generations"


@pytest.fixture
def demo(settings: Settings, tmp_path: Path, mock_provider: MockProvider) -> dict[str, str]:
    """What `make run` and the README's provider_add step leave behind, in the test database."""
    settings.DEMO_CREDENTIALS_FILE = tmp_path / "demo-credentials.json"
    call_command("demo_setup", stdout=open(tmp_path / "demo.out", "w"))  # noqa: SIM115
    call_command(
        "provider_add", "--slug", "local-vllm", "--base-url", mock_provider.openai_base_url, "--price-in", "1",
        "--price-out", "2", stdout=open(tmp_path / "provider.out", "w"),  # noqa: SIM115
    )  # fmt: skip
    return dict(json.loads(settings.DEMO_CREDENTIALS_FILE.read_text()))


@pytest.fixture
def server(demo: dict[str, str], tmp_path: Path) -> Iterator[Gateway]:
    """The site under uvicorn on the test database; mail goes to its console (the default backend)."""
    import os

    log_path = tmp_path / "server.log"
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "LOCAL_VLLM_API_KEY": "sk-local",  # the mock wants some key, as a vLLM started with --api-key does
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("EMAIL_BACKEND", None)
    with running_gateway(env, log_path) as gw:
        yield gw


def _console_link(server: Gateway, contains: str, timeout: float = 10.0) -> str:
    """The newest link the server printed to its console whose URL contains `contains`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        links = [url for url in LINK.findall(server.log()) if contains in url]
        if links:
            return links[-1]
        time.sleep(0.1)
    raise AssertionError(f"no {contains} link in the server console:\n{server.log()[-3000:]}")


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"first-hour-{name}.png"), full_page=True)


def test_the_first_hour_from_demo_key_to_a_teammate_seeing_usage(
    browser: Any, demo: dict[str, str], server: Gateway, mock_provider: MockProvider
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    base = server.url
    demo_org = Organization.objects.get(name="Demo", is_personal=False)

    # 1. A completion with the demo key, on the local server's model (its id comes from /v1/models).
    with openai.OpenAI(base_url=f"{base}/api/v1", api_key=demo["key"], max_retries=0, timeout=30) as sdk:
        listed = {m.id for m in sdk.models.list()}
        assert "local-vllm/mock-ok" in listed
        reply = sdk.chat.completions.create(
            model="local-vllm/mock-ok", messages=[{"role": "user", "content": "Hello from the first hour"}]
        )
    assert reply.choices[0].message.content
    gen = generation(reply.id)  # settled (the embedded default does this by itself; here the test does)
    assert gen.cost_nanos > 0
    assert org_balance_nanos(demo_org) == 5_000_000_000 - gen.cost_nanos

    # 2. The demo user signs in with the printed password and invites a teammate.
    owner = browser.new_context(viewport={"width": 1280, "height": 860})
    owner.set_default_timeout(15_000)
    page = owner.new_page()
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", demo["email"])
    page.fill("input[name=password]", demo["password"])
    page.click("form.auth-form button[type=submit]")
    page.wait_for_url(re.compile(r"/o/[\w-]+/keys/$"))
    page.goto(f"{base}/o/{demo_org.slug}/organization/")
    page.fill("input[name=email]", SECOND)
    page.select_option("select[name=role]", "member")
    _shot(page, "01-invite")
    page.get_by_role("button", name="Send invitation").click()
    page.wait_for_selector(f"text=Invitation sent to {SECOND}")
    invitation_url = _console_link(server, "/invitations/")

    # 3. The teammate signs up in another browser; the verification link is in the server console.
    teammate = browser.new_context(viewport={"width": 1280, "height": 860})
    teammate.set_default_timeout(15_000)
    second = teammate.new_page()
    second.goto(f"{base}/accounts/signup/")
    second.fill("input[name=email]", SECOND)
    second.fill("input[name=password1]", PASSWORD)
    second.fill("input[name=password2]", PASSWORD)
    second.click("form.auth-form button[type=submit]")
    second.wait_for_url(re.compile(r"/accounts/confirm-email/$"))
    assert "spam" not in second.content()
    _shot(second, "02-verification-sent")
    second.goto(_console_link(server, "/accounts/confirm-email/"))
    second.click("form.auth-form button[type=submit]")
    second.wait_for_url(re.compile(r"/o/[\w-]+/keys/$"))  # confirming signed them in
    _shot(second, "03-confirmed-signed-in")

    # 4. They accept the invitation and see the demo organization's usage in Activity.
    second.goto(invitation_url)
    second.get_by_role("button", name="Accept invitation").click()
    second.wait_for_load_state()
    assert Membership.objects.filter(organization=demo_org, user__email=SECOND, role="member").exists()
    second.goto(f"{base}/o/{demo_org.slug}/activity/")
    second.wait_for_selector(USAGE_ROW)
    _shot(second, "04-activity-teammate")

    page.goto(f"{base}/o/{demo_org.slug}/activity/")
    page.wait_for_selector(USAGE_ROW)
    _shot(page, "05-activity-owner")
    owner.close()
    teammate.close()
