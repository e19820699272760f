"""Capacity grants (/v2/grants) end to end over raw HTTP: no client library exists for this API, so
this is what a client would send, against `cargo lambda watch`. (Two truly concurrent resells are in
tests/api/capacity.rs: the local watch runs one instance per function.)"""
import os
import subprocess
from datetime import datetime, timedelta, timezone

import httpx
import pytest


def iso(dt):
    return dt.isoformat().replace("+00:00", "Z")


NOW = datetime.now(timezone.utc)


def key(tenant, role):
    out = subprocess.run(
        ["./target/debug/grants-admin", "create-key", "--tenant", tenant, "--role", role],
        check=True, capture_output=True, text=True, env=os.environ,
    )
    return out.stdout.strip()


@pytest.fixture
def http(base_url, unique):
    """An admin and a member of a fresh organization, and an admin of another one."""
    org = f"cap-{unique[:12]}"
    mk = lambda k: httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {k}"}, timeout=30)
    return mk(key(org, "admin")), mk(key(org, "member")), mk(key(f"{org}-x", "admin"))


def grant(**over):
    body = {
        "kind": "gpu", "cluster": "us-east-1a", "quantity": 10,
        "starts_at": iso(NOW - timedelta(days=1)), "ends_at": iso(NOW + timedelta(days=30)),
        "unit_price": "2.50", "early_termination_buyback_price": "1.25", "flexible_usage_buyback_price": "0.750",
    }
    body.update(over)
    return body


def fids(r):
    assert r.status_code == 200, r.text
    return [g["fid"] for g in r.json()["items"]]


def test_every_rule_of_the_document(http):
    admin, member, stranger = http
    r = admin.post("/v2/grants", json=grant())
    assert r.status_code == 201, r.text
    g = r.json()
    assert g["object"] == "grant" and g["quantity"] == 10
    assert (g["unit_price"], g["early_termination_buyback_price"], g["flexible_usage_buyback_price"]) == ("2.50", "1.25", "0.750")
    cpu = admin.post("/v2/grants", json=grant(kind="cpu", cluster="eu-west-1b")).json()["fid"]
    expired = admin.post("/v2/grants", json=grant(starts_at=iso(NOW - timedelta(days=9)), ends_at=iso(NOW - timedelta(days=1)))).json()["fid"]

    # List: current grants by default; filters by cluster and kinds; expired only with show_expired.
    assert fids(admin.get("/v2/grants")) == [g["fid"], cpu]
    assert fids(admin.get("/v2/grants", params={"cluster": "eu-west-1b"})) == [cpu]
    assert fids(admin.get("/v2/grants", params={"kinds": "gpu,tpu"})) == [g["fid"]]
    assert fids(admin.get("/v2/grants", params={"show_expired": "true"})) == [g["fid"], cpu, expired]
    assert fids(member.get("/v2/grants")) == [g["fid"], cpu]

    # Resell: a new grant with the new quantity from now to the old end; the old one deleted at its start.
    r = admin.post(f"/v2/grants/{g['fid']}/resell", json={"new_quantity": 4})
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["quantity"] == 4 and new["ends_at"] == g["ends_at"] and new["resold_from"] == g["fid"]
    assert new["replaced_grant"]["deleted_at"] == new["starts_at"]
    assert new["replaced_grant"]["resold_to"] == new["fid"]
    started = datetime.fromisoformat(new["starts_at"].replace("Z", "+00:00"))
    assert abs((started - datetime.now(timezone.utc)).total_seconds()) < 60
    assert fids(admin.get("/v2/grants")) == [cpu, new["fid"]]
    again = admin.post(f"/v2/grants/{g['fid']}/resell", json={"new_quantity": 2})
    assert again.status_code == 409 and again.json()["code"] == "grant_already_resold"
    for q in [0, 4, 5, -1, "2", 1.5]:
        r = admin.post(f"/v2/grants/{new['fid']}/resell", json={"new_quantity": q})
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "new_quantity", (q, r.text)
    r = admin.post(f"/v2/grants/{expired}/resell", json={"new_quantity": 2})
    assert r.status_code == 409 and r.json()["code"] == "grant_expired"

    # Delete: soft and idempotent; a deleted grant cannot be resold.
    d1 = admin.delete(f"/v2/grants/{cpu}")
    d2 = admin.delete(f"/v2/grants/{cpu}")
    assert d1.status_code == d2.status_code == 200 and d1.json()["deleted_at"] == d2.json()["deleted_at"] is not None
    assert cpu not in fids(admin.get("/v2/grants")) and cpu in fids(admin.get("/v2/grants", params={"show_expired": "true"}))
    r = admin.post(f"/v2/grants/{cpu}/resell", json={"new_quantity": 2})
    assert r.status_code == 409 and r.json()["code"] == "grant_deleted"

    # Roles and organizations.
    assert member.post("/v2/grants", json=grant()).status_code == 403
    assert member.delete(f"/v2/grants/{new['fid']}").status_code == 403
    assert member.post(f"/v2/grants/{new['fid']}/resell", json={"new_quantity": 1}).status_code == 403
    assert stranger.delete(f"/v2/grants/{new['fid']}").status_code == 404
    assert stranger.post(f"/v2/grants/{new['fid']}/resell", json={"new_quantity": 1}).status_code == 404
    assert fids(stranger.get("/v2/grants", params={"show_expired": "true"})) == []
    assert admin.get("/v2/grants").json()["items"][-1]["quantity"] == 4


def test_bad_input_names_the_field_and_writes_nothing(http):
    admin, _, _ = http
    cases = [
        (grant(quantity=0), "quantity"),
        (grant(ends_at=iso(NOW - timedelta(days=2))), "ends_at"),
        (grant(unit_price="-1"), "unit_price"),
        (grant(early_termination_buyback_price="3"), "early_termination_buyback_price"),
        (grant(flexible_usage_buyback_price="2.51"), "flexible_usage_buyback_price"),
        ({k: v for k, v in grant().items() if k != "kind"}, "kind"),
    ]
    for body, field in cases:
        r = admin.post("/v2/grants", json=body)
        assert r.status_code == 400, r.text
        assert field in [e["field"] for e in r.json()["errors"]]
        assert r.headers["x-should-retry"] == "false"
    r = admin.post("/v2/grants", content=b"{oops", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "body"
    assert admin.get("/v2/grants", params={"show_expired": "true"}).json()["items"] == []
    assert admin.delete("/v2/grants/cap_01NOSUCH00000000000000000").status_code == 404
