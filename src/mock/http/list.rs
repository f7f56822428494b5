//! List Workflow Runs: the query checked, the page cut by the sort key, and page tokens
//! shaped like the real API's (opaque, with characters a client must URL-encode).

use super::*;

/// Page tokens look like the real API's (§4 of the contract notes: opaque, with `+`, `/`,
/// `=` and `:` in them), so a client that forgets to URL-encode one fails here as it would
/// in production: `+` arrives as a space and the token no longer decodes. The fixed lead
/// bytes encode to `+/+/`, and the payload is padded so the base64 ends in `=`.
const TOKEN_LEAD: [u8; 3] = [0xfb, 0xff, 0xbf];

pub(super) fn encode_token(key: (i64, u64)) -> String {
    let mut raw = TOKEN_LEAD.to_vec();
    raw.extend_from_slice(format!("{}:{}", key.0, key.1).as_bytes());
    // A length of 3k+1 bytes ends the base64 in `==`.
    while raw.len() % 3 != 1 {
        raw.push(b' ');
    }
    format!("v2:{}", STANDARD.encode(raw))
}

pub(super) fn decode_token(token: &str) -> Option<(i64, u64)> {
    let raw = STANDARD.decode(token.strip_prefix("v2:")?).ok()?;
    let text = String::from_utf8(raw.strip_prefix(&TOKEN_LEAD[..])?.to_vec()).ok()?;
    let (at, seq) = text.trim_end().split_once(':')?;
    Some((at.parse().ok()?, seq.parse().ok()?))
}

pub(super) async fn list_runs(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let ctx = match prelude(&s, &headers, Endpoint::List).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut params = match crate::mock::list_params::list(ctx.version, &q) {
        Ok(p) => p,
        Err(e) => return reject(&s, &ctx, e),
    };
    if let (Some(n), false) = (
        s.profile.defects.default_page_size,
        q.contains_key("maxPageSize"),
    ) {
        params.max_page_size = n;
    }
    let after = match &params.next_page_token {
        None => None,
        Some(t) => match decode_token(t) {
            Some(k) => Some(k),
            None => {
                return reject(
                    &s,
                    &ctx,
                    Reject {
                        code: ErrorCode::InvalidRequest,
                        message: "`nextPageToken` is not a token this server issued (send it back exactly as received, URL-encoded: `+` unencoded arrives as a space)".into(),
                    },
                );
            }
        },
    };
    let workflow_id = match &params.workflow_id {
        None => None,
        Some(w) => match s.profile.workflows.iter().position(|x| &x.id == w) {
            Some(i) => Some(i),
            // An unknown workflow simply matches nothing.
            None => Some(usize::MAX),
        },
    };
    let defects = &s.profile.defects;
    let query = ListQuery {
        status: params.status.filter(|_| !defects.status_filter_ignored),
        workflow_id: workflow_id.filter(|_| !defects.workflow_filter_ignored),
        batch_id: params.batch_id.clone(),
        file_name_contains: params.file_name_contains.clone(),
        sort_by_created: params.sort_by_created,
        ascending: params.ascending,
        after,
        page_size: params.max_page_size,
    };
    let visible = batch_id_visible(&s);
    let (runs, token) = {
        let store = s.store.lock().expect("store");
        let (page, more) = store.list(&query);
        let mut token = if more {
            page.last()
                .map(|r| encode_token(Store::sort_key(r, params.sort_by_created)))
        } else {
            None
        };
        // Defect: the cursor points one run back, so each page repeats the previous
        // page's last run.
        if s.profile.defects.repeat_across_pages && more && page.len() >= 2 {
            token = Some(encode_token(Store::sort_key(
                page[page.len() - 2],
                params.sort_by_created,
            )));
        }
        let runs: Vec<Value> = page
            .iter()
            .map(|r| {
                let mut v = wire::run_summary(ctx.version, r, &s.profile, visible);
                stale_status(&s, r, &mut v);
                v
            })
            .collect();
        (runs, token)
    };
    let mut body = if ctx.version.is_legacy() {
        json!({"success": true, "workflowRuns": runs, "nextPageToken": token})
    } else {
        json!({"object": "list", "data": runs, "nextPageToken": token})
    };
    // The 2025-04-21 OpenAPI types the token as an optional string (not nullable): its
    // last page leaves the field out, so a schema checker built on it accepts the page.
    if token.is_none() && ctx.version == crate::api::ApiVersion::V2025_04_21 {
        body.as_object_mut()
            .expect("a JSON object")
            .remove("nextPageToken");
    }
    finish(&s, &ctx, ok_json(&ctx, body))
}
