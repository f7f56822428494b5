//! The client rules: each judges one behaviour from the observations alone, with a stable
//! id, where its expectation comes from (provenance) and why (basis), and the evidence of
//! each failure (when, which request, what was expected).

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::observed::{Adversity, Observations, RequestSeen, Route};

/// The most evidence items kept per rule; the rest are counted.
const MAX_EVIDENCE: usize = 10;

/// How forgiving the grade is; the sparring profile's `grade:` sets them.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tolerances {
    /// A genuine delivery must be answered 2xx within this many milliseconds.
    pub webhook_ack_ms: u64,
    /// The least wait before retrying after a 5xx or a 429 without Retry-After.
    pub min_backoff_ms: u64,
    /// The most retries of one request after failures before the client gives up.
    pub max_retries: u32,
    /// Reads the plan's rate limit may refuse before polling counts as too fast.
    pub read_refusals: u64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances {
            webhook_ack_ms: 10_000,
            min_backoff_ms: 250,
            max_retries: 6,
            read_refusals: 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    /// Nothing the client did put the rule to the test.
    NotExercised,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::NotExercised => "not_exercised",
        }
    }
}

/// One failure: when, what the client did, what it should have done.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evidence {
    pub at_ms: u64,
    pub request: String,
    pub observed: String,
    pub expected: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleResult {
    pub id: String,
    pub title: String,
    pub provenance: String,
    pub basis: String,
    /// What would put the rule to the test (shown when nothing did).
    #[serde(default)]
    pub exercised_by: String,
    /// What put it to the test in this grading: a passed rule names it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exercised: String,
    /// Why nothing did, when the generic hint (`exercised_by`) would mislead.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unexercised_because: String,
    pub status: Status,
    /// How many observations the rule judged.
    pub checked: u64,
    pub evidence: Vec<Evidence>,
    /// Failures past the evidence kept.
    pub more: u64,
}

/// A rule's identity and why it exists.
struct Rule {
    id: &'static str,
    title: &'static str,
    provenance: &'static str,
    basis: &'static str,
    /// What the client must do for the rule to judge anything: the hint a rule left
    /// unexercised carries.
    exercised_by: &'static str,
}

impl RuleResult {
    /// Why the rule was not exercised, as a sentence.
    pub fn why_not_exercised(&self) -> String {
        if self.unexercised_because.is_empty() {
            format!("it needs {}", self.exercised_by)
        } else {
            self.unexercised_because.clone()
        }
    }
}

/// The client rules as `batchproof checks` lists them: id, title, provenance, basis, and
/// what exercises each.
pub fn catalogue() -> impl Iterator<Item = [&'static str; 5]> {
    RULES
        .iter()
        .map(|r| [r.id, r.title, r.provenance, r.basis, r.exercised_by])
}

