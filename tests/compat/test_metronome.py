"""metronome-sdk 4.12.0 (pinned in requirements-dev.txt) against the local API, with strict response
validation: every response must parse into the SDK's own models."""
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from metronome import ConflictError, Metronome, NotFoundError, BadRequestError

USD_CENTS = "2714e483-4ff1-48e4-9e25-ac732e8f24f2"


@pytest.fixture
def client(base_url, api_key):
    return Metronome(bearer_token=api_key, base_url=base_url, _strict_response_validation=True, max_retries=0)


def admin_post(base_url, api_key, path, body):
    r = httpx.post(f"{base_url}{path}", headers={"Authorization": f"Bearer {api_key}"}, json=body, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def customer(base_url, api_key, unique):
    """A customer is an entitlement's customerId (provisioning is this service's own call)."""
    customer_id = f"cus_{unique}"
    ent = admin_post(base_url, api_key, "/v1/entitlements", {"customerId": customer_id, "featureKey": "api_calls"})
    return customer_id, ent["id"]


def in_days(n):
    return datetime.now(timezone.utc) + timedelta(days=n)


def create(client, customer_id, amount=100, **extra):
    args = dict(
        customer_id=customer_id,
        expires_at=extra.pop("expires_at", in_days(30)),
        grant_amount={"amount": amount, "credit_type_id": USD_CENTS},
        paid_amount={"amount": 10, "credit_type_id": USD_CENTS},
        name=extra.pop("name", "Initial credit purchase"),
        priority=extra.pop("priority", 0.5),
    )
    args.update(extra)
    return client.v1.credit_grants.create(**args).data.id


def test_create_list_and_see_it_through_the_paygentic_surface(client, customer, base_url, api_key):
    customer_id, ent = customer
    gid = create(
        client, customer_id, reason="Prepayment", uniqueness_key="823j7fqzo1", custom_fields={"x_account_id": "K1"},
        credit_grant_type="enterprise", effective_at=in_days(-1),
    )
    page = client.v1.credit_grants.list(credit_grant_ids=[gid])
    [g] = page.data
    assert g.id == gid and g.customer_id == customer_id and g.name == "Initial credit purchase"
    assert g.grant_amount.amount == 100 and g.grant_amount.credit_type.name == "USD (cents)"
    assert g.paid_amount.amount == 10 and g.priority == 0.5
    assert g.balance.excluding_pending == 100 and g.balance.including_pending == 100
    assert g.deductions == [] and g.pending_deductions == []
    assert g.uniqueness_key == "823j7fqzo1" and g.reason == "Prepayment" and g.credit_grant_type == "enterprise"
    assert g.custom_fields == {"x_account_id": "K1"}
    # The same grant, seen through the Paygentic surface.
    r = httpx.get(f"{base_url}/v1/entitlements/{ent}/grants/{gid}", headers={"Authorization": f"Bearer {api_key}"})
    assert r.status_code == 200 and r.json()["amount"] == 100


def test_usage_shows_as_deductions_with_running_balances(client, customer, base_url, api_key):
    customer_id, ent = customer
    gid = create(client, customer_id, amount=100, effective_at=in_days(-1))
    headers = {"Authorization": f"Bearer {api_key}"}
    for i, amount in enumerate([20, 30]):
        r = httpx.post(f"{base_url}/v1/entitlements/{ent}/usage", headers=headers, json={"eventId": f"u{i}", "amount": amount})
        assert r.status_code == 201, r.text
    r = httpx.post(f"{base_url}/v1/entitlements/{ent}/usage", headers=headers, json={"eventId": "hold", "amount": 5, "pending": True})
    assert r.status_code == 201, r.text
    [g] = client.v1.credit_grants.list(credit_grant_ids=[gid]).data
    # One deduction per grant per UTC day (both events are today's), with the balance after it.
    assert [d.amount for d in g.deductions] == [50]
    assert [d.running_balance for d in g.deductions] == [50]
    assert g.deductions[0].reason.startswith("Usage on ")
    assert all(d.credit_grant_id == gid for d in g.deductions)
    assert [d.amount for d in g.pending_deductions] == [5]
    assert g.balance.excluding_pending == 50 and g.balance.including_pending == 45


def test_list_filters(client, customer, base_url, api_key, unique):
    customer_id, _ = customer
    now = datetime.now(timezone.utc)
    early = create(client, customer_id, effective_at=now - timedelta(days=10), expires_at=now + timedelta(days=5))
    late = create(client, customer_id, effective_at=now - timedelta(days=1), expires_at=now + timedelta(days=60))
    ids = lambda **f: {g.id for g in client.v1.credit_grants.list(**f)}
    assert ids(customer_ids=[customer_id]) == {early, late}
    assert ids(customer_ids=[customer_id], effective_before=now - timedelta(days=5)) == {early}
    # effective_before is exclusive.
    late_effective = client.v1.credit_grants.list(credit_grant_ids=[late]).data[0].effective_at
    assert ids(customer_ids=[customer_id], effective_before=late_effective) == {early}
    assert ids(customer_ids=[customer_id], not_expiring_before=now + timedelta(days=10)) == {late}
    assert ids(credit_grant_ids=[early]) == {early}
    assert ids(customer_ids=[customer_id], credit_type_ids=[USD_CENTS]) == {early, late}

    # A credit type of the tenant's own, with an entitlement in it.
    ct = admin_post(base_url, api_key, "/v1/credit-types", {"name": f"compute-{unique}"})
    admin_post(base_url, api_key, "/v1/entitlements", {"customerId": customer_id, "featureKey": "gpu", "pricingUnitId": ct["id"]})
    gpu = client.v1.credit_grants.create(
        customer_id=customer_id, expires_at=in_days(30), name="GPU hours", priority=1,
        grant_amount={"amount": 8, "credit_type_id": ct["id"]}, paid_amount={"amount": 0, "credit_type_id": USD_CENTS},
    ).data.id
    assert ids(customer_ids=[customer_id], credit_type_ids=[ct["id"]]) == {gpu}
    [g] = client.v1.credit_grants.list(credit_grant_ids=[gpu]).data
    assert g.grant_amount.credit_type.id == ct["id"] and g.grant_amount.credit_type.name == f"compute-{unique}"

    with pytest.raises(BadRequestError):
        client.v1.credit_grants.list(credit_grant_ids=[early], customer_ids=[customer_id])
    with pytest.raises(BadRequestError):
        client.v1.credit_grants.list(limit=101)
    with pytest.raises(BadRequestError):
        client.v1.credit_grants.list(limit=0)


def test_auto_paging_over_250_grants_has_no_gaps_or_duplicates(client, customer):
    customer_id, _ = customer
    created = [create(client, customer_id, amount=1 + i) for i in range(250)]
    seen = [g.id for g in client.v1.credit_grants.list(customer_ids=[customer_id], limit=7)]
    assert len(seen) == 250 and len(set(seen)) == 250
    assert set(seen) == set(created)
    first = client.v1.credit_grants.list(customer_ids=[customer_id], limit=100)
    assert len(first.data) == 100 and first.next_page


def test_uniqueness_key_reuse_is_409_until_released_by_void(client, customer):
    customer_id, _ = customer
    gid = create(client, customer_id, uniqueness_key="only-once")
    with pytest.raises(ConflictError) as e:
        create(client, customer_id, uniqueness_key="only-once", amount=5)
    assert e.value.response.headers.get("x-should-retry") == "false"
    assert client.v1.credit_grants.void(id=gid).data.id == gid
    assert client.v1.credit_grants.list(credit_grant_ids=[gid]).data == []  # voided grants are not listed
    with pytest.raises(ConflictError):
        create(client, customer_id, uniqueness_key="only-once")
    assert client.v1.credit_grants.void(id=gid, release_uniqueness_key=True).data.id == gid
    again = create(client, customer_id, uniqueness_key="only-once")
    assert again != gid


def test_edit_and_void(client, customer):
    customer_id, _ = customer
    gid = create(client, customer_id)
    new_expiry = in_days(90).replace(microsecond=0)
    assert client.v1.credit_grants.edit(id=gid, name="Renamed", expires_at=new_expiry, credit_grant_type="promo").data.id == gid
    [g] = client.v1.credit_grants.list(credit_grant_ids=[gid]).data
    assert g.name == "Renamed" and g.expires_at == new_expiry and g.credit_grant_type == "promo"
    with pytest.raises(BadRequestError):
        client.v1.credit_grants.edit(id=gid, expires_at=datetime(2001, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(NotFoundError):
        client.v1.credit_grants.edit(id="grt_01NOPE0000000000000000000", name="x")
    with pytest.raises(NotFoundError):
        client.v1.credit_grants.void(id="not-a-grant")


def test_list_entries(client, customer, base_url, api_key):
    customer_id, ent = customer
    gid = create(client, customer_id, amount=100, effective_at=in_days(-2))
    headers = {"Authorization": f"Bearer {api_key}"}
    r = httpx.post(f"{base_url}/v1/entitlements/{ent}/usage", headers=headers, json={"eventId": "e1", "amount": 40})
    assert r.status_code == 201, r.text
    pages = list(client.v1.credit_grants.list_entries(customer_ids=[customer_id]))
    [entry] = pages
    assert entry.customer_id == customer_id
    [ledger] = entry.ledgers
    assert ledger.credit_type.id == USD_CENTS
    assert [(e.amount, e.running_balance) for e in ledger.entries] == [(100, 100), (-40, 60)]
    assert ledger.entries[0].credit_grant_id == gid
    assert ledger.ending_balance.excluding_pending == 60
    desc = list(client.v1.credit_grants.list_entries(customer_ids=[customer_id], sort="desc"))[0].ledgers[0]
    assert [e.amount for e in desc.entries] == [-40, 100]
    later = list(client.v1.credit_grants.list_entries(customer_ids=[customer_id], starting_on=in_days(-1)))[0].ledgers[0]
    assert later.starting_balance.excluding_pending == 100
    assert [e.amount for e in later.entries] == [-40]
