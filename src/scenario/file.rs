//! The scenario file as written: the YAML form, read by serde with every span kept so
//! `resolve` can name the file, line and column of whatever it refuses.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_saphyr::Spanned;

use super::feeder;
use crate::api::ApiVersion;
use crate::api::shapes::WorkflowRef;
use crate::config::Dur;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub target: Option<Spanned<TargetFile>>,
    #[serde(default)]
    pub api_version: Option<ApiVersion>,
    #[serde(default)]
    pub workflow: Option<WorkflowRef>,
    pub load: LoadFile,
    #[serde(default)]
    pub inputs: InputsFile,
    #[serde(default)]
    pub results: ResultsFile,
    #[serde(default)]
    pub thresholds: Vec<Spanned<String>>,
    #[serde(default)]
    pub project: Option<ProjectFile>,
    #[serde(default)]
    pub checks: Option<Spanned<ChecksFile>>,
    #[serde(default)]
    pub limits: Option<Spanned<LimitsFile>>,
    #[serde(default)]
    pub budget: Option<Spanned<BudgetFile>>,
    /// What would otherwise fail the run but is the point of this one.
    #[serde(default)]
    pub expect: super::Expectations,
}

/// The account's limits, which the harness keeps to: a plan's published ones, each
/// overridable.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    #[serde(default)]
    pub plan: Option<crate::api::Plan>,
    #[serde(default)]
    pub run_rps: Option<f64>,
    #[serde(default)]
    pub write_rps: Option<f64>,
    #[serde(default)]
    pub get_rps: Option<f64>,
    #[serde(default)]
    pub files_per_minute: Option<f64>,
}

/// What a run against a paid API may spend.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetFile {
    /// Most runs the run may create, the probes' included.
    #[serde(deserialize_with = "run_count")]
    pub max_runs: u64,
}

/// A count of runs, refused with the field's name and the fix when negative (serde alone
/// says only "invalid u64").
fn run_count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = i64::deserialize(d)?;
    u64::try_from(v).map_err(|_| {
        serde::de::Error::custom(format!(
            "budget.max_runs is {v}, but it is the most runs the run may create, a whole number ≥ 0; write e.g. `budget: {{max_runs: 2200}}`"
        ))
    })
}

/// What a missing `x-extend-api-version` header should get (`version.missing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingVersionExpectation {
    /// 400, as the current docs say.
    #[default]
    Reject,
    /// A 200 in the legacy shape: for keys created when 2024-12-23 was the default.
    Legacy,
}

/// The contract checks of a run: which rules, which probes, which expectations.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksFile {
    /// Rule ids or families (`runs`, `runs.*`); empty means every rule.
    #[serde(default)]
    pub include: Vec<Spanned<String>>,
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
    /// Send the probes (bad and edge requests) after the load.
    #[serde(default = "yes")]
    pub probes: bool,
    /// In a sharded run (`--shard I/N`), send the probes from every shard instead of
    /// shard 0 alone (N times their runs).
    #[serde(default)]
    pub probes_on_every_shard: bool,
    /// Accepted batches read back by List and Get.
    #[serde(default = "default_audit_batches")]
    pub audit_batches: usize,
    /// maxPageSize for the pagination walk (small, so a batch spans many pages).
    #[serde(default = "default_check_page_size")]
    pub page_size: u32,
    /// Batches sent back to back by `batch.rapid_succession`.
    #[serde(default = "default_rapid_batches")]
    pub rapid_batches: u32,
    /// List requests sent at once to provoke a 429 for `error.throttle_retryable`; 0: none.
    #[serde(default)]
    pub throttle_probe: u32,
    /// Expectation override for `version.missing`.
    #[serde(default)]
    pub missing_version: MissingVersionExpectation,
    /// Expectation override for `runs.priority`.
    #[serde(default = "default_priority")]
    pub priority: u8,
    /// Severity overrides by rule id: `{runs.priority_order: warn}`.
    #[serde(default)]
    pub severity: std::collections::BTreeMap<String, crate::checks::Severity>,
}

