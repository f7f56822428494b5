//! Every client rule proven both ways on observations written here: it passes on a client
//! that keeps it and fails, with its own id and evidence, on one that breaks exactly it.

use super::Grade;
use super::observed::{
    Adversity, DeliverySeen, Forgery, Observations, PageSeen, RequestSeen, Route,
};
use super::rules::{Status, Tolerances, judge};

fn req(at_ms: u64, route: Route, key: u64, status: u16) -> RequestSeen {
    RequestSeen {
        at_ms,
        answered_ms: at_ms,
        method: if route == Route::Batch { "POST" } else { "GET" }.into(),
        path: "/workflow_runs".into(),
        query: String::new(),
        route,
        version: Some("2026-02-09".into()),
        status,
        retry_after_ms: None,
        adversity: None,
        refusal: None,
        key,
        inputs: (route == Route::Batch).then_some(10),
        input_keys: if route == Route::Batch {
            (key * 100..key * 100 + 10).collect()
        } else {
            vec![]
        },
        page: None,
    }
}

fn delivery(
    at_ms: u64,
    forgery: Option<Forgery>,
    status: Option<u16>,
    millis: u64,
) -> DeliverySeen {
    DeliverySeen {
        at_ms,
        endpoint_url: "http://127.0.0.1:9/hooks".into(),
        event_id: "evt_1".into(),
        event_type: "workflow_run.completed".into(),
        forgery,
        status,
        error: status.is_none().then(|| "connection refused".into()),
        millis,
    }
}

/// The rules `obs` fails.
fn failed(obs: &Observations) -> Vec<String> {
    judge(obs, &Tolerances::default())
        .into_iter()
        .filter(|r| r.status == Status::Failed)
        .inspect(|r| assert!(!r.evidence.is_empty(), "{} failed without evidence", r.id))
        .map(|r| r.id)
        .collect()
}

fn obs(requests: Vec<RequestSeen>, deliveries: Vec<DeliverySeen>) -> Observations {
    Observations {
        requests,
        deliveries,
        ..Default::default()
    }
}

#[test]
fn version_header_and_valid_requests() {
    let good = obs(vec![req(0, Route::Get, 1, 200)], vec![]);
    assert!(failed(&good).is_empty());
    let mut no_version = req(0, Route::Get, 1, 400);
    no_version.version = None;
    assert_eq!(
        failed(&obs(vec![no_version], vec![])),
        ["client.version_header"]
    );
    let mut invalid = req(0, Route::Get, 1, 400);
    invalid.refusal = Some("INVALID_REQUEST `maxPageSize` must be 1 to 1000".into());
    assert_eq!(
        failed(&obs(vec![invalid], vec![])),
        ["client.valid_requests"]
    );
}

#[test]
fn batch_size() {
    let mut big = req(0, Route::Batch, 1, 400);
    big.inputs = Some(1001);
    assert_eq!(failed(&obs(vec![big], vec![])), ["client.batch_size"]);
    let mut empty = req(0, Route::Batch, 1, 400);
    empty.inputs = Some(0);
    assert_eq!(failed(&obs(vec![empty], vec![])), ["client.batch_size"]);
}

fn throttled(at: u64, wait: Option<u64>) -> RequestSeen {
    let mut r = req(at, Route::Batch, 1, 429);
    r.retry_after_ms = wait;
    r
}

#[test]
fn retry_after_and_backoff() {
    let honoured = vec![throttled(0, Some(1200)), req(1250, Route::Batch, 1, 200)];
    assert!(failed(&obs(honoured, vec![])).is_empty());
    let early = vec![throttled(0, Some(1200)), req(300, Route::Batch, 1, 200)];
    assert_eq!(failed(&obs(early, vec![])), ["client.retry_after"]);
    let backed_off = vec![
        throttled(0, None),
        throttled(500, None),
        req(1600, Route::Batch, 1, 200),
    ];
    assert!(failed(&obs(backed_off, vec![])).is_empty());
    // At once after every failure (here: two requests, each retried at once).
    let at_once = vec![
        throttled(0, None),
        req(5, Route::Batch, 1, 200),
        req(100, Route::Get, 2, 503),
        req(103, Route::Get, 2, 200),
    ];
    assert_eq!(failed(&obs(at_once, vec![])), ["client.backoff"]);
    // A fixed short interval: four 500s in a row, retried every 100 ms.
    let fixed: Vec<RequestSeen> = (0..4)
        .map(|i| req(i * 100, Route::Get, 3, 500))
        .chain([req(400, Route::Get, 3, 200)])
        .collect();
    assert_eq!(failed(&obs(fixed, vec![])), ["client.backoff"]);
}