/// The catalogue, in the order reports list it.
const RULES: [Rule; 12] = [
    Rule {
        id: "client.version_header",
        title: "Every request names x-extend-api-version",
        provenance: "docs: API versioning; SDK defaults",
        basis: "Without the header a key created after 2025-04-21 is refused, and an older one silently gets the legacy version's shapes.",
        exercised_by: "any request to the API",
    },
    Rule {
        id: "client.valid_requests",
        title: "Request bodies and queries are valid for their version",
        provenance: "docs: the endpoints' request schemas (the mock's validation)",
        basis: "A request the API refuses as invalid is work lost; the mock answers with the API's own error body, quoted as evidence.",
        exercised_by: "any request to the API",
    },
    Rule {
        id: "client.batch_size",
        title: "No batch is empty or above 1,000 inputs",
        provenance: "docs: Batch Run Workflow (1 to 1,000 inputs)",
        basis: "The API refuses the whole batch: a client must split its files into batches of at most 1,000.",
        exercised_by: "a batch POST",
    },
    Rule {
        id: "client.retry_after",
        title: "After a 429 with Retry-After, the retry waits that long",
        provenance: "docs: rate limits (honour Retry-After if present); both SDKs read it",
        basis: "Retrying sooner is refused again and counts against the organisation's limit.",
        exercised_by: "a retry after a 429 with Retry-After (the sparring profile throttles the 1st batch POST and the 3rd read so)",
    },
    Rule {
        id: "client.backoff",
        title: "After a 5xx or a 429 without Retry-After, retries back off (exponential, any jitter)",
        provenance: "docs: rate limits (exponential backoff with jitter); SDK: 1 s × 2^n",
        basis: "Retry-After is sent only 'if present'; without it an immediate or fixed-rate retry is a retry storm. Jitter makes single gaps short at random, so the envelope is judged, not each gap: retries that come at once every time, or at one fixed short interval, fail; full, equal or decorrelated jitter and plain exponential backoff pass.",
        exercised_by: "a retry after a 5xx or a 429 without Retry-After (sparring: the 2nd, 3rd and 5th batch POSTs, the 6th read)",
    },
    Rule {
        id: "client.retry_bound",
        title: "Retries of one request are bounded",
        provenance: "SDK: max_retries (2 by default); docs: rate limits",
        basis: "A client that retries forever turns an outage into load; it must give up and report.",
        exercised_by: "a request the mock refused (429 or 5xx) and the client's retries of it",
    },
    Rule {
        id: "client.no_blind_resubmit",
        title: "A batch that failed ambiguously is not sent again blindly",
        provenance: "reference: POSTs have no idempotency key; both SDKs retry POSTs on 5xx",
        basis: "A 5xx or timeout after the API accepted a batch leaves its runs in place: sending the same inputs again runs (and bills) them twice. Send batches without automatic retries and check first: list runs with fileNameContains (listed runs carry no metadata) before sending again.",
        exercised_by: "a batch POST accepted and then answered 500 (sparring: the 3rd batch POST, retries counted)",
    },
    Rule {
        id: "client.page_token_encoded",
        title: "Page tokens are URL-encoded",
        provenance: "docs: List Workflow Runs (opaque nextPageToken)",
        basis: "Tokens contain `+`, `/` and `=`; sent raw, `+` arrives as a space and the token is refused.",
        exercised_by: "a listing that sends a nextPageToken back",
    },
    Rule {
        id: "client.pages_followed",
        title: "A listing of a batch is followed to its last page",
        provenance: "docs: List Workflow Runs (pagination; default page size 10)",
        basis: "The first page holds at most maxPageSize runs: a client that stops there never sees most of its batch.",
        exercised_by: "a listing of a batch longer than one page (more runs than maxPageSize; the default page is 10)",
    },
    Rule {
        id: "client.polling_rate",
        title: "Polling stays within the plan's rate limit",
        provenance: "docs: rate limits (GET requests per second per plan)",
        basis: "Reads over the limit are refused and slow every other client of the organisation; poll at an interval, or use webhooks.",
        exercised_by: "reads (list or get) of runs",
    },
    Rule {
        id: "client.webhook_ack",
        title: "Genuine deliveries are answered 2xx in time",
        provenance: "docs: webhooks (retries on non-2xx and timeouts)",
        basis: "A receiver that answers late or non-2xx gets the event again and again, and may be disabled.",
        exercised_by: "a webhook endpoint the client registers and subscribes to its workflow's run events",
    },
    Rule {
        id: "client.webhook_verify",
        title: "Forged deliveries are refused (non-2xx)",
        provenance: "docs: webhook signature (HMAC-SHA256 over v0:timestamp:body; reject stale timestamps)",
        basis: "Anyone who learns the receiver's URL can post to it: a receiver that does not verify acts on forged results.",
        exercised_by: "a webhook endpoint the client registers: the forgeries follow its first genuine delivery",
    },
];

/// A rule's findings while it judges.
#[derive(Default)]
struct Finding {
    checked: u64,
    evidence: Vec<Evidence>,
    more: u64,
    /// What exercised the rule, in a few words.
    exercised: String,
    /// Why nothing could, when that is not the generic hint.
    unexercised_because: String,
}

impl Finding {
    fn fail(&mut self, at_ms: u64, request: String, observed: String, expected: String) {
        if self.evidence.len() < MAX_EVIDENCE {
            self.evidence.push(Evidence {
                at_ms,
                request,
                observed,
                expected,
            });
        } else {
            self.more += 1;
        }
    }
}

