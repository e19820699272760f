"""paygentic-sdk 0.6.3 (pinned in requirements-dev.txt) against the local API."""
import time
from datetime import datetime, timezone

import httpx
import pytest
from conftest import create_entitlement
from paygentic_sdk import Paygentic, errors


@pytest.fixture
def client(base_url, api_key):
    return Paygentic(bearer_auth=api_key, server_url=base_url)


@pytest.fixture
def entitlement(base_url, api_key, unique):
    return create_entitlement(base_url, api_key, f"cus_{unique}")


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


def _pay(url: str) -> httpx.Response:
    """Clicks Pay on the sandbox checkout page, as the browser's form post does."""
    page = httpx.get(url, timeout=30)
    assert page.status_code == 200 and 'id="pay"' in page.text, page.text
    return httpx.post(url, data={"action": "pay"}, timeout=60, follow_redirects=False)


def _wait_paid(client, invoice_id: str):
    """What the SDK's docs say to do without webhooks: poll GET /v2/invoices/{id} for PAID."""
    for _ in range(120):
        invoice = client.invoices_v2.get(id=invoice_id)
        if invoice.status == "PAID":
            return invoice
        time.sleep(0.5)
    raise AssertionError(f"invoice {invoice_id} never became PAID: {invoice.status}")


def test_purchase_pay_in_the_sandbox_then_the_grant_is_listed(client, entitlement):
    purchase = client.entitlements.grants.purchase(
        entitlement_id=entitlement,
        amount=1000,
        price="5.00",
        idempotency_key="topup-1000-march-2026",
        success_url="https://example.com/credits/success",
        cancel_url="https://example.com/credits",
    )
    assert purchase.invoice_id.startswith("inv_")
    assert purchase.entitlement_id == entitlement
    assert purchase.grant_amount == 1000
    assert purchase.price == "5.00" and purchase.currency == "usd"
    session = purchase.payment_sessions[0]
    assert session.amount == 500 and session.expires_at is not None
    # Replay: the same invoice; no grant yet.
    again = client.entitlements.grants.purchase(
        entitlement_id=entitlement, amount=1000, price="5.00", idempotency_key="topup-1000-march-2026",
        success_url="https://example.com/credits/success", cancel_url="https://example.com/credits",
    )
    assert again.invoice_id == purchase.invoice_id
    assert client.invoices_v2.get(id=purchase.invoice_id).status == "ISSUED"
    assert client.entitlements.grants.list(entitlement_id=entitlement).data == []

    paid = _pay(session.url)
    assert paid.status_code == 303 and paid.headers["location"] == "https://example.com/credits/success"
    invoice = _wait_paid(client, purchase.invoice_id)
    grants = client.entitlements.grants.list(entitlement_id=entitlement).data
    assert len(grants) == 1 and grants[0].amount == 1000
    assert invoice.model_dump(by_alias=True).get("paidAt") is not None


def test_purchase_mismatch_is_409_and_bad_price_400(client, entitlement):
    client.entitlements.grants.purchase(entitlement_id=entitlement, amount=10, price="1.00", idempotency_key="k")
    with pytest.raises(errors.PaygenticError) as conflict:
        client.entitlements.grants.purchase(entitlement_id=entitlement, amount=11, price="1.00", idempotency_key="k")
    assert conflict.value.status_code == 409
    with pytest.raises(errors.PaygenticError) as bad:
        client.entitlements.grants.purchase(entitlement_id=entitlement, amount=10, price="0.49", idempotency_key="k2")
    assert bad.value.status_code == 400