/// A client's retries after four 500s in a row, spaced by `gaps`.
fn after_four_500s(gaps: &[u64]) -> Vec<RequestSeen> {
    let mut out = Vec::new();
    let mut at = 0;
    for (i, g) in gaps.iter().enumerate() {
        out.push(req(at, Route::Get, 9, if i < 4 { 500 } else { 200 }));
        at += g;
    }
    out.push(req(at, Route::Get, 9, 200));
    out
}

#[test]
fn every_correct_backoff_passes_whatever_its_jitter_draws() {
    use rand::{Rng, SeedableRng};
    let base = 250.0f64;
    let cap = 8_000.0f64;
    let t = Tolerances::default();
    // Many draws of each strategy: a correct client never fails, however short a single
    // jittered wait happens to be.
    for seed in 0..2_000u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let envelope = |a: usize| (base * 2f64.powi(a as i32)).min(cap);
        let full: Vec<u64> = (0..4)
            .map(|a| rng.random_range(0.0..envelope(a)) as u64)
            .collect();
        let equal: Vec<u64> = (0..4)
            .map(|a| (envelope(a) / 2.0 + rng.random_range(0.0..envelope(a) / 2.0)) as u64)
            .collect();
        let mut prev = base;
        let decorrelated: Vec<u64> = (0..4)
            .map(|_| {
                prev = rng.random_range(base..prev * 3.0).min(cap);
                prev as u64
            })
            .collect();
        let plain: Vec<u64> = (0..4).map(|a| envelope(a) as u64).collect();
        for (name, gaps) in [
            ("full jitter", full),
            ("equal jitter", equal),
            ("decorrelated jitter", decorrelated),
            ("plain exponential", plain),
        ] {
            // Four 500s in a row, and the sparring profile's single failures: a silent 429
            // and a 500 on other requests, each retried after the strategy's first wait.
            let mut requests = after_four_500s(&gaps);
            let first = rng.random_range(0.0..base) as u64;
            let second = rng.random_range(0.0..base) as u64;
            requests.push(req(20_000, Route::Batch, 1, 429));
            requests.push(req(20_000 + first, Route::Batch, 1, 200));
            requests.push(req(30_000, Route::Get, 2, 500));
            requests.push(req(30_000 + second, Route::Get, 2, 200));
            requests.sort_by_key(|r| r.at_ms);
            let f = failed(&obs(requests, vec![]));
            assert!(
                f.is_empty(),
                "{name} (seed {seed}, gaps {gaps:?}, {first}, {second}): {f:?}"
            );
        }
    }
    let _ = t;
}

#[test]
fn a_rule_passes_only_when_something_exercised_it() {
    // A client that gives up at its first 429 (no retry): no retry rule was exercised.
    let gave_up = vec![throttled(0, Some(1200)), req(0, Route::Get, 5, 429)];
    let rules = judge(&obs(gave_up, vec![]), &Tolerances::default());
    for id in ["client.retry_after", "client.backoff", "client.retry_bound"] {
        let r = rules.iter().find(|r| r.id == id).unwrap();
        assert_eq!(r.status, Status::NotExercised, "{id}: {r:?}");
    }
    // One that retried: each passed rule names what exercised it.
    let retried = vec![
        throttled(0, Some(1200)),
        req(1300, Route::Batch, 1, 200),
        req(2000, Route::Get, 2, 500),
        req(2400, Route::Get, 2, 500),
        req(3300, Route::Get, 2, 200),
    ];
    let rules = judge(&obs(retried, vec![]), &Tolerances::default());
    for id in ["client.retry_after", "client.backoff", "client.retry_bound"] {
        let r = rules.iter().find(|r| r.id == id).unwrap();
        assert_eq!(r.status, Status::Passed, "{id}: {r:?}");
        assert!(!r.exercised.is_empty(), "{id} names what exercised it");
    }
}

#[test]
fn retry_bound() {
    let t = Tolerances::default();
    // Failures with growing gaps, one more than the bound allows.
    let mut storm = Vec::new();
    let mut at = 0;
    for i in 0..=t.max_retries + 1 {
        storm.push(req(at, Route::Get, 7, 503));
        at += 300 << i;
    }
    assert_eq!(failed(&obs(storm.clone(), vec![])), ["client.retry_bound"]);
    storm.truncate(t.max_retries as usize);
    assert!(failed(&obs(storm, vec![])).is_empty());
}

#[test]
fn no_blind_resubmit() {
    let mut ambiguous = req(0, Route::Batch, 1, 500);
    ambiguous.adversity = Some(Adversity::AcceptedThenFailed);
    let list = req(100, Route::List, 9, 200);
    let other = req(200, Route::Batch, 2, 200);
    assert!(failed(&obs(vec![ambiguous.clone(), list, other], vec![])).is_empty());
    let again = req(1000, Route::Batch, 1, 200);
    assert_eq!(
        failed(&obs(vec![ambiguous, again], vec![])),
        ["client.no_blind_resubmit"]
    );
}

