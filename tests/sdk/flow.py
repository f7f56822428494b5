"""The official Extend Python SDK (extend-ai, pinned in requirements.txt) against the
batchproof mock: the flow a client developer would write.

Usage: flow.py BASE_URL TOKEN CASES_JSON
  CASES_JSON holds signatures made by batchproof's own signing module:
  [{"body": str, "timestamp": str, "signature": str, "secret": str, "expect": "ok"|"reject"}]

Prints one line per check and exits non-zero on the first failure.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from extend_ai import Extend
from extend_ai.types.webhook_event import (
    WebhookEvent_WorkflowRunCancelled,
    WebhookEvent_WorkflowRunCompleted,
    WebhookEvent_WorkflowRunFailed,
    WebhookEvent_WorkflowRunNeedsReview,
    WebhookEvent_WorkflowRunRejected,
    WebhookEvent_WorkflowRunStepRunProcessed,
)

TYPED = (
    WebhookEvent_WorkflowRunCompleted,
    WebhookEvent_WorkflowRunFailed,
    WebhookEvent_WorkflowRunNeedsReview,
    WebhookEvent_WorkflowRunRejected,
    WebhookEvent_WorkflowRunCancelled,
)
STEP = "workflow_run.step_run.processed"
# A run's terminal events: one, or NEEDS_REVIEW then the review's outcome.
LEGITIMATE = [
    {"workflow_run.needs_review", "workflow_run.rejected"},
    {"workflow_run.needs_review", "workflow_run.completed"},
]
TERMINAL = {"PROCESSED", "FAILED", "NEEDS_REVIEW", "REJECTED", "CANCELLED"}
N = 1000


def check(cond, what):
    if not cond:
        print(f"FAIL {what}", flush=True)
        sys.exit(1)
    print(f"ok   {what}", flush=True)


deliveries = []
lock = threading.Lock()


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        with lock:
            deliveries.append((dict(self.headers.items()), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    base, token, cases_path = sys.argv[1], sys.argv[2], sys.argv[3]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{server.server_address[1]}/hook"

    client = Extend(token=token, base_url=base)

    endpoint = client.webhook_endpoints.create(
        url=hook_url, name="sdk test", enabled_events=[], api_version="2026-02-09"
    )
    secret = endpoint.signing_secret
    check(secret.startswith("wss_"), "webhook_endpoints.create returns a wss_ signing secret")
    client.webhook_subscriptions.create(
        webhook_endpoint_id=endpoint.id,
        resource_type="workflow",
        resource_id="workflow_batchproof_review",
        enabled_events=[
            "workflow_run.completed",
            "workflow_run.failed",
            "workflow_run.needs_review",
            "workflow_run.rejected",
            "workflow_run.cancelled",
            STEP,
        ],
    )

    inputs = [
        {"file": {"url": f"https://files.example.test/sdk/{i}.pdf", "name": f"sdk-{i}.pdf"},
         "metadata": {"i": i, "customer": {"id": f"c{i % 7}", "tags": ["sdk", i]}}}
        for i in range(N)
    ]
    batch = client.workflow_runs.create_batch(workflow={"id": "workflow_batchproof_review"}, inputs=inputs)
    batch_id = batch.batch_id
    check(bool(batch_id) and batch_id.startswith("batch_"), f"create_batch with {N} inputs returns a batchId ({batch_id})")

    deadline = time.time() + 120
    while True:
        runs, token_ = [], None
        while True:
            page = client.workflow_runs.list(batch_id=batch_id, max_page_size=100, next_page_token=token_,
                                             sort_by="createdAt", sort_dir="asc")
            runs.extend(page.data)
            token_ = page.next_page_token
            if not token_:
                break
        statuses = [r.status for r in runs]
        if len(runs) == N and all(s in TERMINAL for s in statuses):
            break
        if time.time() > deadline:
            check(False, f"all runs terminal in time ({len(runs)} listed)")
        time.sleep(0.5)
    check(len({r.id for r in runs}) == N, f"list(batch_id=...) across pages returns {N} distinct runs, all terminal")
    check(all(r.batch_id == batch_id for r in runs), "every listed run carries the batchId")

    seen_meta = set()
    for r in runs:
        full = client.workflow_runs.retrieve(r.id)
        check_run = full.batch_id == batch_id and full.metadata == inputs[full.metadata["i"]]["metadata"]
        if not check_run:
            check(False, f"retrieve({r.id}) has the batchId and the input's metadata exactly")
        seen_meta.add(full.metadata["i"])
        if full.status == "PROCESSED" and not full.step_runs:
            check(False, f"PROCESSED run {r.id} has step runs")
        if full.status == "FAILED" and not full.failure_reason:
            check(False, f"FAILED run {r.id} has a failureReason")
    check(seen_meta == set(range(N)), "retrieve of every run: batchId, exact metadata, outputs / failureReason")

    # Delivery is at-least-once, so wait for N distinct runs, not N deliveries.
    def distinct_runs():
        with lock:
            events = [json.loads(body) for _, body in deliveries]
        return {e["payload"]["id"] for e in events if e["eventType"] != STEP}

    deadline = time.time() + 60
    while time.time() < deadline and len(distinct_runs()) < N:
        time.sleep(0.2)
    with lock:
        got = list(deliveries)
    # Delivery is at-least-once: a receiver de-duplicates on eventId, as the docs advise.
    typed, steps, events_by_run, run_ids_listed = 0, 0, {}, {r.id for r in runs}
    seen_events = set()
    for headers, body in got:
        event = client.webhooks.verify_and_parse(body.decode(), headers, secret)
        if event.event_id in seen_events:
            typed += 1  # a redelivery, already judged
            continue
        seen_events.add(event.event_id)
        if isinstance(event, WebhookEvent_WorkflowRunStepRunProcessed):
            typed += 1
            steps += 1
            if event.payload.workflow_run_id not in run_ids_listed:
                check(False, f"step run event names one of the batch's runs ({event.payload.workflow_run_id})")
        elif isinstance(event, TYPED):
            typed += 1
            events_by_run.setdefault(event.payload.id, set()).add(event.event_type)
            if event.payload.batch_id != batch_id:
                check(False, "typed event payload carries the batchId")
    check(typed == len(got), f"verify_and_parse returns typed WorkflowRun and StepRun events for every delivery ({typed}/{len(got)})")
    odd = {r: e for r, e in events_by_run.items() if len(e) != 1 and e not in LEGITIMATE}
    check(len(events_by_run) == N and not odd,
          f"{N} runs with one terminal event each, or NEEDS_REVIEW then the review's outcome ({len(got)} deliveries; odd: {list(odd.items())[:3]})")
    check(steps > 0, f"workflow_run.step_run.processed parses as a typed StepRun naming its run ({steps} step runs)")

    with open(cases_path) as f:
        cases = json.load(f)
    for c in cases:
        headers = {"x-extend-request-timestamp": c["timestamp"], "x-extend-request-signature": c["signature"]}
        try:
            client.webhooks.verify_and_parse(c["body"], headers, c["secret"])
            outcome = "ok"
        except Exception as e:  # the SDK's WebhookSignatureVerificationError
            outcome = "reject:" + type(e).__name__
        check(outcome.split(":")[0] == c["expect"], f"{c['name']}: SDK says {outcome}, expected {c['expect']}")
    server.shutdown()
    print("SDK flow passed", flush=True)


if __name__ == "__main__":
    main()
