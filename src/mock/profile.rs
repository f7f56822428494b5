//! Mock profiles: everything that makes one mock behave differently from another —
//! workflows, tokens, processing times and outcomes, plan rate limits, time scale,
//! webhook endpoints and retries, faults, and deliberate contract defects.
//!
//! Every field has a default, so a profile names only what it changes; unknown keys are
//! rejected with file:line:column.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use super::defects::{Defects, MetadataDefect};
pub use super::refusal::ValidationStatus;
use crate::api::ApiVersion;
use crate::config::{ConfigError, Dur, DurationDist};

/// The token that `mock/default.yaml` accepts, documented for local use.
pub const DEFAULT_TOKEN: &str = "sk_batchproof_local";
/// The workflow every built-in profile knows. It has no review step: its runs never need
/// review.
pub const DEFAULT_WORKFLOW: &str = "workflow_batchproof_demo";
/// The built-in profiles' workflow with a human review step.
pub const REVIEW_WORKFLOW: &str = "workflow_batchproof_review";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Profile {
    /// Another profile (relative to this file) whose settings this one starts from: maps
    /// merge key by key, anything else (a number, a list) is replaced. Used by `load`.
    #[serde(skip_serializing)]
    pub extends: Option<String>,
    /// Processing times, rate windows and retry delays are divided by this factor so hours
    /// of batch work can be rehearsed in seconds. Wire timestamps stay real.
    pub time_scale: f64,
    /// Seeds outcomes and durations: the same seed replays the same outcome per run.
    pub seed: u64,
    /// What a request without `x-extend-api-version` gets.
    pub missing_version: MissingVersion,
    pub auth: Auth,
    pub workflows: Vec<Workflow>,
    pub processing: Processing,
    pub limits: Limits,
    pub webhooks: Webhooks,
    pub retention: Retention,
    /// Show `priority` on run objects (a documented mock extension; the real run object
    /// has no such field, so it is off by default and the admin surface shows it).
    pub expose_priority: bool,
    /// Largest request body accepted; larger ones get 413 with the API's error body.
    pub max_body_bytes: usize,
    /// The HTTP status of each validation failure the documentation leaves open.
    pub validation_status: ValidationStatus,
    pub faults: Faults,
    pub defects: Defects,
    /// Adversities put in a client's way on purpose, and the recording `grade` judges.
    pub sparring: super::sparring::Sparring,
    /// Set on a profile `batchproof calibrate` wrote from an account's history: answers on
    /// it (credits, shares, paces) are labelled as the account's, as of that date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
}

/// Where a calibrated profile's figures come from.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Calibration {
    /// The account read (its target URL and workflow).
    pub account: String,
    /// When the history was read (RFC 3339 date).
    pub as_of: String,
    /// The history's span: the first and last run's creation.
    pub from: String,
    pub to: String,
    /// Runs read, and the List requests that read them.
    pub runs: u64,
    pub requests: u64,
    pub api_version: String,
}

/// The settings of the profile at `path` as a tree, its `extends:` chain merged in (at
/// most 8 deep, which also ends a cycle). Each file is first read as a profile of its
/// own, so a mistake in it is reported at its file, line and column.
fn settings(path: &Path, depth: usize) -> Result<serde_json::Value, ConfigError> {
    let name = path.display().to_string();
    if depth > 8 {
        return Err(
            ConfigError::new(&name, "`extends:` goes more than 8 profiles deep")
                .with_fix("a profile extends another, which may extend another; check for a cycle"),
        );
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(&name, format!("cannot read file: {e}")))?;
    let own: Profile = crate::config::parse_yaml(&name, &text)?;
    let mut tree: serde_json::Value = crate::config::parse_yaml(&name, &text)?;
    if let Some(obj) = tree.as_object_mut() {
        obj.remove("extends");
    }
    let Some(base) = own.extends else {
        return Ok(tree);
    };
    let base_path = path.parent().unwrap_or(Path::new(".")).join(&base);
    if !base_path.is_file() {
        return Err(ConfigError::new(&name, format!("extends `{base}`: no such profile"))
            .with_fix("`extends:` takes a profile's path relative to this file, e.g. `extends: ../conformance.yaml`"));
    }
    let mut merged = settings(&base_path, depth + 1)?;
    merge(&mut merged, tree);
    Ok(merged)
}

