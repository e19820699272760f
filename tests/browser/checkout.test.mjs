// The sandbox checkout page in headless Chromium (Debian's), driven by playwright-core, as a
// customer uses it: open the payment URL from the purchase response, click Pay (or Cancel), land
// on the merchant's page, and see the result through the API.
// scripts/test.sh serves the API (cargo lambda watch + the SQS bridge) and sets GRANTS_BASE_URL,
// GRANTS_BROWSER_API_KEY (a tenant whose allowed redirect origins are the merchant site below) and
// MERCHANT_PORT (where that site listens).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { chromium } from "playwright-core";

const base = process.env.GRANTS_BASE_URL;
const key = process.env.GRANTS_BROWSER_API_KEY;
const merchantPort = Number(process.env.MERCHANT_PORT || 0);
const shots = process.env.SCREENSHOT_DIR;
let browser;
let merchant;
let merchantUrl;

async function api(method, path, body) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

async function eventually(what, check) {
  for (let i = 0; i < 120; i++) {
    const value = await check();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function purchase(entitlement, idempotencyKey) {
  const r = await api("POST", `/v1/entitlements/${entitlement}/grants/purchase`, {
    amount: 1000,
    price: "5.00",
    idempotencyKey,
    successUrl: `${merchantUrl}/success`,
    cancelUrl: `${merchantUrl}/cancel`,
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

before(async () => {
  // The merchant's own site, where the checkout sends the customer back.
  merchant = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(req.url.startsWith("/success") ? "<h1>Thanks for your purchase</h1>" : "<h1>Purchase cancelled</h1>");
  });
  await new Promise((r) => merchant.listen(merchantPort, "127.0.0.1", r));
  merchantUrl = `http://127.0.0.1:${merchant.address().port}`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  merchant?.close();
});

async function newEntitlement() {
  const r = await api("POST", "/v1/entitlements", { customerId: `cus_browser_${Date.now()}`, featureKey: "api_calls" });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id;
}

test("Pay: the customer pays on the checkout page and the grant appears", async () => {
  const ent = await newEntitlement();
  const p = await purchase(ent, "browser-pay");
  const page = await browser.newPage();
  const response = await page.goto(p.paymentSessions[0].url);
  // The sandbox says so, loudly, and the page cannot be framed.
  assert.match(await page.textContent("#sandbox-banner"), /SANDBOX/);
  assert.ok(await page.isVisible("#sandbox-banner"));
  assert.equal(response.headers()["x-frame-options"], "DENY");
  assert.match(response.headers()["content-security-policy"], /frame-ancestors 'none'/);
  assert.equal(await page.textContent("#amount"), "5.00 USD");
  assert.equal(await page.textContent("#credits"), "1000 credits");
  if (shots) await page.screenshot({ path: `${shots}/checkout.png` });
  await Promise.all([page.waitForURL(`${merchantUrl}/success`), page.click("#pay")]);
  assert.equal(await page.textContent("h1"), "Thanks for your purchase");

  const grants = await eventually("the purchased grant", async () => {
    const r = await api("GET", `/v1/entitlements/${ent}/grants`);
    return r.body.data.length > 0 && r.body.data;
  });
  assert.equal(grants.length, 1);
  assert.equal(grants[0].amount, 1000);
  const invoice = await api("GET", `/v2/invoices/${p.invoiceId}`);
  assert.equal(invoice.body.status, "PAID");
  assert.equal(invoice.body.grantId, grants[0].id);
  assert.equal(invoice.body.sandbox, true, "paid through the sandbox: no money moved");

  // Back on the payment URL, the page says it is paid and offers no button.
  await page.goto(p.paymentSessions[0].url);
  assert.equal(await page.textContent("#status"), "Paid");
  assert.equal(await page.locator("#pay").count(), 0);
  await page.close();
});

test("Cancel: the customer cancels, the invoice is cancelled and no grant is made", async () => {
  const ent = await newEntitlement();
  const p = await purchase(ent, "browser-cancel");
  const page = await browser.newPage();
  await page.goto(p.paymentSessions[0].url);
  await Promise.all([page.waitForURL(`${merchantUrl}/cancel`), page.click("#cancel")]);
  assert.equal(await page.textContent("h1"), "Purchase cancelled");
  await eventually("the cancelled invoice", async () => {
    const r = await api("GET", `/v2/invoices/${p.invoiceId}`);
    return r.body.status === "CANCELLED";
  });
  const grants = await api("GET", `/v1/entitlements/${ent}/grants`);
  assert.equal(grants.body.data.length, 0);
  await page.goto(p.paymentSessions[0].url);
  assert.equal(await page.textContent("#status"), "This payment has expired");
  await page.close();
});