fn line(r: &RequestSeen) -> String {
    if r.query.is_empty() {
        format!("{} {}", r.method, r.path)
    } else {
        format!("{} {}?{}", r.method, r.path, r.query)
    }
}

fn is_api(r: &RequestSeen) -> bool {
    !matches!(r.route, Route::Admin | Route::Other)
}

fn bad_size(r: &RequestSeen) -> bool {
    r.route == Route::Batch && r.inputs.is_some_and(|n| n == 0 || n > 1000)
}

/// Judges every rule on `obs`.
pub fn judge(obs: &Observations, t: &Tolerances) -> Vec<RuleResult> {
    let issued: HashSet<&str> = obs
        .requests
        .iter()
        .filter_map(|r| r.page.as_ref()?.token_answered.as_deref())
        .collect();
    let findings = [
        version_header(obs),
        valid_requests(obs, &issued),
        batch_size(obs),
        retry_after(obs),
        backoff(obs, t),
        retry_bound(obs, t),
        no_blind_resubmit(obs),
        page_token_encoded(obs, &issued),
        pages_followed(obs),
        polling_rate(obs, t),
        webhook_ack(obs, t),
        webhook_verify(obs, t),
    ];
    RULES
        .iter()
        .zip(findings)
        .map(|(rule, f)| RuleResult {
            id: rule.id.into(),
            title: rule.title.into(),
            provenance: rule.provenance.into(),
            basis: rule.basis.into(),
            exercised_by: rule.exercised_by.into(),
            exercised: match (f.checked, f.exercised.is_empty()) {
                (0, _) => String::new(),
                (n, true) => format!("{n} × {}", rule.exercised_by),
                (_, false) => f.exercised,
            },
            unexercised_because: f.unexercised_because,
            status: if !f.evidence.is_empty() {
                Status::Failed
            } else if f.checked == 0 {
                Status::NotExercised
            } else {
                Status::Passed
            },
            checked: f.checked,
            evidence: f.evidence,
            more: f.more,
        })
        .collect()
}

fn version_header(obs: &Observations) -> Finding {
    let mut f = Finding::default();
    for r in obs.requests.iter().filter(|r| is_api(r)) {
        f.checked += 1;
        if r.version.is_none() {
            f.fail(
                r.at_ms,
                line(r),
                "no x-extend-api-version header".into(),
                "x-extend-api-version: 2026-02-09 (or the version the client is written for)"
                    .into(),
            );
        }
    }
    f
}

/// A refused page token belongs to `client.page_token_encoded`, a batch of the wrong size
/// to `client.batch_size`, a missing version to `client.version_header`: each fault fails
/// one rule.
fn valid_requests(obs: &Observations, issued: &HashSet<&str>) -> Finding {
    let mut f = Finding::default();
    for r in obs.requests.iter().filter(|r| is_api(r)) {
        f.checked += 1;
        let invalid = matches!(r.status, 400 | 413 | 422);
        if !invalid || bad_size(r) || r.version.is_none() || unencoded_token(r, issued).is_some() {
            continue;
        }
        let why = r.refusal.clone().unwrap_or_default();
        f.fail(
            r.at_ms,
            line(r),
            format!("{}: {why}", r.status),
            "a request valid for its version".into(),
        );
    }
    f
}

fn batch_size(obs: &Observations) -> Finding {
    let mut f = Finding::default();
    for r in obs.requests.iter().filter(|r| r.route == Route::Batch) {
        f.checked += 1;
        if bad_size(r) {
            f.fail(
                r.at_ms,
                line(r),
                format!("a batch of {} inputs", r.inputs.unwrap_or(0)),
                "1 to 1,000 inputs per batch".into(),
            );
        }
    }
    f
}

/// The next request with the same key after `i`, if any.
fn retry_of(obs: &Observations, i: usize) -> Option<&RequestSeen> {
    let key = obs.requests[i].key;
    obs.requests[i + 1..].iter().find(|r| r.key == key)
}

fn is_failure(r: &RequestSeen) -> bool {
    r.status == 429 || r.status >= 500
}

