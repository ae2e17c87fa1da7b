from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt


@cache
def _view(name: str) -> Callable[..., HttpResponseBase]:
    from billing.api import views

    view: Callable[..., HttpResponseBase] = getattr(views, name).as_view()
    return view


def _deferred(name: str) -> Callable[..., HttpResponseBase]:
    """Import the DRF view on its first request, not when the URLconf loads.

    Importing rest_framework.views resolves DEFAULT_AUTHENTICATION_CLASSES, and proxy.api.drf
    imports rest_framework.views at module level: a circular import that would break loading the
    whole URLconf (every page, every `manage.py` check). Deferring keeps that failure, until drf.py
    imports it lazily, confined to these endpoints.
    """

    @csrf_exempt  # bearer-key API; DRF exempts its own views the same way
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return _view(name)(request, *args, **kwargs)

    return view


urlpatterns = [
    re_path(r"^keys/?$", _deferred("KeysView"), name="api-keys"),
    re_path(r"^keys/(?P<key_hash>[^/]{1,128})/?$", _deferred("KeyDetailView"), name="api-key-detail"),
    path("key", _deferred("CurrentKeyView"), name="api-current-key"),
    path("auth/key", _deferred("CurrentKeyView"), name="api-auth-key"),
    re_path(r"^credits/?$", _deferred("CreditsView"), name="api-credits"),
    re_path(r"^generation/?$", _deferred("GenerationView"), name="api-generation"),
]
