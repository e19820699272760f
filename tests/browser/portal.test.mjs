// The webhook portal in headless Chromium (Debian's), driven by playwright-core, as a merchant's
// person uses it: open the magic link from GET /v0/webhooks/portal, add an endpoint (a receiver on
// this machine) for one event type, see a delivery with its status and response code once a grant
// is created, reveal the secret and check the delivery's signature with it, resend it, edit,
// rotate, delete. Screenshots go to SCREENSHOT_DIR.
// scripts/test.sh serves the API (cargo lambda watch + the bridge, which plays the table's stream
// and the webhook-deliveries queue) and sets GRANTS_BASE_URL and GRANTS_BROWSER_API_KEY.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import http from "node:http";
import { chromium } from "playwright-core";

const base = process.env.GRANTS_BASE_URL;
const key = process.env.GRANTS_BROWSER_API_KEY;
const shots = process.env.SCREENSHOT_DIR;
let browser;
let receiver;
let receiverUrl;
const received = [];

async function api(method, path, body) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

async function eventually(what, check) {
  for (let i = 0; i < 120; i++) {
    const value = await check();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/// Standard Webhooks: v1 signatures are base64 HMAC-SHA256 of "id.timestamp.body" under the
/// secret's base64-decoded bytes.
function signedBy(secret, headers, body) {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = crypto
    .createHmac("sha256", key)
    .update(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${body}`)
    .digest("base64");
  return headers["webhook-signature"].split(" ").some((s) => s === `v1,${expected}`);
}

before(async () => {
  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      received.push({ path: req.url, headers: req.headers, body });
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("thanks");
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  receiverUrl = `http://127.0.0.1:${receiver.address().port}`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  receiver?.close();
});

test("Portal: add an endpoint, see a delivery, reveal, resend, edit, rotate, delete", async () => {
  let enabled = await api("POST", "/v0/webhooks");
  if (enabled.status !== 201) enabled = await api("PATCH", "/v0/webhooks", { enabled: true });
  assert.ok([200, 201].includes(enabled.status), JSON.stringify(enabled.body));
  const link = await api("GET", "/v0/webhooks/portal");
  assert.equal(link.status, 200, JSON.stringify(link.body));
  assert.equal(link.body.object, "webhookPortal");

  const page = await browser.newPage();
  const opened = await page.goto(link.body.url);
  assert.equal(opened.status(), 200);
  assert.equal(opened.headers()["x-frame-options"], "DENY");
  assert.equal(opened.headers()["referrer-policy"], "no-referrer");
  assert.equal(await page.textContent("h1"), "Webhooks");

  // Add an endpoint for grant.created.v0 only.
  await page.fill("#new-url", `${receiverUrl}/hooks`);
  await page.fill("#new-description", "from the browser");
  await page.check("#new-type-grant-created-v0");
  await Promise.all([page.waitForURL(/done=added/), page.click("#add-endpoint")]);
  assert.equal(await page.textContent("#notice"), "Endpoint added.");
  const section = page.locator(`section.endpoint[data-url="${receiverUrl}/hooks"]`);
  assert.equal(await section.count(), 1);
  assert.match(await section.locator(".state").textContent(), /Enabled/);
  assert.ok(await section.locator('input[value="grant.created.v0"]').isChecked());
  assert.ok(!(await section.locator('input[value="invoice.paid.v0"]').isChecked()));
  if (shots) await page.screenshot({ path: `${shots}/portal-added.png`, fullPage: true });

  // A grant is created: the receiver gets grant.created.v0, and the page shows the delivery.
  const ent = await api("POST", "/v1/entitlements", { customerId: `cus_portal_${Date.now()}`, featureKey: "api_calls" });
  assert.equal(ent.status, 201, JSON.stringify(ent.body));
  const grant = await api("POST", `/v1/entitlements/${ent.body.id}/grants`, { amount: 25, idempotencyKey: "portal" });
  assert.equal(grant.status, 201, JSON.stringify(grant.body));
  const first = await eventually("the delivery", async () => received.find((r) => r.path === "/hooks"));
  const event = JSON.parse(first.body);
  assert.equal(event.type, "grant.created.v0");
  assert.equal(event.data.grantId, grant.body.id);
  const row = await eventually("the delivery on the page", async () => {
    await page.reload();
    const r = section.locator("tr.delivery");
    return (await r.count()) > 0 && r.first();
  });
  assert.equal(await row.getAttribute("data-message"), first.headers["webhook-id"]);
  assert.equal(await row.locator(".status").textContent(), "succeeded");
  assert.equal(await row.locator(".code").textContent(), "200");
  if (shots) await page.screenshot({ path: `${shots}/portal-delivery.png`, fullPage: true });

  // Reveal the secret: it signs what the receiver got.
  await section.locator("button.reveal").click();
  const secret = await section.locator(".secret").textContent();
  assert.match(secret, /^whsec_/);
  assert.ok(signedBy(secret, first.headers, first.body), "the delivery verifies with the revealed secret");

  // Resend: the same message again.
  await Promise.all([page.waitForURL(/done=resent/), row.locator("button.resend").click()]);
  assert.equal(await page.textContent("#notice"), "Message queued to be sent again.");
  const again = await eventually("the resent delivery", async () => {
    const hooks = received.filter((r) => r.path === "/hooks");
    return hooks.length >= 2 && hooks[1];
  });
  assert.equal(again.headers["webhook-id"], first.headers["webhook-id"]);

  // Edit: description and every type.
  await section.locator('input[name="description"]').fill("edited in the browser");
  await section.locator('input[value="grant.created.v0"]').uncheck();
  await Promise.all([page.waitForURL(/done=saved/), section.locator("button.save").click()]);
  assert.equal(await page.textContent("#notice"), "Endpoint saved.");
  assert.equal(await section.locator('input[name="description"]').inputValue(), "edited in the browser");

  // Rotate: a different secret.
  await Promise.all([page.waitForURL(/done=rotated/), section.locator("button.rotate").click()]);
  await section.locator("button.reveal").click();
  assert.notEqual(await section.locator(".secret").textContent(), secret);

  // Delete.
  await Promise.all([page.waitForURL(/done=deleted/), section.locator("button.delete").click()]);
  assert.equal(await page.textContent("#notice"), "Endpoint deleted.");
  assert.equal(await page.locator(`section.endpoint[data-url="${receiverUrl}/hooks"]`).count(), 0);
  if (shots) await page.screenshot({ path: `${shots}/portal-deleted.png`, fullPage: true });
  await page.close();
});

test("Portal: a made-up link is a not-found page", async () => {
  const page = await browser.newPage();
  const r = await page.goto(`${base}/webhooks/portal/${"A".repeat(43)}`);
  assert.equal(r.status(), 404);
  assert.match(await page.textContent("#notice"), /not valid/);
  await page.close();
});