fn default_audit_batches() -> usize {
    3
}
fn default_check_page_size() -> u32 {
    7
}
fn default_rapid_batches() -> u32 {
    5
}
fn default_priority() -> u8 {
    crate::api::BATCH_DEFAULT_PRIORITY
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetFile {
    #[serde(default)]
    pub mock: Option<MockTargetFile>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub token_env: Option<String>,
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// With `url`: the target is a mock at this time scale (see `Target::Url`).
    #[serde(default)]
    pub time_scale: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MockTargetFile {
    /// Profile path, relative to the scenario file.
    #[serde(default)]
    pub profile: Option<PathBuf>,
    #[serde(default)]
    pub time_scale: Option<f64>,
    #[serde(default)]
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// Batches arrive at a scheduled rate whatever the target does.
    #[default]
    Open,
    /// A fixed number of submitters, each sending its next batch when the last returns.
    Closed,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoadFile {
    #[serde(default)]
    pub model: Model,
    pub phases: Vec<Spanned<PhaseFile>>,
    #[serde(default)]
    pub batches: Option<u64>,
    #[serde(default = "default_batch_size")]
    pub inputs_per_batch: Spanned<BatchSizeFile>,
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    #[serde(default)]
    pub priority: Option<u8>,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "default_lag_bound")]
    pub lag_bound: Dur,
    #[serde(default = "default_timeout")]
    pub request_timeout: Dur,
    #[serde(default = "default_retries")]
    pub max_throttle_retries: u32,
}

fn default_batch_size() -> Spanned<BatchSizeFile> {
    Spanned::new(
        BatchSizeFile::Fixed(100),
        serde_saphyr::Location::UNKNOWN,
        serde_saphyr::Location::UNKNOWN,
    )
}
fn default_in_flight() -> usize {
    64
}
fn default_lag_bound() -> Dur {
    Dur::from_millis(100)
}
fn default_timeout() -> Dur {
    Dur::from_secs(60)
}
fn default_retries() -> u32 {
    5
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseFile {
    /// Hold for this long at `rate` (open) or `concurrency` (closed).
    #[serde(default)]
    pub hold: Option<Dur>,
    /// Ramp linearly over this long from the previous phase's level (or `from`) to `to`.
    #[serde(default)]
    pub ramp: Option<Dur>,
    #[serde(default)]
    pub rate: Option<f64>,
    #[serde(default)]
    pub concurrency: Option<u32>,
    #[serde(default)]
    pub from: Option<f64>,
    #[serde(default)]
    pub to: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum BatchSizeFile {
    Fixed(u64),
    Uniform { min: u64, max: u64 },
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InputsFile {
    #[serde(default)]
    pub file: Option<DocumentFile>,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub secrets: Option<Value>,
    #[serde(default)]
    pub feeder: Option<Spanned<FeederFile>>,
    /// Metadata key the harness adds to every input to correlate results; null turns it
    /// off (then user metadata must be unique per input).
    #[serde(default = "default_correlation_key")]
    pub correlation_key: Option<String>,
}

impl Default for InputsFile {
    fn default() -> Self {
        InputsFile {
            file: None,
            metadata: None,
            secrets: None,
            feeder: None,
            correlation_key: default_correlation_key(),
        }
    }
}

fn default_correlation_key() -> Option<String> {
    Some("bp_input".into())
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentFile {
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    #[serde(default)]
    pub id: Option<Spanned<String>>,
    #[serde(default)]
    pub text: Option<Spanned<String>>,
    #[serde(default)]
    pub name: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeederFile {
    /// CSV or JSONL file, relative to the scenario.
    pub path: PathBuf,
    /// Taken from the extension when omitted.
    #[serde(default)]
    pub format: Option<feeder::Format>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    #[default]
    Webhooks,
    Polling,
    Both,
    /// Submission only: results are not collected (pure submission-throughput tests).
    None,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResultsFile {
    #[serde(default)]
    pub via: Via,
    #[serde(default)]
    pub webhooks: WebhooksFile,
    #[serde(default)]
    pub polling: PollingFile,
    /// How long after the last accepted batch results may still arrive.
    #[serde(default = "default_deadline")]
    pub deadline: Dur,
    /// After every result is in, keep listening and polling every batch this long, to
    /// catch late duplicates and statuses that go backwards.
    #[serde(default)]
    pub settle: Dur,
}

impl Default for ResultsFile {
    fn default() -> Self {
        ResultsFile {
            via: Via::Webhooks,
            webhooks: WebhooksFile::default(),
            polling: PollingFile::default(),
            deadline: default_deadline(),
            settle: Dur::default(),
        }
    }
}

fn default_deadline() -> Dur {
    Dur::from_secs(120)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksFile {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// URL the target should deliver to (for real targets: a tunnel to `listen`).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Environment variable with the endpoint's `wss_…` secret, when it already exists.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Create the webhook endpoint and workflow subscription through the API.
    #[serde(default = "yes")]
    pub register: bool,
    #[serde(default = "default_max_age")]
    pub max_age: Dur,
    /// Fault injection: answer the first N deliveries 503, to see the target retry.
    #[serde(default)]
    pub refuse_first: u32,
}

impl Default for WebhooksFile {
    fn default() -> Self {
        WebhooksFile {
            listen: default_listen(),
            public_url: None,
            secret_env: None,
            register: true,
            max_age: default_max_age(),
            refuse_first: 0,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}
fn yes() -> bool {
    true
}
fn default_max_age() -> Dur {
    Dur::from_secs(300)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PollingFile {
    #[serde(default = "default_poll_interval")]
    pub interval: Dur,
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Get Workflow Run calls in flight at once.
    #[serde(default = "default_get_concurrency")]
    pub get_concurrency: usize,
}

impl Default for PollingFile {
    fn default() -> Self {
        PollingFile {
            interval: default_poll_interval(),
            page_size: default_page_size(),
            get_concurrency: default_get_concurrency(),
        }
    }
}

fn default_poll_interval() -> Dur {
    Dur::from_secs(1)
}
fn default_page_size() -> u32 {
    1000
}
fn default_get_concurrency() -> usize {
    16
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectFile {
    /// Size of the bulk job to project, in files (inputs).
    pub files: u64,
}
