"""Template context every page and email gets: the site's own name and address (not the Sites framework's
"example.com" row, which nothing keeps up to date)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest | None) -> dict[str, object]:
    return {
        "site_name": settings.SITE_NAME,
        "site_url": settings.SITE_URL.rstrip("/"),
        # The verification page tells the truth about where mail goes when nothing is sent.
        "mail_to_console": settings.EMAIL_BACKEND.endswith("ConsoleEmailBackend"),
    }
