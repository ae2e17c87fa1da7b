"""SAML 2.0 single sign-on, against a stand-in identity provider: the test signs the IdP's Response
with its own key (python3-saml's signer, the same XML-DSig the real IdPs produce) and plays the
browser between the site, run as its own process configured only by environment, and the IdP.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from accounts.models import User
from organizations.models import Membership, Organization
from organizations.services import organization_create
from tests.e2e.support import _test_database_url, running_gateway
from tests.mockprovider import free_port

pytestmark = pytest.mark.e2e
IDP_ENTITY = "https://idp.acme.test/saml"
IDP_SSO = "https://idp.acme.test/sso"


def _key_and_cert() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.acme.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def idp_keys() -> tuple[str, str]:
    return _key_and_cert()


@pytest.fixture
def site(transactional_db: None, idp_keys: tuple[str, str], tmp_path: Path) -> Iterator[str]:
    from django.conf import settings

    port = free_port()
    cert_body = "".join(idp_keys[1].strip().splitlines()[1:-1])
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "openrouter_site.settings",
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "ACCOUNT_EMAIL_VERIFICATION": "mandatory",
        "SAML_IDP_ENTITY_ID": IDP_ENTITY,
        "SAML_IDP_SSO_URL": IDP_SSO,
        "SAML_IDP_X509CERT": cert_body,
        "SAML_SLUG": "acme",
        "SSO_AUTO_JOIN": "acme.test=acme:member",
        "SITE_URL": f"http://127.0.0.1:{port}",
    }
    with running_gateway(env, tmp_path / "site.log", port=port) as gw:
        yield gw.url


def _instant(delta: dt.timedelta = dt.timedelta()) -> str:
    return (dt.datetime.now(dt.UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def _response(*, request_id: str, acs: str, audience: str, email: str) -> str:
    now, soon, before = _instant(), _instant(dt.timedelta(minutes=5)), _instant(dt.timedelta(minutes=-1))
    assertion_id, response_id = f"_{uuid.uuid4().hex}", f"_{uuid.uuid4().hex}"
    return f"""<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" \
xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{response_id}" Version="2.0" IssueInstant="{now}" \
Destination="{acs}" InResponseTo="{request_id}"><saml:Issuer>{IDP_ENTITY}</saml:Issuer>\
<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>\
<saml:Assertion xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
ID="{assertion_id}" Version="2.0" IssueInstant="{now}"><saml:Issuer>{IDP_ENTITY}</saml:Issuer><saml:Subject>\
<saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{email}</saml:NameID>\
<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData \
NotOnOrAfter="{soon}" Recipient="{acs}" InResponseTo="{request_id}"/></saml:SubjectConfirmation></saml:Subject>\
<saml:Conditions NotBefore="{before}" NotOnOrAfter="{soon}"><saml:AudienceRestriction><saml:Audience>{audience}\
</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AuthnStatement AuthnInstant="{now}" \
SessionIndex="_s1"><saml:AuthnContext><saml:AuthnContextClassRef>\
urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext>\
</saml:AuthnStatement><saml:AttributeStatement><saml:Attribute Name="uid"><saml:AttributeValue \
xsi:type="xs:string">u-77</saml:AttributeValue></saml:Attribute><saml:Attribute Name="email"><saml:AttributeValue \
xsi:type="xs:string">{email}</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion>\
</samlp:Response>"""


def _sign_in(site: str, idp_keys: tuple[str, str], *, email: str, sign: bool = True) -> httpx.Client:
    browser = httpx.Client(base_url=site, follow_redirects=False, timeout=10)
    page = browser.get("/accounts/saml/acme/login/")
    assert page.status_code == 200, page.text[:300]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token is not None
    started = browser.post("/accounts/saml/acme/login/", data={"csrfmiddlewaretoken": token.group(1)})
    assert started.status_code == 302
    location = urlsplit(started.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == IDP_SSO
    query = parse_qs(location.query)
    request_xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15).decode()
    match = re.search(r'ID="([^"]+)"', request_xml)
    assert match is not None
    xml = _response(
        request_id=match.group(1),
        acs=f"{site}/accounts/saml/acme/acs/",
        audience=f"{site}/accounts/saml/acme/metadata/",
        email=email,
    )
    if sign:
        xml = OneLogin_Saml2_Utils.add_sign(xml, idp_keys[0], idp_keys[1]).decode()
    form = {"SAMLResponse": base64.b64encode(xml.encode()).decode(), "RelayState": query.get("RelayState", [""])[0]}
    acs = browser.post("/accounts/saml/acme/acs/", data=form)
    assert acs.status_code == 302
    browser.get(acs.headers["location"])
    return browser


def _acme() -> Organization:
    owner = User.objects.create_user("owner@acme.test", "correct horse battery")
    acme = organization_create(name="Acme", owner=owner)
    Organization.objects.filter(pk=acme.pk).update(slug="acme")
    return acme


def test_a_saml_user_signs_in_and_joins_the_organization(site: str, idp_keys: tuple[str, str]) -> None:
    acme = _acme()
    browser = _sign_in(site, idp_keys, email="sam@acme.test")
    user = User.objects.get(email="sam@acme.test")
    assert Membership.objects.get(organization=acme, user=user).role == "member"
    assert browser.get("/o/acme/keys/").status_code == 200


def test_an_unsigned_response_signs_nobody_in(site: str, idp_keys: tuple[str, str]) -> None:
    acme = _acme()
    browser = _sign_in(site, idp_keys, email="eve@acme.test", sign=False)
    assert not User.objects.filter(email="eve@acme.test").exists()
    assert not Membership.objects.filter(organization=acme, user__email="eve@acme.test").exists()
    assert browser.get("/o/acme/keys/").status_code == 302
