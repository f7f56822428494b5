"""The official Python SDK (extend-ai) on a large-payload delivery from the mock.

Usage: signed_url.py DELIVERY_JSON README_SNIPPET. DELIVERY_JSON is a file with the delivery's raw `body`, its `headers`,
the endpoint's `secret` and the run's `batchId`; README_SNIPPET is mock/README.md's
```python signed-url block (both written by tests/signed_url.rs). Prints
`ok ...` per check and `SDK signed URL check passed` at the end.
"""

import json
import sys

from extend_ai import Extend
from extend_ai.wrapper.errors import SignedUrlNotAllowedError, WebhookPayloadFetchError

case = json.load(open(sys.argv[1]))
body, headers, secret = case["body"], case["headers"], case["secret"]
# The webhook helpers make no API call, so no real token is needed.
client = Extend(token="unused")

try:
    client.webhooks.verify_and_parse(body, headers, secret)
    sys.exit("verify_and_parse without allow_signed_url accepted a signed URL payload")
except SignedUrlNotAllowedError:
    print("ok the default refuses a signed URL payload")

event = client.webhooks.verify_and_parse(body, headers, secret, allow_signed_url=True)
assert client.webhooks.is_signed_url_event(event), event
assert event.payload.object == "signed_data_url"
assert event.payload.id.startswith("workflow_run_"), event.payload.id
assert event.payload.metadata["customer"] == "acme", event.payload.metadata
assert event.payload.data.startswith("http://"), event.payload.data
print("ok verify_and_parse(allow_signed_url=True) gives the URL, id and metadata")

full = client.webhooks.fetch_signed_payload_sync(event)
if hasattr(full, "model_dump"):
    full = full.model_dump(by_alias=True, mode="json")
payload = full["payload"]
assert full["eventId"] == event.event_id and full["eventType"] == event.event_type, full
assert payload["id"] == event.payload.id, payload
assert payload["status"] == "PROCESSED", payload["status"]
assert payload["batchId"] == case["batchId"], payload.get("batchId")
assert payload["metadata"]["customer"] == "acme", payload.get("metadata")
print("ok fetch_signed_payload_sync fetched the whole run over http, no https needed")

event.payload.data = event.payload.data.replace("signature=", "signature=0")
try:
    client.webhooks.fetch_signed_payload_sync(event)
    sys.exit("a tampered URL was fetched")
except WebhookPayloadFetchError as e:
    assert "403" in str(e), e
    print("ok a tampered URL fails with WebhookPayloadFetchError (403)")

# mock/README.md's snippet, as written, on the same delivery.
readme = {"API_KEY": "unused", "body": body, "headers": headers, "secret": secret}
exec(open(sys.argv[2]).read(), readme)
shown = readme["event"]
if hasattr(shown, "model_dump"):
    shown = shown.model_dump(by_alias=True, mode="json")
assert shown["payload"]["id"] == payload["id"] and shown["payload"]["status"] == "PROCESSED", shown
print("ok mock/README.md's snippet fetches the same run")

print("SDK signed URL check passed")
