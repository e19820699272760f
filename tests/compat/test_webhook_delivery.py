"""Webhook delivery end to end on the local stack (cargo lambda watch + the bridge, which plays the
table's stream and the webhook-deliveries queue): a purchase paid through the sandbox reaches a local
HTTP receiver as `invoice.paid.v0`, signed so that the Standard Webhooks reference library
(`standardwebhooks`, PyPI) verifies it; a receiver that fails twice gets the same `webhook-id` three
times; the attempts and a resend through the official `svix` SDK; a filtered-out type and a disabled
endpoint get nothing. scripts/test.sh shortens the retry schedule (WEBHOOK_RETRY_SCHEDULE) so that
three attempts take seconds."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from paygentic_sdk import Paygentic
from standardwebhooks.webhooks import Webhook
from svix.api import MessageAttemptListByEndpointOptions, Svix, SvixOptions
from svix.exceptions import HttpError
from svix.models import EndpointIn


class Receiver:
    """A merchant's webhook receiver on loopback: records every request per path; `/flaky`
    answers 500 to its first two requests."""

    def __init__(self):
        self.requests: dict[str, list[tuple[dict, bytes]]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    seen = receiver.requests.setdefault(self.path, [])
                    seen.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    failing = self.path == "/flaky" and len(seen) <= 2
                self.send_response(500 if failing else 200)
                self.send_header("content-type", "text/plain")
                self.end_headers()
                self.wfile.write(b"not yet" if failing else b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def got(self, path: str) -> list[tuple[dict, bytes]]:
        with self.lock:
            return list(self.requests.get(path, []))

    def wait_for(self, path: str, count: int, seconds: float = 60) -> list[tuple[dict, bytes]]:
        deadline = time.time() + seconds
        while time.time() < deadline:
            seen = self.got(path)
            if len(seen) >= count:
                return seen
            time.sleep(0.2)
        raise AssertionError(f"{path}: {len(self.got(path))} requests, expected {count}")


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def svix(base_url, api_key):
    return Svix(api_key, SvixOptions(server_url=base_url))


@pytest.fixture
def app_id(base_url, api_key):
    """Webhooks enabled (again: test_paygentic.py pauses them at its end)."""
    headers = {"Authorization": f"Bearer {api_key}"}
    r = httpx.get(f"{base_url}/v0/webhooks", headers=headers, timeout=30)
    if r.status_code == 404:
        r = httpx.post(f"{base_url}/v0/webhooks", headers=headers, timeout=30)
        assert r.status_code == 201, r.text
    r = httpx.patch(f"{base_url}/v0/webhooks", headers=headers, json={"enabled": True}, timeout=30)
    assert r.status_code == 200 and r.json()["enabled"] is True, r.text
    return r.json()["applicationId"]


def _verify(secret: str, headers: dict, body: bytes) -> dict:
    """What a merchant's receiver does: the reference library checks signature and timestamp."""
    return Webhook(secret).verify(body, headers)


