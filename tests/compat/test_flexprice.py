"""flexprice 2.1.43 (pinned in requirements-dev.txt) against the local API: create, get, update,
delete. (Listing exists only in 1.0.28: tests/compat_flexprice_v1.)"""
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from flexprice import Flexprice
from flexprice.models.errors import FlexpriceError


@pytest.fixture
def client(base_url, api_key):
    return Flexprice(api_key_auth=api_key, server_url=f"{base_url}/v1")


@pytest.fixture
def subscription(base_url, api_key, unique):
    """An entitlement carrying a subscription id (provisioning is this service's own call)."""
    sub = f"sub_{unique}"
    r = httpx.post(
        f"{base_url}/v1/entitlements",
        headers={"x-api-key": api_key},
        json={"customerId": f"cus_{unique}", "featureKey": "api_calls", "subscriptionId": sub},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return sub, r.json()["id"]


def test_create_get_update_delete(client, subscription, base_url, api_key):
    sub, ent = subscription
    created = client.credit_grants.create_credit_grant(
        name="Monthly included credits", scope="SUBSCRIPTION", subscription_id=sub, credits="500",
        cadence="RECURRING", period="MONTHLY", period_count=1, expiration_type="BILLING_CYCLE",
        priority=1, metadata={"source": "sdk"},
    )
    assert created.id and created.credits == "500" and created.scope == "SUBSCRIPTION"
    assert created.status == "published" and created.period == "MONTHLY" and created.metadata == {"source": "sdk"}
    # Its first period was applied to the subscription's entitlement as a real grant.
    grants = httpx.get(f"{base_url}/v1/entitlements/{ent}/grants", headers={"x-api-key": api_key}).json()["data"]
    assert [g["amount"] for g in grants] == [500] and grants[0]["priority"] == 1

    got = client.credit_grants.get_credit_grant(id=created.id)
    assert got.id == created.id and got.name == "Monthly included credits" and got.expiration_type == "BILLING_CYCLE"

    end = (datetime.now(timezone.utc) + timedelta(days=90)).replace(microsecond=0)
    updated = client.credit_grants.update_credit_grant(id=created.id, name="Renamed", metadata={"source": "sdk2"}, end_date=end)
    assert updated.name == "Renamed" and updated.metadata == {"source": "sdk2"} and updated.end_date == end

    deleted = client.credit_grants.delete_credit_grant(id=created.id)
    assert deleted.message
    assert client.credit_grants.get_credit_grant(id=created.id).status == "archived"


def test_subscription_plan_deleted_with_an_effective_date_ends_then(client, subscription):
    sub, _ = subscription
    created = client.credit_grants.create_credit_grant(
        name="Daily", scope="SUBSCRIPTION", subscription_id=sub, credits="1.25", cadence="RECURRING", period="DAILY",
    )
    when = (datetime.now(timezone.utc) + timedelta(days=3)).replace(microsecond=0)
    client.credit_grants.delete_credit_grant(id=created.id, effective_date=when)
    got = client.credit_grants.get_credit_grant(id=created.id)
    assert got.end_date == when and got.status == "published" and got.credits == "1.25"


def test_errors_are_typed(client):
    with pytest.raises(FlexpriceError) as e:
        client.credit_grants.get_credit_grant(id="cgrant_missing")
    assert e.value.status_code == 404
    with pytest.raises(FlexpriceError) as e:
        client.credit_grants.create_credit_grant(name="x", scope="PLAN", credits="10", cadence="ONETIME")
    assert e.value.status_code == 400 and "plan_id" in e.value.body
