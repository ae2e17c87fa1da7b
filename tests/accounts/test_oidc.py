"""Single sign-on through OpenID Connect, against a stand-in identity provider on loopback.

The site runs as its own uvicorn process configured only by environment (OIDC_*, SSO_AUTO_JOIN), as
an operator would run it; the identity provider is a small HTTP server in this process that speaks
the parts of OpenID Connect the site calls: discovery, the token endpoint (authorization code with
PKCE) and userinfo. The test plays the browser between the two.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from accounts.models import User
from organizations.models import Membership, Organization
from organizations.services import organization_create
from tests.e2e.support import _test_database_url, running_gateway
from tests.mockprovider import free_port

pytestmark = pytest.mark.e2e
CLIENT_ID, CLIENT_SECRET = "site-client", "site-secret-long-enough-for-hmac-sha256"


@dataclass
class IdP:
    url: str
    email: str = "dana@acme.test"
    email_verified: bool = True
    token_requests: list[dict[str, list[str]]] = field(default_factory=list)


def _handler(idp: IdP) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, payload: dict[str, Any], status: int = 200) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                self._json(
                    {
                        "issuer": idp.url,
                        "authorization_endpoint": f"{idp.url}/authorize",
                        "token_endpoint": f"{idp.url}/token",
                        "userinfo_endpoint": f"{idp.url}/userinfo",
                        "jwks_uri": f"{idp.url}/jwks",
                        "token_endpoint_auth_methods_supported": ["client_secret_post"],
                    }
                )
            elif self.path == "/userinfo" and self.headers.get("Authorization") == "Bearer at-1":
                self._json({"sub": "u-123", "email": idp.email, "email_verified": idp.email_verified, "name": "Dana"})
            else:
                self._json({"error": "not_found"}, 404)

        def do_POST(self) -> None:
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            idp.token_requests.append(form)
            if self.path != "/token" or form.get("client_secret") != [CLIENT_SECRET] or form.get("code") != ["c-1"]:
                self._json({"error": "invalid_grant"}, 400)
                return
            now = int(time.time())
            claims = {"iss": idp.url, "aud": CLIENT_ID, "sub": "u-123", "iat": now, "exp": now + 300}
            claims.update(email=idp.email, email_verified=idp.email_verified)
            id_token = jwt.encode(claims, CLIENT_SECRET, algorithm="HS256")
            self._json({"access_token": "at-1", "token_type": "Bearer", "expires_in": 300, "id_token": id_token})

    return Handler


@pytest.fixture
def idp() -> Iterator[IdP]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = IdP(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()


@pytest.fixture
def site(transactional_db: None, idp: IdP, tmp_path: Path) -> Iterator[str]:
    from django.conf import settings

    port = free_port()
    env = {
        **__import__("os").environ,
        "DJANGO_SETTINGS_MODULE": "openrouter_site.settings",
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "ACCOUNT_EMAIL_VERIFICATION": "mandatory",
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_SERVER_URL": idp.url,
        "OIDC_PROVIDER_ID": "acme-sso",
        "SSO_AUTO_JOIN": "acme.test=acme:admin",
        "SITE_URL": f"http://127.0.0.1:{port}",
    }
    with running_gateway(env, tmp_path / "site.log", port=port) as gw:
        yield gw.url


def _sign_in(site: str, idp: IdP) -> httpx.Client:
    """The browser's part: start the login, 'approve' at the IdP, follow the callback."""
    browser = httpx.Client(base_url=site, follow_redirects=False, timeout=10)
    page = browser.get("/accounts/oidc/acme-sso/login/")
    assert page.status_code == 200, page.text[:500]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token is not None
    started = browser.post("/accounts/oidc/acme-sso/login/", data={"csrfmiddlewaretoken": token.group(1)})
    assert started.status_code == 302
    authorize = urlsplit(started.headers["location"])
    assert f"{authorize.scheme}://{authorize.netloc}" == idp.url
    query = parse_qs(authorize.query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["code_challenge_method"] == ["S256"]
    callback = urlsplit(query["redirect_uri"][0])
    done = browser.get(callback.path, params={"code": "c-1", "state": query["state"][0]})
    assert done.status_code == 302, done.text[:500]
    return browser


def test_a_new_user_signs_in_with_sso_and_joins_their_companys_organization(site: str, idp: IdP) -> None:
    owner = User.objects.create_user("owner@acme.test", "correct horse battery")
    acme = organization_create(name="Acme", owner=owner)
    Organization.objects.filter(pk=acme.pk).update(slug="acme")

    browser = _sign_in(site, idp)

    user = User.objects.get(email="dana@acme.test")
    assert Membership.objects.get(organization=acme, user=user).role == "admin"
    # The token request proved the PKCE verifier and the client secret.
    assert idp.token_requests[-1]["code_verifier"]
    # Signed in: the organization's keys page answers instead of sending us to the login page.
    page = browser.get("/o/acme/keys/")
    assert page.status_code == 200, (page.status_code, page.headers.get("location"))


def test_an_unverified_address_joins_nothing(site: str, idp: IdP) -> None:
    owner = User.objects.create_user("owner@acme.test", "correct horse battery")
    acme = organization_create(name="Acme", owner=owner)
    Organization.objects.filter(pk=acme.pk).update(slug="acme")
    idp.email_verified = False

    _sign_in(site, idp)

    assert not Membership.objects.filter(organization=acme, user__email="dana@acme.test").exists()