def test_usage_lowers_the_balance_and_get_at_reads_the_past(client, base_url, api_key, unique):
    """Usage is this service's own endpoint (the SDK has none); the SDK reads the result, also `at` a past instant."""
    from datetime import timedelta

    period = datetime.now(timezone.utc) - timedelta(days=1)
    r = httpx.post(
        f"{base_url}/v1/entitlements",
        headers={"Authorization": f"Bearer {api_key}"},
        json={"customerId": f"cus_{unique}", "featureKey": "api_calls", "currentPeriodStart": period.isoformat()},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    entitlement = r.json()["id"]
    start = datetime.now(timezone.utc) - timedelta(hours=2)
    client.entitlements.grants.create(entitlement_id=entitlement, amount=100, idempotency_key="g", effective_at=start)
    used_at = datetime.now(timezone.utc) - timedelta(hours=1)
    r = httpx.post(
        f"{base_url}/v1/entitlements/{entitlement}/usage",
        headers={"Authorization": f"Bearer {api_key}"},
        json={"eventId": "job-1", "amount": 30, "occurredAt": used_at.isoformat()},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    now = client.entitlements.get(entitlement_id=entitlement)
    assert now.balance == 70 and now.usage_in_period == 30 and now.overage == 0
    before = client.entitlements.get(entitlement_id=entitlement, at=used_at - timedelta(minutes=5))
    assert before.balance == 100


def test_billable_metrics_create_replay_list_get(client, tenant, unique):
    """A metric per event type: the identical create again is the same metric; another organization's
    id is 404; Paygentic's other aggregations are a 400 that says why."""
    event_type = f"ai.inference.{unique}"
    tokens = dict(aggregation="SUM", description="Model tokens", merchant_id=tenant, name="Tokens", unit="tokens",
                  event_type=event_type, value_property="$.tokens", group_by={"model": "$.model"})
    m = client.billable_metrics.create(**tokens)
    assert m.id.startswith("bm_")
    assert m.aggregation == "SUM" and m.value_property == "$.tokens"
    assert m.merchant_id == tenant and m.event_type == event_type
    assert m.item_id is None and m.product_id == ""
    assert m.group_by == {"model": "$.model"}

    again = client.billable_metrics.create(**tokens)
    assert again.id == m.id

    assert client.billable_metrics.get(id=m.id).id == m.id
    listed = client.billable_metrics.list(merchant_id=tenant, limit=100)
    assert m.id in [x.id for x in listed.data]
    assert listed.pagination.limit == 100 and listed.pagination.total >= 1

    with pytest.raises(errors.BadRequest) as bad:
        client.billable_metrics.create(
            aggregation="AVG",
            description="Latency",
            merchant_id=tenant,
            name="Latency",
            unit="ms",
            event_type=f"latency.{unique}",
            value_property="$.ms",
        )
    assert "aggregation" in str(bad.value.data.errors[0].field)
    with pytest.raises(errors.Error):
        client.billable_metrics.create(
            aggregation="COUNT",
            description="Calls",
            merchant_id="someone-else",
            name="Calls",
            unit="calls",
            event_type=f"calls.{unique}",
        )
    with pytest.raises(errors.Error):
        client.billable_metrics.get(id="bm_01NOSUCHMETRIC00000000000")


def test_events_ingest_burns_the_metered_amount(client, base_url, api_key, tenant, unique):
    """events.ingest (202) with a SUM metric: the customer's entitlement for the event type is burned
    by data.tokens, once per idempotency key; an event nothing meters is accepted and kept."""
    event_type = f"ai.tokens.{unique}"
    customer = f"cus_{unique}"
    client.billable_metrics.create(
        aggregation="SUM", description="Tokens", merchant_id=tenant, name="Tokens", unit="tokens",
        event_type=event_type, value_property="$.usage.tokens",
    )
    headers = {"Authorization": f"Bearer {api_key}"}
    ent = httpx.post(f"{base_url}/v1/entitlements", headers=headers, timeout=30,
                     json={"customerId": customer, "featureKey": event_type}).json()["id"]
    client.entitlements.grants.create(entitlement_id=ent, amount=1000, idempotency_key=f"topup-{unique}")

    body = {"type": event_type, "source": "https://app.example", "subject": customer,
            "data": {"usage": {"tokens": 120.5}, "model": "m"}, "idempotency_key": f"evt-{unique}"}
    accepted = client.events.ingest(request=body)
    assert accepted.id and accepted.object == "event"
    assert client.events.ingest(request=body).id == accepted.id  # a duplicate: the same event

    balance = httpx.get(f"{base_url}/v1/entitlements/{ent}/balance", headers=headers, timeout=30).json()
    assert balance["balance"] == 879.5

    other = client.events.ingest(request={"type": f"unmetered.{unique}", "source": "s",
                                          "external_subject": customer, "data": {}})
    assert other.id and other.id != accepted.id

    with pytest.raises(errors.BadRequest):
        client.events.ingest(request={"type": event_type, "source": "s", "subject": customer,
                                      "data": {"usage": {"tokens": "many"}}})


def test_webhooks_enable_get_update_disable(client, base_url, tenant):
    """The SDK's webhooks operations: 404 before enabling, enable once (then 400
    DUPLICATE_RESOURCE), get, the portal link, pause and resume with update, pause with disable
    (204, None)."""
    # This file runs before test_svix.py (pytest's file order), whose fixture enables webhooks
    # when they are not yet.
    with pytest.raises(errors.Error) as missing:
        client.webhooks.get()
    assert missing.value.status_code == 404
    with pytest.raises(errors.Error) as no_portal:
        client.webhooks.get_portal()
    assert no_portal.value.status_code == 404

    enabled = client.webhooks.enable()
    assert enabled.object == "webhooks"
    assert enabled.enabled is True
    assert enabled.merchant_id == tenant
    assert enabled.application_id.startswith("app_")

    with pytest.raises(errors.BadRequest) as duplicate:
        client.webhooks.enable()
    assert duplicate.value.status_code == 400
    assert duplicate.value.data.code == "DUPLICATE_RESOURCE"

    got = client.webhooks.get()
    assert got.application_id == enabled.application_id
    assert got.created_at == enabled.created_at

    # The portal's magic link: a page of this service, usable without a key, for an hour.
    portal = client.webhooks.get_portal()
    assert portal.object == "webhookPortal"
    assert portal.url.startswith(f"{base_url}/webhooks/portal/")
    assert 3500 < (portal.expires_at - datetime.now(timezone.utc)).total_seconds() <= 3600
    page = httpx.get(portal.url, timeout=30)
    assert page.status_code == 200 and enabled.application_id in page.text

    paused = client.webhooks.update(enabled=False)
    assert paused.enabled is False
    assert paused.application_id == enabled.application_id
    resumed = client.webhooks.update(enabled=True, merchant_id=tenant)
    assert resumed.enabled is True

    assert client.webhooks.disable() is None
    assert client.webhooks.get().enabled is False

    with pytest.raises(errors.Error) as other:
        client.webhooks.update(enabled=True, merchant_id="someone-else")
    assert other.value.status_code == 404
    assert client.webhooks.get().enabled is False, "nothing written"
