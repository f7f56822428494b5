// The official Extend TypeScript SDK (extend-ai, pinned in package-lock.json) against the
// mock: a webhook endpoint and subscription, createBatch with 200 inputs (one steered to
// fail, one to be rejected in review), list across pages, retrieve every run, and
// verifyAndParse on every real delivery. Prints "ok …" per check and "SDK flow passed" at
// the end; exits 1 at the first failed check.
//
// usage: node flow.mjs BASE_URL TOKEN
import http from "node:http";
import { ExtendClient } from "extend-ai";

const [base, token] = process.argv.slice(2);
const N = 200;
const TERMINAL = new Set(["PROCESSED", "FAILED", "NEEDS_REVIEW", "REJECTED", "CANCELLED"]);
const STEP = "workflow_run.step_run.processed";

function check(cond, what) {
  if (!cond) {
    console.log(`FAIL ${what}`);
    process.exit(1);
  }
  console.log(`ok   ${what}`);
}

const deliveries = [];
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    deliveries.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
    res.writeHead(200).end();
  });
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const hookUrl = `http://127.0.0.1:${server.address().port}/hook`;

const client = new ExtendClient({ token, baseUrl: base });

const endpoint = await client.webhookEndpoints.create({
  url: hookUrl, name: "ts sdk test", enabledEvents: [], apiVersion: "2026-02-09",
});
const secret = endpoint.signingSecret;
check(typeof secret === "string" && secret.startsWith("wss_"), "webhookEndpoints.create returns a wss_ signing secret");
await client.webhookSubscriptions.create({
  webhookEndpointId: endpoint.id,
  resourceType: "workflow",
  resourceId: "workflow_batchproof_review",
  enabledEvents: [
    "workflow_run.completed", "workflow_run.failed", "workflow_run.needs_review",
    "workflow_run.rejected", "workflow_run.cancelled", STEP,
  ],
});

const inputs = Array.from({ length: N }, (_, i) => ({
  file: { url: `https://files.example.test/ts/${i}.pdf`, name: `ts-${i}.pdf` },
  metadata: { i, customer: { id: `c${i % 5}` } },
}));
// The mock-only steering key: this document fails, that one is rejected in review.
inputs[0].metadata["x-batchproof-mock"] = { outcome: "FAILED", failureReason: "FAILED_TO_PROCESS_FILE" };
inputs[1].metadata["x-batchproof-mock"] = { outcome: "NEEDS_REVIEW", review: "reject" };
const batch = await client.workflowRuns.createBatch({ workflow: { id: "workflow_batchproof_review" }, inputs });
const batchId = batch.batchId;
check(typeof batchId === "string" && batchId.startsWith("batch_"), `createBatch with ${N} inputs returns a batchId (${batchId})`);

async function listAll() {
  const runs = [];
  let nextPageToken;
  do {
    const page = await client.workflowRuns.list({ batchId, maxPageSize: 37, nextPageToken, sortBy: "createdAt", sortDir: "asc" });
    runs.push(...page.data);
    nextPageToken = page.nextPageToken ?? undefined;
  } while (nextPageToken);
  return runs;
}

let runs = [];
for (const deadline = Date.now() + 60_000; ; ) {
  runs = await listAll();
  if (runs.length === N && runs.every((r) => TERMINAL.has(r.status))) break;
  if (Date.now() > deadline) check(false, `all runs terminal in time (${runs.length} listed)`);
  await new Promise((r) => setTimeout(r, 200));
}
check(new Set(runs.map((r) => r.id)).size === N, `list({batchId}) across pages (URL-encoded tokens) returns ${N} distinct runs, all terminal`);
check(runs.every((r) => r.batchId === batchId), "every listed run carries the batchId");

const byInput = new Map();
for (const r of runs) {
  const full = await client.workflowRuns.retrieve(r.id);
  byInput.set(full.metadata.i, full);
  if (full.batchId !== batchId || JSON.stringify(full.metadata) !== JSON.stringify(inputs[full.metadata.i].metadata)) {
    check(false, `retrieve(${r.id}) has the batchId and the input's metadata exactly`);
  }
}
check(byInput.size === N, "retrieve of every run: batchId and exact metadata");
check(byInput.get(0).status === "FAILED" && byInput.get(0).failureReason === "FAILED_TO_PROCESS_FILE", "the input steered to fail is FAILED with the reason asked for");

// Wait for the steered review's rejection, then for one event per run.
const parsed = () => deliveries.map((d) => client.webhooks.verifyAndParse(d.body, d.headers, secret));
for (const deadline = Date.now() + 60_000; ; ) {
  const events = parsed();
  const runsSeen = new Set(events.filter((e) => e.eventType !== STEP).map((e) => e.payload.id));
  const rejected = events.some((e) => e.eventType === "workflow_run.rejected" && e.payload.metadata.i === 1);
  if (runsSeen.size === N && rejected) break;
  if (Date.now() > deadline) check(false, `a terminal event for every run in time (${runsSeen.size} runs)`);
  await new Promise((r) => setTimeout(r, 200));
}
const events = parsed();
check(events.length === deliveries.length, `verifyAndParse accepts every delivery (${deliveries.length})`);
const steps = events.filter((e) => e.eventType === STEP);
const runEvents = events.filter((e) => e.eventType !== STEP);
check(runEvents.every((e) => e.payload.batchId === batchId && typeof e.payload.metadata.i === "number"), "run events carry batchId and metadata");
check(steps.length > 0 && steps.every((e) => runs.some((r) => r.id === e.payload.workflowRunId) && e.payload.batchId === undefined), `step-run events name their run and carry no batchId (${steps.length})`);
const review = runEvents.filter((e) => e.payload.metadata.i === 1).map((e) => e.eventType).sort();
check(JSON.stringify(review) === JSON.stringify(["workflow_run.needs_review", "workflow_run.rejected"]), `the steered review: needs_review, then rejected (${review})`);
let tampered = false;
try {
  client.webhooks.verifyAndParse(deliveries[0].body.replace("evt_", "evt_x"), deliveries[0].headers, secret);
} catch {
  tampered = true;
}
check(tampered, "verifyAndParse refuses a tampered delivery");

// The mock may still hold keep-alive connections to this receiver (late step events):
// close them too, and exit once the last line is written rather than when every socket
// of the process has timed out.
server.closeAllConnections();
server.close();
process.stdout.write("SDK flow passed\n", () => process.exit(0));
