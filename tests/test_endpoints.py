"""Path → endpoint template at ingest."""

from __future__ import annotations

import polars as pl
import pytest

from forensics.endpoints import template_path, template_paths


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/api/v1/customers/1234/profile", "/api/v1/customers/{id}/profile"),
        ("/api/v1/customers/1234", "/api/v1/customers/{id}"),
        ("/a/1/2/3", "/a/{id}/{id}/{id}"),
        ("/a/1/b/22/33", "/a/{id}/b/{id}/{id}"),
        ("/orders/123e4567-e89b-12d3-a456-426614174000/items", "/orders/{uuid}/items"),
        ("/users/bob@example.com/settings", "/users/{email}/settings"),
        ("/users/bob%40example.com", "/users/{email}"),
        ("/reset/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "/reset/{token}"),
        ("/blobs/9f86d081884c7d659a2feaa0c55ad015", "/blobs/{hex}"),
        ("/share/Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg", "/share/{token}"),
        ("/v1/x2", "/v1/x2"),
        ("/static/app.3f9a.js", "/static/app.3f9a.js"),
        ("/", "/"),
    ],
)
def test_templates(path, template):
    assert template_path(path) == template


def test_vectorised_keeps_order_and_nulls():
    paths = pl.Series(["/a/1", None, "/b/bob@example.com", "/c"], dtype=pl.String)
    assert template_paths(paths).to_list() == ["/a/{id}", None, "/b/{email}", "/c"]


def test_empty_series():
    assert template_paths(pl.Series([], dtype=pl.String)).to_list() == []
