// Flexprice's TypeScript SDK (@flexprice/sdk 2.0.1, pinned in package.json) against the local API:
// create, get, update and delete a credit grant. Run by scripts/test.sh with GRANTS_BASE_URL and
// GRANTS_API_KEY set.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Flexprice } from "@flexprice/sdk";

const base = process.env.GRANTS_BASE_URL;
const key = process.env.GRANTS_API_KEY;

test("create, get, update and delete a credit grant with the TypeScript SDK", async () => {
  const client = new Flexprice({ serverURL: `${base}/v1`, apiKeyAuth: key });
  const tag = Math.random().toString(36).slice(2, 10);
  const created = await client.creditGrants.createCreditGrant({
    name: "Welcome credits",
    scope: "PLAN",
    planId: `plan_${tag}`,
    credits: "42.5",
    cadence: "ONETIME",
    expirationType: "DURATION",
    expirationDuration: 30,
    expirationDurationUnit: "DAY",
    metadata: { source: "ts" },
  });
  assert.ok(created.id);
  assert.equal(created.credits, "42.5");
  assert.equal(created.scope, "PLAN");
  assert.equal(created.planId, `plan_${tag}`);

  const got = await client.creditGrants.getCreditGrant(created.id);
  assert.equal(got.name, "Welcome credits");
  assert.equal(got.expirationDurationUnit, "DAY");

  const updated = await client.creditGrants.updateCreditGrant(created.id, { name: "Renamed", metadata: { source: "ts2" } });
  assert.equal(updated.name, "Renamed");
  assert.deepEqual(updated.metadata, { source: "ts2" });

  const deleted = await client.creditGrants.deleteCreditGrant(created.id, {});
  assert.ok(deleted.message);
  assert.equal((await client.creditGrants.getCreditGrant(created.id)).status, "archived");

  await assert.rejects(client.creditGrants.getCreditGrant("cgrant_missing"), (e) => e.statusCode === 404 || e.httpMeta?.response?.status === 404);
});
