"""paygentic-sdk 0.6.3 (pinned in requirements-dev.txt) against the local API."""
from datetime import datetime, timezone

import httpx
import pytest
from paygentic_sdk import Paygentic, errors


@pytest.fixture
def client(base_url, api_key):
    return Paygentic(bearer_auth=api_key, server_url=base_url)


@pytest.fixture
def entitlement(base_url, api_key, unique):
    """Provisioning is this service's own admin call (no Paygentic SDK method for it)."""
    r = httpx.post(
        f"{base_url}/v1/entitlements",
        headers={"Authorization": f"Bearer {api_key}"},
        json={"customerId": f"cus_{unique}", "featureKey": "api_calls"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_create_replay_get_list_void(client, entitlement):
    g = client.entitlements.grants.create(
        entitlement_id=entitlement, amount=500, idempotency_key="promo-500-march-2026"
    )
    assert g.id.startswith("grt_")
    assert g.entitlement_id == entitlement
    assert g.amount == 500
    assert g.expires_at is None and g.voided_at is None
    assert g.idempotency_key == "promo-500-march-2026"

    replay = client.entitlements.grants.create(
        entitlement_id=entitlement, amount=500.0, idempotency_key="promo-500-march-2026"
    )
    assert replay.id == g.id

    got = client.entitlements.grants.get(entitlement_id=entitlement, grant_id=g.id)
    assert got.id == g.id and got.effective_at == g.effective_at

    listed = client.entitlements.grants.list(entitlement_id=entitlement)
    assert listed.pagination.total == 1
    assert [x.id for x in listed.data] == [g.id]

    voided = client.entitlements.grants.void(entitlement_id=entitlement, grant_id=g.id)
    assert voided.voided_at is not None
    again = client.entitlements.grants.void(entitlement_id=entitlement, grant_id=g.id)
    assert again.voided_at == voided.voided_at

    assert client.entitlements.grants.list(entitlement_id=entitlement).pagination.total == 0
    everything = client.entitlements.grants.list(entitlement_id=entitlement, include_voided=True)
    assert everything.pagination.total == 1


def test_scheduled_grant_with_expiry_priority_and_rollover(client, entitlement):
    eff = datetime(2030, 1, 1, tzinfo=timezone.utc)
    exp = datetime(2030, 6, 1, tzinfo=timezone.utc)
    g = client.entitlements.grants.create(
        entitlement_id=entitlement,
        amount=12.5,
        idempotency_key="scheduled",
        effective_at=eff,
        expires_at=exp,
        priority=3,
        reset_max_rollover=100,
        reset_min_rollover=0,
    )
    assert g.effective_at == eff and g.expires_at == exp
    assert g.amount == 12.5 and g.priority == 3
    assert g.reset_max_rollover == 100 and g.reset_min_rollover == 0


def test_conflicting_replay_is_409(client, entitlement):
    client.entitlements.grants.create(entitlement_id=entitlement, amount=1, idempotency_key="k")
    with pytest.raises(errors.PaygenticError) as e:
        client.entitlements.grants.create(entitlement_id=entitlement, amount=2, idempotency_key="k")
    assert e.value.status_code == 409
    assert "amount" in str(e.value)


def test_validation_error_is_typed(client, entitlement):
    with pytest.raises(errors.PaygenticError) as e:
        client.entitlements.grants.create(entitlement_id=entitlement, amount=-1, idempotency_key="neg")
    assert e.value.status_code == 400
    assert "amount" in str(e.value)


def test_missing_grant_is_404(client, entitlement):
    with pytest.raises(errors.PaygenticError) as e:
        client.entitlements.grants.get(entitlement_id=entitlement, grant_id="grt_01NOPE00000000000000000000")
    assert e.value.status_code == 404


def test_entitlements_list_and_get(client, entitlement, unique):
    client.entitlements.grants.create(entitlement_id=entitlement, amount=40, idempotency_key="bal")
    detail = client.entitlements.get(entitlement_id=entitlement)
    assert detail.id == entitlement
    assert detail.balance == 40
    assert detail.has_access is True
    assert detail.status == "active"
    listed = client.entitlements.list(request={"customer_id": f"cus_{unique}"})
    assert listed.pagination.total == 1
    assert listed.data[0].entitlement_id == entitlement
    assert listed.data[0].balance == 40


def test_unknown_route_is_a_json_404(base_url, api_key):
    r = httpx.get(f"{base_url}/v1/no-such-route", headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
    assert r.status_code == 404
    assert "message" in r.json()
