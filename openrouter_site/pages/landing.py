"""`/`: a landing page for signed-out visitors; signed-in users go on to their organization's keys."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from openrouter_site.pages import keys, rankings


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return keys.home(request)  # type: ignore[arg-type]  # the middleware made it a CurrentOrgRequest
    # The week's top models come from the rankings' shared cache: a visitor never triggers a scan.
    top = rankings._rankings("week")["models"][:5]
    return render(request, "pages/landing.html", {"top_models": top, "active_nav": "home"})
