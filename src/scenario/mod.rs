//! The YAML scenario: what load to send to which target, how to collect results, and what
//! must hold at the end. The file form (`ScenarioFile`) mirrors the YAML one-to-one and
//! rejects unknown keys; `Scenario::load` turns it into the checked form the engine runs,
//! and every error names the file, line, column and the fix. Field-by-field documentation
//! lives in `scenarios/README.md`.

pub mod feeder;
pub mod template;
pub mod threshold;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::api::shapes::WorkflowRef;
use crate::api::{ApiVersion, MAX_BATCH_INPUTS};
use crate::config::{ConfigError, Dur, parse_yaml};
use crate::mock::Profile;
use crate::mock::profile::DEFAULT_WORKFLOW;
use template::{Template, ValueTemplate};
use threshold::Threshold;

// ---------------------------------------------------------------------------------------
// The file form.

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
}

/// What a missing `x-extend-api-version` header should get (`version.missing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingVersion {
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
    pub missing_version: MissingVersion,
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

#[derive(Debug, Clone)]
pub struct Checks {
    pub selection: crate::checks::Selection,
    pub probes: bool,
    pub audit_batches: usize,
    pub page_size: u32,
    pub rapid_batches: u32,
    pub throttle_probe: u32,
    pub missing_version: MissingVersion,
    pub priority: u8,
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
    pub file: Option<FileFile>,
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
pub struct FileFile {
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

// ---------------------------------------------------------------------------------------
// The checked form.

#[derive(Debug, Clone)]
pub enum Target {
    Mock {
        profile: Box<Profile>,
        profile_path: Option<PathBuf>,
    },
    Url {
        url: String,
        token_env: String,
        workspace_id: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    /// Open model: rate goes linearly from `from` to `to` batches per second.
    Rate {
        duration: Duration,
        from: f64,
        to: f64,
    },
    /// Closed model: submitters go linearly from `from` to `to`.
    Concurrency {
        duration: Duration,
        from: f64,
        to: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BatchSize {
    Fixed(u64),
    Uniform(u64, u64),
}

#[derive(Debug, Clone)]
pub struct Load {
    pub model: Model,
    pub phases: Vec<Phase>,
    pub batches: Option<u64>,
    pub size: BatchSize,
    pub max_in_flight: usize,
    pub priority: Option<u8>,
    pub seed: u64,
    pub lag_bound: Duration,
    pub request_timeout: Duration,
    pub max_throttle_retries: u32,
}

impl Load {
    pub fn duration(&self) -> Duration {
        self.phases
            .iter()
            .map(|p| match p {
                Phase::Rate { duration, .. } | Phase::Concurrency { duration, .. } => *duration,
            })
            .sum()
    }
}

#[derive(Debug, Clone)]
pub struct FileTemplate {
    pub kind: FileKind,
    pub value: Template,
    pub name: Option<Template>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Url,
    Id,
    Text,
}

#[derive(Debug, Clone)]
pub struct Inputs {
    pub file: FileTemplate,
    pub metadata: Option<ValueTemplate>,
    pub secrets: Option<ValueTemplate>,
    pub feeder: Option<Vec<feeder::Row>>,
    pub correlation_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct WebhookResults {
    pub listen: SocketAddr,
    pub public_url: Option<String>,
    pub secret_env: Option<String>,
    pub register: bool,
    pub max_age: Duration,
    pub refuse_first: u32,
}

#[derive(Debug, Clone)]
pub struct PollResults {
    pub interval: Duration,
    pub page_size: u32,
    pub get_concurrency: usize,
}

#[derive(Debug, Clone)]
pub struct Results {
    pub webhooks: Option<WebhookResults>,
    pub polling: Option<PollResults>,
    pub deadline: Duration,
    pub settle: Duration,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    pub path: PathBuf,
    /// The YAML as it was run, kept for the report.
    pub text: String,
    pub target: Target,
    pub api_version: ApiVersion,
    pub workflow: WorkflowRef,
    pub load: Load,
    pub inputs: Inputs,
    pub results: Results,
    pub thresholds: Vec<Threshold>,
    pub project_files: Option<u64>,
    /// Contract checks; None: the run judges no rules.
    pub checks: Option<Checks>,
}

/// A fix for an unknown rule pattern: the nearest id, or where the list is.
fn suggest_rule(p: &str) -> String {
    let best = crate::checks::catalogue()
        .map(|r| r.id)
        .chain([
            "batch", "auth", "version", "error", "runs", "list", "webhook",
        ])
        .map(|id| (strsim::jaro_winkler(p, id), id))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((score, id)) if score > 0.8 => format!("did you mean `{id}`? (`batchproof checks` lists every rule)"),
        _ => "`batchproof checks` lists every rule id; families are batch, auth, version, error, runs, list, webhook".into(),
    }
}

fn located<T>(name: &str, at: &Spanned<T>, message: String, fix: &str) -> ConfigError {
    let mut e = ConfigError::new(name, message).with_fix(fix);
    if at.referenced.line() > 0 {
        e = e.at(at.referenced.line(), at.referenced.column());
    }
    e
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(&name, format!("cannot read scenario: {e}"))
                .with_fix("check the path; scenarios ship in scenarios/")
        })?;
        Scenario::from_text(path, &text)
    }

