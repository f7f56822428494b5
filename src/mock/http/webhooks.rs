//! Webhook endpoints and workflow subscriptions, as the API registers them.

use super::*;

pub(super) fn string_list(v: Option<&Value>, field: &str) -> Result<Vec<String>, Reject> {
    match v {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|e| {
                e.as_str().map(str::to_string).ok_or_else(|| Reject {
                    code: ErrorCode::InvalidRequest,
                    message: format!("`{field}` must be an array of strings"),
                })
            })
            .collect(),
        Some(_) => Err(Reject {
            code: ErrorCode::InvalidRequest,
            message: format!("`{field}` must be an array of strings"),
        }),
    }
}

pub(super) async fn create_webhook_endpoint(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let ctx = match prelude(&s, &headers, Endpoint::WebhookEndpoints).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body = match read_json(&s, &ctx, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let bad = |m: &str| Reject {
        code: ErrorCode::InvalidRequest,
        message: m.to_string(),
    };
    let url = match body.get("url").and_then(Value::as_str) {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => u.to_string(),
        _ => {
            return reject(
                &s,
                &ctx,
                bad("`url` is required and must be an http(s) URL"),
            );
        }
    };
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("batchproof")
        .to_string();
    let api_version = match body.get("apiVersion").and_then(Value::as_str) {
        Some(v) => match v.parse::<ApiVersion>() {
            Ok(v) => v,
            Err(m) => return reject(&s, &ctx, bad(&format!("`apiVersion`: {m}"))),
        },
        None => return reject(&s, &ctx, bad("`apiVersion` is required")),
    };
    let events = match string_list(body.get("enabledEvents"), "enabledEvents") {
        Ok(e) => e,
        Err(e) => return reject(&s, &ctx, e),
    };
    // An endpoint's own events are global ones; workflow-run events are enabled per
    // workflow by a subscription (docs/contract.md §6).
    if let Some(e) = events.iter().find(|e| e.starts_with("workflow_run.")) {
        return reject(
            &s,
            &ctx,
            bad(&format!(
                "`{e}` cannot be enabled on an endpoint: workflow-run events are enabled per workflow with POST /webhook_subscriptions"
            )),
        );
    }
    let options = match AdvancedOptions::parse(body.get("advancedOptions")) {
        Ok(o) => o,
        Err(m) => return reject(&s, &ctx, bad(&m)),
    };
    let secret = format!("wss_{}", random_id(32));
    let id = format!("wh_{}", random_id(12));
    let now = wire::ts(Utc::now());
    s.hooks.lock().expect("hooks").endpoints.push(HookEndpoint {
        id: id.clone(),
        url: url.clone(),
        name: name.clone(),
        secret: secret.clone(),
        api_version,
        events: events.clone(),
        from_profile: false,
        subscriptions: vec![],
        advanced_options: options.clone(),
    });
    s.has_endpoints.store(true, Ordering::Relaxed);
    // The signing secret is returned here and never again.
    let body = json!({
        "object": "webhook_endpoint", "id": id, "url": url, "name": name,
        "enabledEvents": events, "apiVersion": api_version.as_str(), "status": "enabled",
        "signingSecret": secret, "advancedOptions": options, "createdAt": now, "updatedAt": now,
    });
    finish(&s, &ctx, ok_json(&ctx, body))
}

pub(super) async fn create_webhook_subscription(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let ctx = match prelude(&s, &headers, Endpoint::WebhookEndpoints).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body = match read_json(&s, &ctx, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let bad = |m: String| Reject {
        code: ErrorCode::InvalidRequest,
        message: m,
    };
    let Some(endpoint_id) = body.get("webhookEndpointId").and_then(Value::as_str) else {
        return reject(&s, &ctx, bad("`webhookEndpointId` is required".into()));
    };
    if body.get("resourceType").and_then(Value::as_str) != Some("workflow") {
        return reject(&s, &ctx, bad("`resourceType` must be `workflow`".into()));
    }
    let Some(resource_id) = body.get("resourceId").and_then(Value::as_str) else {
        return reject(&s, &ctx, bad("`resourceId` is required".into()));
    };
    if !s.profile.workflows.iter().any(|w| w.id == resource_id) {
        return reject(
            &s,
            &ctx,
            Reject {
                code: ErrorCode::NotFound,
                message: format!("Workflow `{resource_id}` not found"),
            },
        );
    }
    let events = match string_list(body.get("enabledEvents"), "enabledEvents") {
        Ok(e) => e,
        Err(e) => return reject(&s, &ctx, e),
    };
    if events.is_empty() {
        return reject(
            &s,
            &ctx,
            bad("`enabledEvents` must name at least one workflow-run event".into()),
        );
    }
    let id = format!("whs_{}", random_id(12));
    {
        let mut hooks = s.hooks.lock().expect("hooks");
        let Some(ep) = hooks.endpoints.iter_mut().find(|e| e.id == endpoint_id) else {
            drop(hooks);
            return reject(
                &s,
                &ctx,
                Reject {
                    code: ErrorCode::NotFound,
                    message: format!("Webhook endpoint `{endpoint_id}` not found"),
                },
            );
        };
        // Only the event types of the endpoint's version; no wildcards (none is
        // documented, so a client relying on one would meet a surprise in production).
        let known = crate::api::workflow_run_events(ep.api_version);
        if let Some(e) = events.iter().find(|e| !known.contains(&e.as_str())) {
            let version = ep.api_version;
            drop(hooks);
            return reject(
                &s,
                &ctx,
                bad(format!(
                    "`{e}` is not a workflow-run event of API version {version}; enable one or more of: {}",
                    known.join(", ")
                )),
            );
        }
        ep.subscriptions.push(Subscription {
            id: id.clone(),
            workflow_id: resource_id.to_string(),
            events: events.clone(),
        });
    }
    let now = wire::ts(Utc::now());
    let body = json!({
        "object": "webhook_subscription", "id": id, "webhookEndpointId": endpoint_id,
        "resourceType": "workflow", "resourceId": resource_id, "enabledEvents": events,
        "createdAt": now, "updatedAt": now,
    });
    finish(&s, &ctx, ok_json(&ctx, body))
}

/// `DELETE /webhook_endpoints/{id}`: the endpoint and all its subscriptions go; nothing
/// more is delivered to it, retries included.
pub(super) async fn delete_webhook_endpoint(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let ctx = match prelude(&s, &headers, Endpoint::WebhookEndpoints).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let removed = {
        let mut hooks = s.hooks.lock().expect("hooks");
        let before = hooks.endpoints.len();
        hooks.endpoints.retain(|e| e.id != id);
        // Deliveries stay switched on for the life of the mock once any endpoint existed:
        // clearing the flag would race with a registration in flight.
        before != hooks.endpoints.len()
    };
    if !removed {
        return reject(
            &s,
            &ctx,
            Reject {
                code: ErrorCode::NotFound,
                message: format!("Webhook endpoint `{id}` not found"),
            },
        );
    }
    finish(&s, &ctx, ok_json(&ctx, json!({ "id": id })))
}