fn retry_after(obs: &Observations) -> Finding {
    let mut f = Finding {
        exercised: "retries after a 429 with Retry-After".into(),
        ..Default::default()
    };
    for (i, r) in obs.requests.iter().enumerate() {
        let Some(wait) = r.retry_after_ms.filter(|_| r.status == 429) else {
            continue;
        };
        // Judged only where the client retried: giving up is not waiting.
        let Some(next) = retry_of(obs, i) else {
            continue;
        };
        f.checked += 1;
        let waited = next.at_ms.saturating_sub(r.at_ms);
        // 10 % and 20 ms for clocks and scheduling (counted from the arrival, as
        // before: the answer came at once).
        if waited + 20 < wait * 9 / 10 {
            f.fail(
                next.at_ms,
                line(next),
                format!(
                    "retried {waited} ms after a 429 that asked for {wait} ms (retry-after-ms; Retry-After in whole seconds)"
                ),
                format!("wait at least {wait} ms"),
            );
        }
    }
    f
}

/// One retry: the wait before it (from the failure's answer), the retry, and what failed.
type Retry<'a> = (u64, &'a RequestSeen, &'static str);

/// A retry at once, counted from the answer: no client's jitter draws this close to zero
/// after every failure (full jitter from 250 ms: 4 % per retry).
const AT_ONCE_MS: u64 = 10;