/// Lays `over` on `base`: maps merge key by key, anything else replaces, and so does a
/// duration distribution (a map with `dist`), whose keys belong to its kind.
fn merge(base: &mut serde_json::Value, over: serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) if !o.contains_key("dist") => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            extends: None,
            time_scale: 1.0,
            seed: 0,
            missing_version: MissingVersion::Reject,
            auth: Auth::default(),
            workflows: vec![Workflow::default(), Workflow::with_review()],
            processing: Processing::default(),
            limits: Limits::default(),
            webhooks: Webhooks::default(),
            retention: Retention::default(),
            expose_priority: false,
            max_body_bytes: 32 * 1024 * 1024,
            validation_status: ValidationStatus::default(),
            faults: Faults::default(),
            defects: Defects::default(),
            sparring: Default::default(),
            calibration: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum MissingVersion {
    /// 400 INVALID_REQUEST, as for keys created after 2025-04-21.
    Reject,
    /// Serve the given legacy version, as for older keys.
    Legacy(ApiVersion),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    /// Bearer tokens that are accepted.
    pub tokens: Vec<String>,
    /// When non-empty, an `x-extend-workspace-id` header must name one of these (403
    /// otherwise). Requests without the header are served as the key's own workspace.
    pub workspaces: Vec<String>,
    /// Organization API keys (accepted like `tokens`): they reach any workspace, so a
    /// request must name one in `x-extend-workspace-id`, or it gets 403.
    pub organization_keys: Vec<String>,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            tokens: vec![DEFAULT_TOKEN.to_string()],
            workspaces: vec![],
            organization_keys: vec![],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Workflow {
    pub id: String,
    pub name: String,
    /// Published versions; `draft` is always accepted, and an omitted version means the
    /// latest published one.
    pub versions: Vec<String>,
    /// Steps whose runs appear in `stepRuns` (and `outputs` on legacy versions).
    pub steps: Vec<Step>,
    /// The workflow has a human review step: only its runs can go to NEEDS_REVIEW, as in
    /// production (the profile's `needs_review` share is processed elsewhere).
    pub review: bool,
}

impl Default for Workflow {
    fn default() -> Self {
        Workflow {
            id: DEFAULT_WORKFLOW.into(),
            name: "batchproof demo: invoice extraction".into(),
            versions: vec!["1".into(), "2".into()],
            steps: vec![Step {
                name: "Extract invoice".into(),
                kind: StepKind::Extract,
            }],
            review: false,
        }
    }
}

impl Workflow {
    /// The demo workflow with a human review step after extraction.
    pub fn with_review() -> Self {
        Workflow {
            id: REVIEW_WORKFLOW.into(),
            name: "batchproof demo: invoice extraction with human review".into(),
            versions: vec!["1".into()],
            review: true,
            ..Workflow::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: StepKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepKind {
    Extract,
    RuleValidation,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Processing {
    /// Runs processed at once.
    pub workers: usize,
    /// Time one run spends PROCESSING, before time scaling.
    pub duration: DurationDist,
    /// Relative weights of the outcomes.
    pub outcomes: Outcomes,
    /// How long a cancelled run stays CANCELLING before it is CANCELLED, before time
    /// scaling.
    pub cancel_after: Dur,
    /// What happens to NEEDS_REVIEW runs.
    pub review: Review,
}

/// The human review of NEEDS_REVIEW runs (docs/contract.md §7): later approved (→ PROCESSED)
/// or rejected (→ REJECTED, `workflow_run.rejected`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Review {
    /// Time from NEEDS_REVIEW to the review, before time scaling; `null`: runs wait for
    /// `POST /_mock/runs/{id}/review`.
    pub after: Option<DurationDist>,
    /// Share of reviewed runs approved; the rest are rejected.
    pub approve: f64,
    /// Whether approval fires `workflow_run.completed`. The documentation does not say
    /// whether `completed` fires again after a review, so it is a switch; on by default
    /// because approval makes the run PROCESSED, which `completed` announces.
    pub completed_after_approval: bool,
}

impl Default for Review {
    fn default() -> Self {
        Review {
            after: Some(DurationDist::Lognormal {
                median: Dur::from_secs(600),
                p99: Dur::from_secs(3600),
            }),
            approve: 0.8,
            completed_after_approval: true,
        }
    }
}

impl Default for Processing {
    fn default() -> Self {
        Processing {
            workers: 64,
            duration: DurationDist::Lognormal {
                median: Dur::from_secs(2),
                p99: Dur::from_secs(10),
            },
            outcomes: Outcomes::default(),
            cancel_after: Dur::from_secs(2),
            review: Review::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Outcomes {
    pub processed: f64,
    pub failed: f64,
    pub needs_review: f64,
}

impl Default for Outcomes {
    fn default() -> Self {
        Outcomes {
            processed: 0.9,
            failed: 0.05,
            needs_review: 0.05,
        }
    }
}

/// Plan limits per organization (docs/contract.md §7). `None` means unlimited. Request
/// rates are per second; the windows shrink with the time scale.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub get_rps: Option<f64>,
    pub write_rps: Option<f64>,
    pub run_rps: Option<f64>,
    pub files_per_minute: Option<f64>,
    /// How many seconds of its rate each bucket holds as burst, in simulated time (at
    /// least one token). Extend does not publish its burst; one second is the default.
    pub burst_s: f64,
    /// An account that runs out of credits: once this many runs exist, submissions get
    /// 402 USAGE_BLOCKED (so a client's 402 path can be exercised).
    pub max_runs: Option<u64>,
    /// Whether a 429 carries `Retry-After` / `retry-after-ms`: always, never or a share.
    pub retry_after: super::retry_after::RetryAfter,
    /// Request rates in wall-clock seconds whatever the time scale: a client developer's
    /// requests are real, so the plan's 10/s means 10 a real second.
    pub real_time: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            get_rps: None,
            write_rps: None,
            run_rps: None,
            files_per_minute: None,
            burst_s: 1.0,
            max_runs: None,
            retry_after: Default::default(),
            real_time: false,
        }
    }
}

impl Limits {
    /// Rates positive, a burst of positive seconds, a Retry-After share in 0..=1.
    pub(super) fn check(&self) -> Result<(), (String, String)> {
        let bad = |m: String, f: &str| Err((m, f.to_string()));
        for (name, rate) in [
            ("limits.get_rps", self.get_rps),
            ("limits.write_rps", self.write_rps),
            ("limits.run_rps", self.run_rps),
            ("limits.files_per_minute", self.files_per_minute),
        ] {
            if rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
                return bad(format!("{name} must be positive"), "remove it for no limit");
            }
        }
        if let Some(m) = self.retry_after.problem() {
            return bad(
                m,
                "e.g. `retry_after: 0.5` leaves the header off half the 429s",
            );
        }
        if !(self.burst_s.is_finite() && self.burst_s > 0.0) {
            return bad(
                format!(
                    "limits.burst_s must be a positive number of seconds, got {}",
                    self.burst_s
                ),
                "e.g. `burst_s: 1` holds one second of each rate as burst",
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Webhooks {
    /// Endpoints known from the start, in addition to those created through the API.
    pub endpoints: Vec<EndpointConfig>,
    /// How long one delivery attempt may take before it counts as failed.
    pub timeout: Dur,
    /// Delays before each retry; the last one repeats. Scaled by the time scale.
    pub retry: Vec<Dur>,
    /// Attempts before a delivery is given up (and logged as failed).
    pub max_attempts: u32,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// The large-payload mode's URLs (`advancedOptions.payload.format: url`).
    pub signed_url: super::signed_url::SignedUrlConfig,
}

impl Default for Webhooks {
    fn default() -> Self {
        Webhooks {
            endpoints: vec![],
            timeout: Dur::from_secs(10),
            retry: vec![
                Dur::from_secs(1),
                Dur::from_secs(5),
                Dur::from_secs(30),
                Dur::from_secs(120),
                Dur::from_secs(600),
            ],
            max_attempts: 20,
            concurrency: 64,
            signed_url: Default::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    pub url: String,
    /// The signing secret, `wss_…`.
    pub secret: String,
    /// The version whose shapes the payloads follow.
    #[serde(default = "current_version")]
    pub api_version: ApiVersion,
    /// Workflow-run event types to send; empty means all of them.
    #[serde(default)]
    pub events: Vec<String>,
}

fn current_version() -> ApiVersion {
    ApiVersion::CURRENT
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Terminal runs kept; the oldest finished are evicted beyond this.
    pub max_finished_runs: usize,
    /// Terminal runs older than this (real time) are evicted.
    pub max_age: Dur,
    /// Entries kept in the delivery log ring.
    pub delivery_log: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_finished_runs: 200_000,
            max_age: Dur::from_secs(24 * 3600),
            delivery_log: 10_000,
        }
    }
}

/// Endpoints, as named in per-endpoint fault settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Batch,
    Create,
    List,
    Get,
    Update,
    Cancel,
    Delete,
    WebhookEndpoints,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added latency per endpoint.
    pub latency: BTreeMap<Endpoint, DurationDist>,
    /// Probability of a 500 INTERNAL_ERROR per endpoint, decided after the work is done
    /// (so a batch may exist even though its response was a 500, as with the real API).
    pub errors: BTreeMap<Endpoint, f64>,
    /// One-off stalls: the `at_request`-th request to `endpoint` (1-based) is held for
    /// `duration` before it is answered.
    pub stalls: Vec<Stall>,
    pub webhooks: WebhookFaults,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Stall {
    pub endpoint: Endpoint,
    pub at_request: u64,
    pub duration: Dur,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookFaults {
    /// Probability an event is never delivered.
    pub drop: f64,
    /// Probability an event is delivered twice (same eventId).
    pub duplicate: f64,
    /// Probability an event is held back by up to `reorder_window` so later ones overtake.
    pub reorder: f64,
    pub reorder_window: Option<Dur>,
    /// Extra delay before every first attempt.
    pub delay: Option<DurationDist>,
    /// Probability an attempt is signed with a timestamp ten minutes old.
    pub stale_timestamp: f64,
}

impl Profile {
    pub fn load(path: &Path) -> Result<Profile, ConfigError> {
        Profile::layered(&[path])
    }

    /// The profiles at `paths`, each (after its own `extends:` chain) laid over the one
    /// before it: `--mock-profile` lays its file over the scenario's profile this way.
    pub fn layered(paths: &[&Path]) -> Result<Profile, ConfigError> {
        let mut tree = serde_json::Value::Object(Default::default());
        for path in paths {
            merge(&mut tree, settings(path, 0)?);
        }
        let name = paths
            .last()
            .map_or(String::new(), |p| p.display().to_string());
        let profile: Profile = serde_json::from_value(tree).map_err(|e| {
            ConfigError::new(
                &name,
                format!("the profiles together do not make a profile: {e}"),
            )
            .with_fix("check the value named above in this file and the profiles it extends")
        })?;
        profile
            .validate()
            .map_err(|(msg, fix)| ConfigError::new(&name, msg).with_fix(fix))?;
        Ok(profile)
    }

    /// Parses and validates a profile from text; `name` names it in errors.
    pub fn from_text(name: &str, text: &str) -> Result<Profile, ConfigError> {
        let profile: Profile = crate::config::parse_yaml(name, text)?;
        profile
            .validate()
            .map_err(|(msg, fix)| ConfigError::new(name, msg).with_fix(fix))?;
        Ok(profile)
    }

    /// Real time for a simulated duration.
    pub fn scaled(&self, d: Duration) -> Duration {
        d.div_f64(self.time_scale)
    }
}

#[cfg(test)]
mod layering_tests {
    use super::*;

    /// Loading goes through a settings tree (for `extends:`); for a profile that extends
    /// nothing it must give exactly what parsing the file directly gives.
    #[test]
    fn every_shipped_profile_loads_the_same_through_the_tree() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("mock");
        let mut files: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .chain(std::fs::read_dir(root.join("defects")).unwrap())
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        assert!(files.len() > 20);
        for f in files {
            let direct: Profile = crate::config::load_yaml(&f).unwrap();
            let layered = Profile::load(&f).unwrap();
            assert_eq!(
                serde_json::to_value(&direct).unwrap(),
                serde_json::to_value(&layered).unwrap(),
                "{}",
                f.display()
            );
        }
    }
}