fn page(at: u64, key: u64, query: &str, sent: Option<&str>, answered: Option<&str>) -> RequestSeen {
    let mut r = req(at, Route::List, key, 200);
    r.query = query.into();
    r.page = Some(PageSeen {
        batch_id: Some("batch_1".into()),
        token_sent: sent.map(str::to_string),
        token_answered: answered.map(str::to_string),
    });
    r
}

#[test]
fn page_tokens_and_pages_followed() {
    let token = "v2:+/+/MTo=";
    let followed = vec![
        page(0, 1, "batchId=batch_1", None, Some(token)),
        page(
            10,
            2,
            "batchId=batch_1&nextPageToken=v2%3A%2B%2F%2B%2FMTo%3D",
            Some(token),
            None,
        ),
    ];
    assert!(failed(&obs(followed, vec![])).is_empty());
    let mut raw = page(
        10,
        2,
        "batchId=batch_1&nextPageToken=v2:+/+/MTo=",
        Some("v2: / /MTo="),
        None,
    );
    raw.status = 400;
    let stopped = vec![page(0, 1, "batchId=batch_1", None, Some(token)), raw];
    assert_eq!(
        failed(&obs(stopped, vec![])),
        ["client.page_token_encoded", "client.pages_followed"]
    );
    // A listing whose first page was its last puts pages_followed to no test: it is not
    // exercised (and says what would exercise it), never passed.
    let one_page = obs(vec![page(0, 1, "batchId=batch_1", None, None)], vec![]);
    let g = Grade::judge(&one_page, &Tolerances::default(), None);
    let rule = g
        .rules
        .iter()
        .find(|r| r.id == "client.pages_followed")
        .unwrap();
    assert_eq!(rule.status, Status::NotExercised);
    assert!(rule.exercised_by.contains("longer than one page"));
    assert!(
        crate::grade::report::markdown(&g).contains(
            "- `client.pages_followed`: it needs a listing of a batch longer than one page"
        )
    );
}

#[test]
fn polling_rate() {
    let t = Tolerances::default();
    let refused: Vec<RequestSeen> = (0..=t.read_refusals)
        .map(|i| req(i * 10, Route::Get, 100 + i, 429))
        .collect();
    // Each refusal was retried after its Retry-After: only the rate is at fault.
    let mut reqs = Vec::new();
    for mut r in refused {
        r.retry_after_ms = Some(100);
        reqs.push(r);
    }
    assert_eq!(failed(&obs(reqs.clone(), vec![])), ["client.polling_rate"]);
    reqs.truncate(t.read_refusals as usize);
    assert!(failed(&obs(reqs, vec![])).is_empty());
}

#[test]
fn webhook_ack_and_verify() {
    let good = vec![
        delivery(0, None, Some(200), 5),
        delivery(10, Some(Forgery::BadSignature), Some(401), 2),
        delivery(10, Some(Forgery::Unsigned), Some(400), 2),
    ];
    assert!(failed(&obs(vec![], good)).is_empty());
    let slow = vec![delivery(0, None, Some(200), 20_000)];
    assert_eq!(failed(&obs(vec![], slow)), ["client.webhook_ack"]);
    let refused = vec![delivery(0, None, Some(500), 5)];
    assert_eq!(failed(&obs(vec![], refused)), ["client.webhook_ack"]);
    let trusting = vec![delivery(0, Some(Forgery::StaleTimestamp), Some(204), 2)];
    assert_eq!(failed(&obs(vec![], trusting)), ["client.webhook_verify"]);
    // Deliveries that came but were never acknowledged in time: no forgery was sent, and
    // the reason says so (not "it needs an endpoint").
    let late = vec![delivery(0, None, Some(200), 20_000)];
    let rules = judge(&obs(vec![], late), &Tolerances::default());
    let verify = rules
        .iter()
        .find(|r| r.id == "client.webhook_verify")
        .unwrap();
    assert_eq!(verify.status, Status::NotExercised);
    assert!(
        verify
            .why_not_exercised()
            .contains("none of the 1 genuine deliveries"),
        "{}",
        verify.why_not_exercised()
    );
}

#[test]
fn a_receiver_gone_in_the_clients_last_second_is_not_held_against_it() {
    let mut o = obs(vec![], vec![delivery(9_500, None, None, 0)]);
    o.client_ended_ms = Some(10_000);
    assert!(failed(&o).is_empty());
    o.client_ended_ms = Some(12_000);
    assert_eq!(failed(&o), ["client.webhook_ack"]);
}