fn backoff(obs: &Observations, t: &Tolerances) -> Finding {
    let mut f = Finding::default();
    // Every retry after a silent 429 or a 5xx, by request key in order: (gap, the retry).
    let mut streaks: Vec<(u64, Vec<Retry>)> = Vec::new();
    for (i, r) in obs.requests.iter().enumerate() {
        let silent = r.status == 429 && r.retry_after_ms.is_none();
        let server = r.status >= 500 && r.adversity != Some(Adversity::AcceptedThenFailed);
        if !(silent || server) {
            continue;
        }
        let Some(next) = retry_of(obs, i) else {
            continue;
        };
        let what = if silent {
            "a 429 without Retry-After"
        } else {
            "a 5xx"
        };
        // The wait from the answer: a large body's own upload is not the client waiting.
        let gap = next.at_ms.saturating_sub(r.answered_ms.max(r.at_ms));
        // A retry that follows a failed retry continues its streak.
        let continues = i > 0
            && streaks.last().is_some_and(|(k, s)| {
                *k == r.key && s.last().is_some_and(|l| std::ptr::eq(l.1, r))
            });
        if continues {
            streaks
                .last_mut()
                .expect("just checked")
                .1
                .push((gap, next, what));
        } else {
            streaks.push((r.key, vec![(gap, next, what)]));
        }
    }
    let retries: Vec<&Retry> = streaks.iter().flat_map(|(_, s)| s).collect();
    f.checked = retries.len() as u64;
    let gaps = |s: &[Retry]| {
        s.iter()
            .map(|(g, ..)| format!("{g} ms"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    f.exercised = format!(
        "{} retries after a 5xx or a 429 without Retry-After ({})",
        retries.len(),
        streaks
            .iter()
            .map(|(_, s)| gaps(s))
            .collect::<Vec<_>>()
            .join("; ")
    );
    // Evidence of an envelope needs more than one retry: a jittered first wait can be
    // short by chance.
    if retries.len() < 2 {
        if retries.len() == 1 {
            f.checked = 0;
            f.unexercised_because = "the client retried once after a 5xx or a 429 without Retry-After, and a single (jittered) wait cannot show a backoff envelope; two or more retries can".into();
        }
        return f;
    }
    // At once, every time.
    if retries.iter().all(|(g, ..)| *g < AT_ONCE_MS) {
        let (_, first, what) = retries[0];
        f.fail(
            first.at_ms,
            line(first),
            format!(
                "retried at once after every failure: {} retries, each within {AT_ONCE_MS} ms (first after {what})",
                retries.len()
            ),
            "wait before retrying, longer after each failure (exponential backoff; full, equal or decorrelated jitter are all fine)".into(),
        );
        return f;
    }
    // One fixed short interval: three or more retries of one request, none waiting the
    // least backoff, all within a quarter of each other — no growth at all.
    for (_, s) in streaks.iter().filter(|(_, s)| s.len() >= 3) {
        let min = s.iter().map(|(g, ..)| *g).min().unwrap_or(0);
        let max = s.iter().map(|(g, ..)| *g).max().unwrap_or(0);
        if max < t.min_backoff_ms && max * 4 <= min * 5 {
            let (_, last, what) = s[s.len() - 1];
            f.fail(
                last.at_ms,
                line(last),
                format!(
                    "retried {} times after {what} at a fixed short interval ({})",
                    s.len(),
                    gaps(s)
                ),
                format!(
                    "gaps that grow (exponential backoff from at least {} ms; jitter allowed)",
                    t.min_backoff_ms
                ),
            );
        }
    }
    f
}

fn retry_bound(obs: &Observations, t: &Tolerances) -> Finding {
    let mut f = Finding {
        exercised: "requests the client retried after a 429 or a 5xx".into(),
        ..Default::default()
    };
    // Consecutive failed attempts per request key, and whether it was reported already.
    let mut streak: HashMap<u64, (u32, bool)> = HashMap::new();
    for r in &obs.requests {
        let entry = streak.entry(r.key).or_insert((0, false));
        if entry.0 > 0 {
            // This request is a retry: the rule has something to judge.
            if entry.0 == 1 {
                f.checked += 1;
            }
            if entry.0 > t.max_retries && !entry.1 {
                entry.1 = true;
                f.fail(
                    r.at_ms,
                    line(r),
                    format!(
                        "attempt {} after {} failures in a row",
                        entry.0 + 1,
                        entry.0
                    ),
                    format!("give up after at most {} retries", t.max_retries),
                );
            }
        }
        if is_failure(r) {
            entry.0 += 1;
        } else {
            *entry = (0, false);
        }
    }
    f
}

fn no_blind_resubmit(obs: &Observations) -> Finding {
    let mut f = Finding::default();
    for (i, r) in obs.requests.iter().enumerate() {
        if r.adversity != Some(Adversity::AcceptedThenFailed) {
            continue;
        }
        f.checked += 1;
        let accepted: HashSet<u64> = r.input_keys.iter().copied().collect();
        for later in obs.requests[i + 1..]
            .iter()
            .filter(|l| l.route == Route::Batch)
        {
            let again = later
                .input_keys
                .iter()
                .filter(|k| accepted.contains(k))
                .count();
            if again > 0 {
                f.fail(
                    later.at_ms,
                    line(later),
                    format!(
                        "sent {again} of the {} inputs again; the batch answered 500 at {} ms had been accepted",
                        accepted.len(),
                        r.at_ms
                    ),
                    "check whether the batch exists (GET /workflow_runs?fileNameContains=…) before sending its inputs again"
                        .into(),
                );
                break;
            }
        }
    }
    f
}

/// The token a list request meant to send, when it was sent unencoded: its raw value
/// is an issued token while the decoded one is not.
fn unencoded_token<'a>(r: &'a RequestSeen, issued: &HashSet<&str>) -> Option<&'a str> {
    let sent = r.page.as_ref()?.token_sent.as_deref()?;
    let raw = r
        .query
        .split('&')
        .find_map(|kv| kv.strip_prefix("nextPageToken="))?;
    (!issued.contains(sent) && raw != sent).then_some(raw)
}

fn page_token_encoded(obs: &Observations, issued: &HashSet<&str>) -> Finding {
    let mut f = Finding::default();
    for r in &obs.requests {
        if r.page
            .as_ref()
            .and_then(|p| p.token_sent.as_ref())
            .is_none()
        {
            continue;
        }
        f.checked += 1;
        if let Some(raw) = unencoded_token(r, issued) {
            f.fail(
                r.at_ms,
                line(r),
                format!(
                    "nextPageToken sent as `{raw}`: it arrives as a token this server never issued"
                ),
                "the token URL-encoded (`+` as %2B, `/` as %2F, `=` as %3D)".into(),
            );
        }
    }
    f
}

fn pages_followed(obs: &Observations) -> Finding {
    let mut f = Finding::default();
    // Per batch listed: (first seen, pages fetched, reached the last page, had a next
    // page). A listing whose first page was its last puts nothing to the test.
    let mut listed: Vec<(String, u64, u64, bool, bool)> = Vec::new();
    for r in obs.requests.iter().filter(|r| r.status == 200) {
        let Some(batch) = r.page.as_ref().and_then(|p| p.batch_id.as_ref()) else {
            continue;
        };
        let last = r.page.as_ref().is_some_and(|p| p.token_answered.is_none());
        match listed.iter_mut().find(|l| &l.0 == batch) {
            Some(l) => {
                l.2 += 1;
                l.3 |= last;
                l.4 |= !last;
            }
            None => listed.push((batch.clone(), r.at_ms, 1, last, !last)),
        }
    }
    for (batch, at, pages, last, _) in listed.into_iter().filter(|l| l.4) {
        f.checked += 1;
        if !last {
            f.fail(
                at,
                format!("GET /workflow_runs?batchId={batch}"),
                format!("{pages} page(s) of the batch's listing fetched, never its last"),
                "follow nextPageToken until an answer has none".into(),
            );
        }
    }
    f
}

fn polling_rate(obs: &Observations, t: &Tolerances) -> Finding {
    let mut f = Finding::default();
    let refused: Vec<&RequestSeen> = obs
        .requests
        .iter()
        .filter(|r| r.route.is_read())
        .inspect(|_| f.checked += 1)
        .filter(|r| r.status == 429 && r.adversity.is_none())
        .collect();
    if refused.len() as u64 > t.read_refusals {
        let limit = obs
            .limits
            .get("get_rps")
            .map_or("the plan's".to_string(), |l| format!("{l}/s"));
        for r in refused {
            f.fail(
                r.at_ms,
                line(r),
                format!("refused 429 by the rate limit ({limit} reads)"),
                format!("reads within {limit} (at most {} refused)", t.read_refusals),
            );
        }
    }
    f
}

fn webhook_ack(obs: &Observations, t: &Tolerances) -> Finding {
    let mut f = Finding {
        exercised: "genuine deliveries to the client's endpoint".into(),
        ..Default::default()
    };
    for d in obs
        .deliveries
        .iter()
        .filter(|d| d.forgery.is_none() && obs.while_client_ran(d))
    {
        f.checked += 1;
        let ok = d.status.is_some_and(|s| (200..300).contains(&s)) && d.millis <= t.webhook_ack_ms;
        if !ok {
            let answer = match (d.status, &d.error) {
                (Some(s), _) => format!("{s} after {} ms", d.millis),
                (None, Some(e)) => format!("no answer ({e}) after {} ms", d.millis),
                (None, None) => "no answer".into(),
            };
            f.fail(
                d.at_ms,
                format!("POST {} ({} {})", d.endpoint_url, d.event_type, d.event_id),
                format!("a genuine delivery answered {answer}"),
                format!("2xx within {} ms", t.webhook_ack_ms),
            );
        }
    }
    f
}

fn webhook_verify(obs: &Observations, t: &Tolerances) -> Finding {
    let mut f = Finding::default();
    let genuine: Vec<_> = obs
        .deliveries
        .iter()
        .filter(|d| d.forgery.is_none() && obs.while_client_ran(d))
        .collect();
    let acknowledged = genuine
        .iter()
        .any(|d| d.status.is_some_and(|s| (200..300).contains(&s)) && d.millis <= t.webhook_ack_ms);
    f.exercised =
        "forged deliveries (bad signature, stale timestamp, unsigned) to the client's endpoint"
            .into();
    if !genuine.is_empty() && !acknowledged {
        f.unexercised_because = format!(
            "no forgery was sent: forgeries follow the first genuine delivery answered 2xx within {} ms, and none of the {} genuine deliveries was (see client.webhook_ack)",
            t.webhook_ack_ms,
            genuine.len()
        );
    }
    for d in obs.deliveries.iter().filter(|d| obs.while_client_ran(d)) {
        let Some(forgery) = d.forgery else { continue };
        f.checked += 1;
        if d.status.is_some_and(|s| (200..300).contains(&s)) {
            f.fail(
                d.at_ms,
                format!("POST {} ({} {})", d.endpoint_url, d.event_type, d.event_id),
                format!(
                    "a forged delivery ({}) answered {}",
                    forgery.as_str(),
                    d.status.unwrap_or(0)
                ),
                "a non-2xx answer (e.g. 401) to a delivery whose signature does not verify".into(),
            );
        }
    }
    f
}