    pub fn from_text(path: &Path, text: &str) -> Result<Scenario, ConfigError> {
        let name = path.display().to_string();
        let file: ScenarioFile = parse_yaml(&name, text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let err = |msg: String, fix: &str| ConfigError::new(&name, msg).with_fix(fix);

        // Target.
        let target = match &file.target {
            None => Target::Mock {
                profile: Box::new(Profile::default()),
                profile_path: None,
            },
            Some(spanned) => {
                let t = &spanned.value;
                match (&t.mock, &t.url) {
                    (Some(_), Some(_)) => {
                        return Err(located(
                            &name,
                            spanned,
                            "target has both `mock` and `url`".into(),
                            "keep one: `mock:` for the embedded mock, `url:` for a real endpoint",
                        ));
                    }
                    (None, Some(url)) => {
                        if !(url.starts_with("http://") || url.starts_with("https://")) {
                            return Err(located(
                                &name,
                                spanned,
                                format!("target.url `{url}` is not an http(s) URL"),
                                "write e.g. `url: https://api.extend.ai`",
                            ));
                        }
                        Target::Url {
                            url: url.trim_end_matches('/').to_string(),
                            token_env: t
                                .token_env
                                .clone()
                                .unwrap_or_else(|| "EXTEND_API_KEY".into()),
                            workspace_id: t.workspace_id.clone(),
                        }
                    }
                    (mock, None) => {
                        let m = mock.clone().unwrap_or_default();
                        let (mut profile, profile_path) = match &m.profile {
                            Some(p) => {
                                let full = base.join(p);
                                let profile = Profile::load(&full).map_err(|e| {
                                    if e.line.is_some() {
                                        // The profile itself is malformed: its own location is the useful one.
                                        e
                                    } else {
                                        located(&name, spanned, format!("target.mock.profile: {e}"), "the path is relative to the scenario file; profiles ship in mock/")
                                    }
                                })?;
                                (profile, Some(full))
                            }
                            None => (Profile::default(), None),
                        };
                        if let Some(ts) = m.time_scale {
                            profile.time_scale = ts;
                        }
                        if let Some(seed) = m.seed {
                            profile.seed = seed;
                        }
                        if let Err((m, f)) = profile.validate() {
                            return Err(located(&name, spanned, format!("target.mock: {m}"), &f));
                        }
                        Target::Mock {
                            profile: Box::new(profile),
                            profile_path,
                        }
                    }
                }
            }
        };

        // Load.
        let l = &file.load;
        if l.phases.is_empty() {
            return Err(err(
                "load.phases is empty".into(),
                "add a phase, e.g. `- {hold: 10s, rate: 2}`",
            ));
        }
        let mut phases = Vec::new();
        let mut level: Option<f64> = None;
        for p in &l.phases {
            let f = &p.value;
            let (duration, ramp) = match (f.hold, f.ramp) {
                (Some(h), None) => (h.0, false),
                (None, Some(r)) => (r.0, true),
                _ => {
                    return Err(located(
                        &name,
                        p,
                        "a phase needs exactly one of `hold` or `ramp`".into(),
                        "write `{hold: 30s, rate: 2}` or `{ramp: 10s, to: 5}`",
                    ));
                }
            };
            let target_level = match l.model {
                Model::Open => {
                    if f.concurrency.is_some() {
                        return Err(located(
                            &name,
                            p,
                            "`concurrency` belongs to the closed model".into(),
                            "use `rate` (batches per second), or set `load.model: closed`",
                        ));
                    }
                    if ramp { f.to } else { f.rate.or(f.to) }
                }
                Model::Closed => {
                    if f.rate.is_some() {
                        return Err(located(
                            &name,
                            p,
                            "`rate` belongs to the open model".into(),
                            "use `concurrency`, or set `load.model: open`",
                        ));
                    }
                    if ramp {
                        f.to
                    } else {
                        f.concurrency.map(f64::from).or(f.to)
                    }
                }
            };
            let Some(to) = target_level else {
                let what = if l.model == Model::Open {
                    "rate"
                } else {
                    "concurrency"
                };
                return Err(located(
                    &name,
                    p,
                    format!("this phase gives no {what}"),
                    if ramp {
                        "add `to: N`"
                    } else {
                        "add the level, e.g. `rate: 2` or `concurrency: 4`"
                    },
                ));
            };
            let from = if ramp {
                f.from.or(level).unwrap_or(0.0)
            } else {
                to
            };
            if !(to.is_finite() && to >= 0.0 && from.is_finite() && from >= 0.0) {
                return Err(located(
                    &name,
                    p,
                    "phase levels must be non-negative numbers".into(),
                    "use e.g. `rate: 2`",
                ));
            }
            level = Some(to);
            phases.push(match l.model {
                Model::Open => Phase::Rate { duration, from, to },
                Model::Closed => Phase::Concurrency { duration, from, to },
            });
        }
        let size = match &l.inputs_per_batch.value {
            BatchSizeFile::Fixed(n) => BatchSize::Fixed(*n),
            BatchSizeFile::Uniform { min, max } => BatchSize::Uniform(*min, *max),
        };
        let (lo, hi) = match size {
            BatchSize::Fixed(n) => (n, n),
            BatchSize::Uniform(a, b) => (a, b),
        };
        if lo < 1 || hi > MAX_BATCH_INPUTS as u64 || lo > hi {
            return Err(located(
                &name,
                &l.inputs_per_batch,
                format!("inputs_per_batch must be within 1..{MAX_BATCH_INPUTS} (got {lo}..{hi})"),
                "the API accepts 1 to 1000 inputs per batch; the conformance probes test the limits separately",
            ));
        }
        if l.max_in_flight == 0 {
            return Err(err(
                "load.max_in_flight is 0: nothing could be sent".into(),
                "set it to 1 or more",
            ));
        }
        if let Some(p) = l.priority
            && !(1..=100).contains(&p)
        {
            return Err(err(
                format!("load.priority {p} is outside 1..100"),
                "use a priority from 1 (first) to 100",
            ));
        }
        let load = Load {
            model: l.model,
            phases,
            batches: l.batches,
            size,
            max_in_flight: l.max_in_flight,
            priority: l.priority,
            seed: l.seed,
            lag_bound: l.lag_bound.0,
            request_timeout: l.request_timeout.0,
            max_throttle_retries: l.max_throttle_retries,
        };

        // Inputs.
        let i = &file.inputs;
        let tmpl = |s: &Spanned<String>| {
            Template::compile(&s.value).map_err(|m| located(&name, s, m, "fix the placeholder"))
        };
        let file_tmpl = match &i.file {
            None => FileTemplate {
                kind: FileKind::Url,
                value: Template::compile(
                    "https://files.batchproof.test/b{{batch}}/doc-{{index}}.pdf",
                )
                .expect("literal template"),
                name: None,
            },
            Some(f) => {
                let given: Vec<(FileKind, &Spanned<String>)> = [
                    (FileKind::Url, f.url.as_ref()),
                    (FileKind::Id, f.id.as_ref()),
                    (FileKind::Text, f.text.as_ref()),
                ]
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect();
                let [(kind, value)] = given.as_slice() else {
                    return Err(err(
                        "inputs.file needs exactly one of `url`, `id` or `text`".into(),
                        "e.g. `file: {url: \"https://…/{{seq}}.pdf\"}`",
                    ));
                };
                if *kind == FileKind::Id && f.name.is_some() {
                    return Err(located(
                        &name,
                        value,
                        "a file given by `id` takes no `name`".into(),
                        "remove `name`",
                    ));
                }
                FileTemplate {
                    kind: *kind,
                    value: tmpl(value)?,
                    name: f.name.as_ref().map(tmpl).transpose()?,
                }
            }
        };
        let value_tmpl =
            |v: &Option<Value>, what: &str| -> Result<Option<ValueTemplate>, ConfigError> {
                match v {
                    None => Ok(None),
                    Some(v @ Value::Object(_)) => ValueTemplate::compile(v)
                        .map(Some)
                        .map_err(|m| err(format!("inputs.{what}: {m}"), "fix the placeholder")),
                    Some(_) => Err(err(
                        format!("inputs.{what} must be a mapping"),
                        "write key: value pairs",
                    )),
                }
            };
        let feeder = match &i.feeder {
            None => None,
            Some(f) => {
                let p = base.join(&f.value.path);
                Some(feeder::load(&p, f.value.format).map_err(|m| {
                    located(
                        &name,
                        f,
                        m,
                        "fix the feeder file or its path (relative to the scenario)",
                    )
                })?)
            }
        };
        let inputs = Inputs {
            file: file_tmpl,
            metadata: value_tmpl(&i.metadata, "metadata")?,
            secrets: value_tmpl(&i.secrets, "secrets")?,
            feeder,
            correlation_key: i.correlation_key.clone(),
        };

        // Results.
        let r = &file.results;
        let webhooks = matches!(r.via, Via::Webhooks | Via::Both).then(|| WebhookResults {
            listen: r.webhooks.listen,
            public_url: r.webhooks.public_url.clone(),
            secret_env: r.webhooks.secret_env.clone(),
            register: r.webhooks.register,
            max_age: r.webhooks.max_age.0,
            refuse_first: r.webhooks.refuse_first,
        });
        if let (Some(w), Target::Url { .. }) = (&webhooks, &target) {
            if w.register && w.public_url.is_none() {
                return Err(err(
                    "results via webhooks from a real target need `results.webhooks.public_url`"
                        .into(),
                    "give the URL the target can reach (e.g. a tunnel to `listen`), or use `via: polling`",
                ));
            }
            if !w.register && w.secret_env.is_none() {
                return Err(err(
                    "with `register: false` the receiver needs the endpoint's secret".into(),
                    "set `results.webhooks.secret_env: NAME_OF_ENV_VAR` holding the `wss_…` secret",
                ));
            }
        }
        if r.polling.page_size == 0 || r.polling.page_size > 1000 {
            return Err(err(
                format!(
                    "results.polling.page_size {} is outside 1..1000",
                    r.polling.page_size
                ),
                "the API's maxPageSize is 1 to 1000",
            ));
        }
        let polling = matches!(r.via, Via::Polling | Via::Both).then(|| PollResults {
            interval: r.polling.interval.0,
            page_size: r.polling.page_size,
            get_concurrency: r.polling.get_concurrency.max(1),
        });

        // Thresholds.
        let mut thresholds = Vec::new();
        for t in &file.thresholds {
            thresholds.push(
                threshold::parse(&t.value).map_err(|m| {
                    located(&name, t, m, "see the metric list in scenarios/README.md")
                })?,
            );
        }

        // Checks.
        let checks = match &file.checks {
            None => None,
            Some(c) => {
                let patterns = |list: &[Spanned<String>]| -> Result<Vec<String>, ConfigError> {
                    list.iter()
                        .map(|p| {
                            if crate::checks::is_known_pattern(&p.value) {
                                Ok(p.value.clone())
                            } else {
                                Err(located(
                                    &name,
                                    p,
                                    format!("`{}` is neither a rule id nor a family", p.value),
                                    &suggest_rule(&p.value),
                                ))
                            }
                        })
                        .collect()
                };
                let mut severity = std::collections::BTreeMap::new();
                for (id, sev) in &c.value.severity {
                    if crate::checks::rule(id).is_none() {
                        return Err(located(
                            &name,
                            c,
                            format!("checks.severity names `{id}`, which is not a rule id"),
                            &suggest_rule(id),
                        ));
                    }
                    severity.insert(id.clone(), *sev);
                }
                if c.value.page_size == 0 || c.value.page_size > 1000 {
                    return Err(located(
                        &name,
                        c,
                        format!("checks.page_size {} is outside 1..1000", c.value.page_size),
                        "the API's maxPageSize is 1 to 1000; a small one (e.g. 7) makes a batch span many pages",
                    ));
                }
                if !(1..=100).contains(&c.value.priority) {
                    return Err(located(
                        &name,
                        c,
                        format!("checks.priority {} is outside 1..100", c.value.priority),
                        "priorities run from 1 (first) to 100; batch runs default to 90",
                    ));
                }
                Some(Checks {
                    selection: crate::checks::Selection {
                        include: patterns(&c.value.include)?,
                        exclude: patterns(&c.value.exclude)?,
                        severity,
                    },
                    probes: c.value.probes,
                    audit_batches: c.value.audit_batches,
                    page_size: c.value.page_size,
                    rapid_batches: c.value.rapid_batches,
                    throttle_probe: c.value.throttle_probe,
                    missing_version: c.value.missing_version,
                    priority: c.value.priority,
                })
            }
        };

        Ok(Scenario {
            name: file.name.clone().unwrap_or_else(|| {
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "scenario".into())
            }),
            description: file.description.clone(),
            path: path.to_path_buf(),
            text: text.to_string(),
            target,
            api_version: file.api_version.unwrap_or(ApiVersion::CURRENT),
            workflow: file.workflow.clone().unwrap_or(WorkflowRef {
                id: DEFAULT_WORKFLOW.into(),
                version: None,
            }),
            load,
            inputs,
            results: Results {
                webhooks,
                polling,
                deadline: r.deadline.0,
                settle: r.settle.0,
            },
            thresholds,
            project_files: file.project.as_ref().map(|p| p.files),
            checks,
        })
    }
}

/// Shard `index` of `count` (0-based), as in a Kubernetes Indexed Job.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let err = || format!("`{s}` is not a shard; write I/N with 0 ≤ I < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(err)?;
        let (index, count): (u64, u64) = (
            i.trim().parse().map_err(|_| err())?,
            n.trim().parse().map_err(|_| err())?,
        );
        if count == 0 || index >= count {
            return Err(err());
        }
        Ok(Shard { index, count })
    }
}