def test_invoice_paid_reaches_the_merchant_signed_retried_and_resendable(
    base_url, api_key, unique, receiver, svix, app_id
):
    paid_only = ["invoice.paid.v0"]
    ok = svix.endpoint.create(app_id, EndpointIn(url=f"{receiver.url}/paid", event_types=paid_only))
    flaky = svix.endpoint.create(app_id, EndpointIn(url=f"{receiver.url}/flaky", event_types=paid_only))
    voids_only = svix.endpoint.create(
        app_id, EndpointIn(url=f"{receiver.url}/voids", event_types=["grant.voided.v0"])
    )
    disabled = svix.endpoint.create(app_id, EndpointIn(url=f"{receiver.url}/disabled", disabled=True))
    try:
        ent = httpx.post(
            f"{base_url}/v1/entitlements",
            headers={"Authorization": f"Bearer {api_key}"},
            json={"customerId": f"cus_hooks_{unique}", "featureKey": "api_calls"},
            timeout=30,
        ).json()["id"]
        client = Paygentic(bearer_auth=api_key, server_url=base_url)
        purchase = client.entitlements.grants.purchase(
            entitlement_id=ent, amount=1000, price="5.00", idempotency_key=f"hooks-{unique}",
            success_url="https://example.com/ok", cancel_url="https://example.com/no",
        )
        paid = httpx.post(purchase.payment_sessions[0].url, data={"action": "pay"}, timeout=60)
        assert paid.status_code == 303, paid.text

        # The merchant's receiver gets invoice.paid.v0 and verifies it with the reference library.
        [(headers, body)] = receiver.wait_for("/paid", 1)
        event = _verify(svix.endpoint.get_secret(app_id, ok.id).key, headers, body)
        [grant] = client.entitlements.grants.list(entitlement_id=ent).data
        assert event["type"] == "invoice.paid.v0"
        assert event["data"]["invoiceId"] == purchase.invoice_id
        assert event["data"]["grantId"] == grant.id and grant.id.startswith("grt_")
        assert event["data"]["entitlementId"] == ent
        assert event["data"]["amount"] == "5.00" and event["data"]["currency"] == "usd"
        assert event["data"]["paidAt"] is not None
        message_id = headers["webhook-id"]
        assert message_id.startswith("msg_")

        # Failed twice, then taken: three attempts, one webhook-id, each signed.
        flaky_secret = svix.endpoint.get_secret(app_id, flaky.id).key
        attempts = receiver.wait_for("/flaky", 3)
        assert [h["webhook-id"] for h, _ in attempts] == [message_id] * 3
        for h, b in attempts:
            assert _verify(flaky_secret, h, b)["data"]["invoiceId"] == purchase.invoice_id

        # The attempts as Svix's SDK lists them, newest first.
        deadline = time.time() + 30
        while True:
            logged = svix.message_attempt.list_by_endpoint(
                app_id, flaky.id, MessageAttemptListByEndpointOptions(limit=10)
            ).data
            if len(logged) >= 3 or time.time() > deadline:
                break
            time.sleep(0.3)
        assert [a.response_status_code for a in logged[:3]] == [200, 500, 500]
        assert [int(a.status) for a in logged[:3]] == [0, 2, 2]
        assert all(a.msg_id == message_id and a.endpoint_id == flaky.id for a in logged)
        assert logged[1].response == "not yet"

        # A disabled endpoint is not resent to (409): it must be enabled first.
        with pytest.raises(HttpError) as refused:
            svix.message_attempt.resend(app_id, message_id, disabled.id)
        assert refused.value.status_code == 409

        # Resend: the same message again, to one endpoint.
        svix.message_attempt.resend(app_id, message_id, ok.id)
        again = receiver.wait_for("/paid", 2)
        assert again[1][0]["webhook-id"] == message_id
        assert json.loads(again[1][1]) == json.loads(body)

        # Neither the filtered-out endpoint (its type never happened) nor the disabled one got
        # anything, though grant.created.v0 was also sent (to no endpoint of ours).
        time.sleep(2)
        assert receiver.got("/voids") == []
        assert receiver.got("/disabled") == []
    finally:
        for e in (ok, flaky, voids_only, disabled):
            svix.endpoint.delete(app_id, e.id)


def test_a_voided_grant_is_delivered_to_the_endpoint_that_takes_it(
    base_url, api_key, unique, receiver, svix, app_id
):
    voids = svix.endpoint.create(
        app_id, EndpointIn(url=f"{receiver.url}/voids", event_types=["grant.voided.v0"])
    )
    try:
        headers = {"Authorization": f"Bearer {api_key}"}
        ent = httpx.post(
            f"{base_url}/v1/entitlements", headers=headers,
            json={"customerId": f"cus_void_{unique}", "featureKey": "api_calls"}, timeout=30,
        ).json()["id"]
        grant = httpx.post(
            f"{base_url}/v1/entitlements/{ent}/grants", headers=headers,
            json={"amount": 50, "idempotencyKey": f"void-{unique}"}, timeout=30,
        ).json()
        r = httpx.delete(f"{base_url}/v1/entitlements/{ent}/grants/{grant['id']}", headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        [(h, body)] = receiver.wait_for("/voids", 1)
        event = _verify(svix.endpoint.get_secret(app_id, voids.id).key, h, body)
        assert event["type"] == "grant.voided.v0"
        assert event["data"]["grantId"] == grant["id"]
        assert event["data"]["remaining"] == "50" and event["data"]["voidedAt"] is not None
    finally:
        svix.endpoint.delete(app_id, voids.id)
