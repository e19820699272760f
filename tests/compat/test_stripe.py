"""Stripe end to end (issue 18): a purchase through paygentic-sdk 0.6.3, the payment page in
headless Chromium with the card typed into Stripe.js's card Element, the local Stripe server
(localstripe) charging it and sending its signed webhook to /v1/webhooks/stripe/<tenant>, the
fulfilment making the grant, and the invoice PAID; a declined card; a refund after part of the
grant was used.

scripts/test.sh starts everything and exports GRANTS_STRIPE_API_KEY (an admin key of a tenant with
Stripe keys, GRANTS_STRIPE_TENANT), GRANTS_STRIPE_WEBHOOK_SECRET (the tenant's Stripe webhook signing
secret), STRIPE_MERCHANT_PORT (an allowed redirect origin of that tenant) and LOCALSTRIPE_URL.
"""
import http.server
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import create_entitlement
from paygentic_sdk import Paygentic

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stripe_tenant():
    return os.environ["GRANTS_STRIPE_TENANT"]


@pytest.fixture(scope="module")
def stripe_key():
    return os.environ["GRANTS_STRIPE_API_KEY"]


@pytest.fixture(scope="module")
def localstripe():
    return os.environ["LOCALSTRIPE_URL"]


@pytest.fixture(scope="module")
def client(base_url, stripe_key):
    return Paygentic(bearer_auth=stripe_key, server_url=base_url)


@pytest.fixture(scope="module")
def webhook_registered(base_url, stripe_tenant, localstripe):
    """The tenant's Stripe webhook endpoint, as a merchant sets it up in Stripe's dashboard."""
    r = httpx.post(
        f"{localstripe}/_config/webhooks/{stripe_tenant}",
        data={"url": f"{base_url}/v1/webhooks/stripe/{stripe_tenant}",
              "secret": os.environ["GRANTS_STRIPE_WEBHOOK_SECRET"]},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return True


@pytest.fixture(scope="module")
def merchant():
    """The merchant's site that the payment page sends the customer back to."""
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<h1>Thanks for your purchase</h1>" if self.path.startswith("/success") else b"<h1>Cancelled</h1>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["STRIPE_MERCHANT_PORT"])), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def entitlement(base_url, stripe_key, unique):
    return create_entitlement(base_url, stripe_key, f"cus_{unique}")


def pay_in_browser(url: str, card: str, shot: str) -> dict:
    out = subprocess.run(
        ["node", str(ROOT / "tests/browser/pay_with_stripe.mjs"), url, card, shot],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def eventually(what: str, check, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def invoice_json(base_url, key, invoice_id):
    r = httpx.get(f"{base_url}/v2/invoices/{invoice_id}", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def balance(base_url, key, ent):
    r = httpx.get(f"{base_url}/v1/entitlements/{ent}", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["balance"]


def shot(name: str) -> str:
    return str(Path(os.environ.get("SCREENSHOT_DIR", "/tmp")) / name)


def test_card_payment_in_the_browser_makes_the_grant_once_and_a_refund_takes_back_only_the_unused(
        client, base_url, stripe_key, localstripe, webhook_registered, merchant, entitlement, unique):
    purchase = client.entitlements.grants.purchase(
        entitlement_id=entitlement, amount=1000, price="10.00", idempotency_key=f"card-{unique}",
        success_url=f"{merchant}/success", cancel_url=f"{merchant}/cancel",
    )
    url = purchase.payment_sessions[0].url
    assert "/pay/ps_pi_" in url, url
    # A retried purchase is the same invoice and the same PaymentIntent.
    again = client.entitlements.grants.purchase(
        entitlement_id=entitlement, amount=1000, price="10.00", idempotency_key=f"card-{unique}",
        success_url=f"{merchant}/success", cancel_url=f"{merchant}/cancel",
    )
    assert again.invoice_id == purchase.invoice_id and again.payment_sessions[0].url == url

    result = pay_in_browser(url, "4242424242424242", shot("stripe-paid.png"))
    assert result.get("landed") == f"{merchant}/success", result
    assert result["amount"] == "10.00 USD"
    assert "script-src 'sha256-" in result["csp"], result["csp"]
    assert result["problems"] == [], result["problems"]

    def paid():
        i = client.invoices_v2.get(id=purchase.invoice_id)
        return i if i.status == "PAID" else None
    invoice = eventually("the invoice PAID", paid)
    grants = client.entitlements.grants.list(entitlement_id=entitlement).data
    assert len(grants) == 1 and grants[0].amount == 1000
    body = invoice_json(base_url, stripe_key, purchase.invoice_id)
    assert body["grantId"] == grants[0].id and body["sandbox"] is False

    # 300 of the 1,000 credits are used, then half the money ($5.00) is refunded at Stripe: half the
    # credits (500) are asked back and 700 are unused, so 500 are taken back.
    r = httpx.post(f"{base_url}/v1/entitlements/{entitlement}/usage",
                   headers={"Authorization": f"Bearer {stripe_key}"},
                   json={"eventId": f"use-{unique}", "amount": 300}, timeout=30)
    assert r.status_code == 201, r.text
    payment_intent = url.rsplit("/", 1)[1].removeprefix("ps_")

    def refund_at_stripe(cents: int, total_refunded: str) -> dict:
        """Refunds at the local Stripe server; waits for its charge.refunded on the invoice."""
        r = httpx.post(f"{localstripe}/v1/refunds", auth=("sk_test_refunds", ""),
                       data={"payment_intent": payment_intent, "amount": cents}, timeout=30)
        assert r.status_code == 200, r.text
        return eventually(
            f"a refund total of {total_refunded} recorded on the invoice",
            lambda: (lambda b: b if b["metadata"]["refundedAmount"] == total_refunded else None)(
                invoice_json(base_url, stripe_key, purchase.invoice_id)),
        )

    assert refund_at_stripe(500, "5.00")["metadata"]["creditsReclaimed"] == 500
    assert balance(base_url, stripe_key, entitlement) == 200
    # The rest of the money back: 500 more asked, 200 unused: 200 taken, never more.
    assert refund_at_stripe(500, "10.00")["metadata"]["creditsReclaimed"] == 700
    assert balance(base_url, stripe_key, entitlement) == 0
    assert len(client.entitlements.grants.list(entitlement_id=entitlement).data) == 1


def test_a_declined_card_leaves_the_invoice_open_with_the_failure_then_another_card_pays(
        client, base_url, stripe_key, webhook_registered, merchant, entitlement, unique):
    purchase = client.entitlements.grants.purchase(
        entitlement_id=entitlement, amount=100, price="1.00", idempotency_key=f"declined-{unique}",
        success_url=f"{merchant}/success",
    )
    url = purchase.payment_sessions[0].url
    # Stripe's test card that attaches but is declined when charged.
    result = pay_in_browser(url, "4000000000000341", shot("stripe-declined.png"))
    assert "declined" in result.get("error", "").lower(), result
    failed = eventually(
        "the failure recorded",
        lambda: (lambda b: b if b.get("failureReason") else None)(
            invoice_json(base_url, stripe_key, purchase.invoice_id)),
    )
    assert failed["status"] == "ISSUED" and failed["failureReason"] == "card_declined"
    assert client.entitlements.grants.list(entitlement_id=entitlement).data == []
    # The same page, another card.
    result = pay_in_browser(url, "4242424242424242", shot("stripe-retry.png"))
    assert result.get("landed") == f"{merchant}/success", result
    eventually("the invoice PAID", lambda: client.invoices_v2.get(id=purchase.invoice_id).status == "PAID")
    assert len(client.entitlements.grants.list(entitlement_id=entitlement).data) == 1
