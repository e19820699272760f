"""Compatibility tests: the vendors' official SDKs, unchanged, against the local API.

scripts/test.sh serves the API with `cargo lambda watch` and exports GRANTS_BASE_URL, GRANTS_API_KEY
(an admin key of a fresh tenant, GRANTS_TENANT) and GRANTS_MEMBER_KEY before running pytest.
"""
import os
import uuid

import httpx
import pytest


@pytest.fixture(scope="session")
def base_url() -> str:
    return os.environ["GRANTS_BASE_URL"]


@pytest.fixture(scope="session")
def api_key() -> str:
    return os.environ["GRANTS_API_KEY"]


@pytest.fixture(scope="session")
def tenant() -> str:
    """The tenant GRANTS_API_KEY belongs to (Paygentic's merchantId)."""
    return os.environ["GRANTS_TENANT"]


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex


def create_entitlement(base_url: str, api_key: str, customer_id: str) -> str:
    """Provisioning is this service's own admin call (no vendor SDK method for it): the new id."""
    r = httpx.post(
        f"{base_url}/v1/entitlements",
        headers={"Authorization": f"Bearer {api_key}"},
        json={"customerId": customer_id, "featureKey": "api_calls"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]
