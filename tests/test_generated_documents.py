"""Documents of every kind built from the kinds' own schemas: the API answers 2xx or 4xx, never 5xx.

Schemathesis, from the OpenAPI document, never produced a valid Deployment with an integer
`maxSurge` (pydantic raised a TypeError inside validation: a 500). Here Hypothesis builds
documents that satisfy each field's schema (tests/schema_strategies.py), so the validators
past the schema get exercised, and sends each to `apply` and to the kind's create path.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from master.objects.kinds import KINDS
from tests.harness import MasterCluster
from tests.schema_strategies import from_schema

EXAMPLES = 20  # per kind and path; a few hundred requests in all, seconds on loopback
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])


def documents(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    return from_schema(KINDS[kind].model.model_json_schema(mode="validation"))


def answered(response: requests.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        body = response.json()
        assert set(body) >= {"error", "reason"}, body


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_generated_documents_never_get_a_server_error(cluster: MasterCluster, kind: str) -> None:
    session = cluster.session()
    info = KINDS[kind]

    @SETTINGS
    @given(document=documents(kind))
    def send(document: dict[str, Any]) -> None:
        answered(session.post(cluster.url(0, "/api/v1/apply"), json=document, timeout=10))
        namespace = (document.get("metadata") or {}).get("namespace") or "default"
        path = (f"/api/v1/namespaces/{namespace}/{info.plural}" if info.namespaced
                else f"/api/v1/{info.plural}")
        answered(session.post(cluster.url(1, path), json=document, timeout=10))

    send()


def test_a_deployment_with_an_integer_max_surge_is_accepted(cluster: MasterCluster) -> None:
    """The reported case: `maxSurge: 1` (Kubernetes takes an integer or a percentage)."""
    deployment = {"apiVersion": "berth/v1", "kind": "Deployment", "metadata": {"name": "surge"},
                  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "s"}},
                           "template": {"metadata": {"labels": {"app": "s"}},
                                        "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
                           "strategy": {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}}}}
    created = cluster.session().post(cluster.url(0, "/api/v1/namespaces/default/deployments"),
                                     json=deployment, timeout=10)
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 1
