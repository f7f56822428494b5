"""A sloppy client of the batch API, in plain urllib: the integration `batchproof grade`
exists to catch (tests/grade.rs). It sends a version header and valid bodies, but:

- sends one batch of 1,001 inputs;
- retries every failed request at once, ignoring Retry-After (a few times, then moves on);
- after a 5xx on a batch POST, sends the same inputs again;
- sends page tokens raw in the query string, and stops paging when that fails;
- its webhook receiver answers 200 to everything, verifying nothing.

Each of those breaks exactly one client rule; everything else it does right.
"""

import json
import os
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BASE = os.environ["EXTEND_BASE_URL"]
KEY = os.environ["EXTEND_API_KEY"]
WORKFLOW = os.environ["BATCHPROOF_WORKFLOW_ID"]
received = []


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", "0")))
        received.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def call(method, path, body=None):
    req = urllib.request.Request(BASE + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Authorization", f"Bearer {KEY}")
    req.add_header("x-extend-api-version", "2026-02-09")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def retrying(method, path, body=None):
    for _ in range(3):
        status, answer = call(method, path, body)
        if status < 500 and status != 429:
            return status, answer
    return status, answer


def inputs(tag, n):
    return [{"file": {"url": f"https://files.example.test/{tag}-{i}.pdf", "name": f"{tag}-{i}.pdf"},
             "metadata": {"tag": tag, "i": i}} for i in range(n)]


def main():
    # A listen backlog of 5 (http.server's default) resets connections when a batch's
    # webhooks arrive together: the grade catches that as unanswered deliveries.
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    status, endpoint = call("POST", "/webhook_endpoints", {
        "url": f"http://127.0.0.1:{server.server_address[1]}/hooks", "name": "sloppy",
        "enabledEvents": [], "apiVersion": "2026-02-09"})
    call("POST", "/webhook_subscriptions", {
        "webhookEndpointId": endpoint["id"], "resourceType": "workflow", "resourceId": WORKFLOW,
        "enabledEvents": ["workflow_run.completed", "workflow_run.failed"]})
    status, _ = retrying("POST", "/workflow_runs/batch",
                         {"workflow": {"id": WORKFLOW}, "inputs": inputs("sloppy-big", 1001)})
    print(f"1,001 inputs: {status}", flush=True)
    batches = []
    for tag in ("sloppy-a", "sloppy-b"):
        status, answer = retrying("POST", "/workflow_runs/batch",
                                  {"workflow": {"id": WORKFLOW}, "inputs": inputs(tag, 20)})
        print(f"{tag}: {status}", flush=True)
        if status == 200:
            batches.append(answer["batchId"])
    time.sleep(1.0)
    for b in batches:
        status, page = call("GET", f"/workflow_runs?batchId={b}&maxPageSize=10")
        token = page.get("nextPageToken")
        if token:
            status, _ = call("GET", f"/workflow_runs?batchId={b}&maxPageSize=10&nextPageToken={token}")
            print(f"page 2 of {b}: {status}", flush=True)
    # Until the deliveries stop (none for 2 s), at most 30 s.
    deadline, last, heard = time.time() + 30, time.time(), 0
    while time.time() < deadline and (len(received) < 4 or time.time() - last < 2.0):
        if len(received) != heard:
            heard, last = len(received), time.time()
        time.sleep(0.1)
    print(f"sloppy client: {len(received)} deliveries answered 200", flush=True)
    server.shutdown()


if __name__ == "__main__":
    main()
