// A customer paying on the Stripe payment page in headless Chromium (Debian's, driven by
// playwright-core): open the payment URL, type the card into the Stripe.js card Element (the local
// Stripe server's Stripe.js locally), click Pay, and report where the browser landed or the error
// the page showed, as one JSON line. Run by tests/compat/test_stripe.py after a paygentic-sdk
// purchase: node tests/browser/pay_with_stripe.mjs URL CARD_NUMBER [SCREENSHOT.png]
import { chromium } from "playwright-core";

const [url, card, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
  const response = await page.goto(url);
  const field = (name) => `#card-element input[placeholder="${name}"]`;
  await page.waitForSelector(field("number"), { timeout: 30000 });
  await page.fill(field("number"), card);
  await page.fill(field("exp_month"), "12");
  await page.fill(field("exp_year"), "34");
  await page.fill(field("cvc"), "123");
  await page.fill(field("postal_code"), "75001");
  const amount = await page.textContent("#amount");
  await page.click("#pay");
  const outcome = await Promise.race([
    page.waitForURL((u) => !u.toString().startsWith(url), { timeout: 60000 }).then(() => ({ landed: page.url() })),
    page
      .waitForFunction(() => (document.getElementById("error")?.textContent || "").length > 0, null, { timeout: 60000 })
      .then(async () => ({ error: await page.textContent("#error") })),
    // Without a successUrl the page says so itself.
    page
      .waitForFunction(() => document.getElementById("status")?.textContent === "Paid", null, { timeout: 60000 })
      .then(() => ({ paidInPlace: true })),
  ]);
  if (shot) await page.screenshot({ path: shot });
  const csp = response.headers()["content-security-policy"] || "";
  console.log(JSON.stringify({ ...outcome, amount, csp, problems }));
} finally {
  await browser.close();
}
