"""flexprice 1.0.28 (installed by scripts/bootstrap.sh into .venv/flexprice-1.0.28 and put first on
PYTHONPATH by scripts/test.sh): the credit-grant list, which only this version has."""
import os
import uuid

import flexprice
import httpx
from flexprice.api.credit_grants_api import CreditGrantsApi


def test_this_is_the_old_sdk():
    import importlib.metadata

    assert importlib.metadata.version("flexprice") == "1.0.28"
    assert hasattr(CreditGrantsApi, "creditgrants_get")


def client():
    config = flexprice.Configuration(host=f"{os.environ['GRANTS_BASE_URL']}/v1")
    config.api_key["ApiKeyAuth"] = os.environ["GRANTS_API_KEY"]
    return CreditGrantsApi(flexprice.ApiClient(config))


def create(body):
    r = httpx.post(f"{os.environ['GRANTS_BASE_URL']}/v1/creditgrants", headers={"x-api-key": os.environ["GRANTS_API_KEY"]}, json=body, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_list_with_filters_and_pages():
    tag = uuid.uuid4().hex[:10]
    plan, sub = f"plan_{tag}", f"sub_{tag}"
    a = create({"name": "A", "scope": "PLAN", "plan_id": plan, "credits": "10.5", "cadence": "ONETIME"})
    b = create({"name": "B", "scope": "SUBSCRIPTION", "subscription_id": sub, "credits": "3", "cadence": "RECURRING", "period": "QUARTERLY"})
    api = client()
    by_plan = api.creditgrants_get(plan_ids=[plan])
    assert [g.id for g in by_plan.items] == [a]
    assert by_plan.items[0].credits == 10.5 and by_plan.items[0].scope == "PLAN" and by_plan.pagination.total == 1
    by_sub = api.creditgrants_get(subscription_ids=[sub], scope="SUBSCRIPTION", status="published")
    assert [g.id for g in by_sub.items] == [b] and by_sub.items[0].period == "QUARTERLY"
    # Pages over everything this tenant has, newest first.
    first = api.creditgrants_get(limit=1, offset=0, order="desc", sort="created_at")
    second = api.creditgrants_get(limit=1, offset=1, order="desc", sort="created_at")
    assert first.pagination.total >= 2 and first.items[0].id != second.items[0].id
    assert api.creditgrants_get(plan_ids=[plan], status="archived").pagination.total == 0
