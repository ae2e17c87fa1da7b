from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from proxy.api import catalog_views

urlpatterns: list[URLPattern | URLResolver] = [
    path("models", catalog_views.models_list, name="api-models"),
    path("models/count", catalog_views.models_count, name="api-models-count"),
    path("models/user", catalog_views.UserModelsView.as_view(), name="api-models-user"),
    path("models/<str:author>/<str:slug>", catalog_views.model_retrieve, name="api-model-retrieve"),
    path("models/<str:author>/<str:slug>/endpoints", catalog_views.model_endpoints, name="api-model-endpoints"),
    path("model/<str:author>/<str:slug>", catalog_views.model_detail, name="api-model"),
    path("providers", catalog_views.providers_list, name="api-providers"),
    path("endpoints/zdr", catalog_views.zdr_endpoints, name="api-endpoints-zdr"),
    path("embeddings/models", catalog_views.embedding_models, name="api-embedding-models"),
]
