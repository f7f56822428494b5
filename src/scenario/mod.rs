//! The YAML scenario: what load to send to which target, how to collect results, and what
//! must hold at the end. The file form (`ScenarioFile`) mirrors the YAML one-to-one and
//! rejects unknown keys; `Scenario::load` turns it into the checked form the engine runs,
//! and every error names the file, line, column and the fix. Field-by-field documentation
//! lives in `scenarios/README.md`.

pub mod feeder;
mod file;
mod resolve;
pub mod template;
pub mod threshold;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::api::ApiVersion;
use crate::api::shapes::WorkflowRef;
use crate::mock::Profile;
use template::{Template, ValueTemplate};
use threshold::Threshold;

pub use file::{MissingVersionExpectation, Model, Via};

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
        /// A time-scaled mock reached through a URL runs this many times faster than the
        /// API it stands for: figures are converted and the plan's limits sped up as for
        /// the embedded mock. None: real time.
        time_scale: Option<f64>,
    },
}

impl Target {
    /// How many times faster than real time the target runs, when it says (the embedded
    /// mock's profile, or a URL target's `time_scale`).
    pub fn time_scale(&self) -> Option<f64> {
        match self {
            Target::Mock { profile, .. } => Some(profile.time_scale),
            Target::Url { time_scale, .. } => *time_scale,
        }
    }
}

impl Scenario {
    /// The limits the client keeps to. A URL target at a time scale is a mock whose plan
    /// runs that many times faster: its published rates are multiplied, or the harness
    /// would poll a 60× mock at the real plan's 10 GETs a second.
    pub fn pacing_limits(&self) -> crate::api::RateLimits {
        let mut l = self.limits;
        // The plan's limits hold in the target's time: a mock N times faster than real
        // time (embedded, or reached by URL with its time scale) allows N times the rate
        // per real second, as its own windows do.
        if let Some(ts) = self
            .target
            .time_scale()
            .filter(|ts| *ts > 0.0 && *ts != 1.0)
        {
            let up = |r: Option<f64>| r.map(|r| r * ts);
            l.run_rps = up(l.run_rps);
            l.write_rps = up(l.write_rps);
            l.get_rps = up(l.get_rps);
            l.files_per_minute = up(l.files_per_minute);
        }
        l
    }
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
    /// This run's nonce in every tag (`NONCE:B:I`), so two runs of one scenario on one
    /// workflow, or a killed run's leftovers, never read each other's results as their
    /// own. Empty: the bare `B:I` of reports and journals written before it existed.
    pub run_nonce: String,
}

impl Inputs {
    /// How this run tags its inputs and reads tags back; None when it tags nothing.
    pub fn tagging(&self) -> Option<Tagging> {
        Some(Tagging {
            key: self.correlation_key.clone()?,
            nonce: self.run_nonce.clone(),
        })
    }
}

/// The correlation tag a run writes into each input's metadata (`NONCE:BATCH:INDEX`)
/// and reads back from every result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagging {
    /// The metadata key the tag is written under.
    pub key: String,
    pub nonce: String,
}

/// Whose a result's tag says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagRead {
    /// This run's input `index` of batch `batch`.
    Own { batch: u64, index: u64 },
    /// A tag under our key that is not this run's: another run's (or an earlier one's).
    Other,
    /// No tag under our key.
    Absent,
}

impl Tagging {
    /// The tag of input `index` of batch `batch`, as written into its metadata.
    pub fn tag(&self, batch: u64, index: u64) -> String {
        if self.nonce.is_empty() {
            format!("{batch}:{index}")
        } else {
            format!("{}:{batch}:{index}", self.nonce)
        }
    }

    /// Reads the tag in a result's metadata.
    pub fn read(&self, metadata: Option<&Value>) -> TagRead {
        let Some(raw) = metadata.and_then(|m| m.get(&self.key)) else {
            return TagRead::Absent;
        };
        let Some(text) = raw.as_str() else {
            return TagRead::Other;
        };
        self.parse(text)
            .map_or(TagRead::Other, |(batch, index)| TagRead::Own {
                batch,
                index,
            })
    }

    /// `(batch, index)` when `text` is this run's tag.
    pub fn parse(&self, text: &str) -> Option<(u64, u64)> {
        let rest = if self.nonce.is_empty() {
            text
        } else {
            text.strip_prefix(self.nonce.as_str())?.strip_prefix(':')?
        };
        let (b, i) = rest.split_once(':')?;
        Some((b.parse().ok()?, i.parse().ok()?))
    }

    /// A fresh nonce: 8 characters of base 36, enough that two runs never share one.
    pub fn fresh_nonce() -> String {
        use rand::Rng;
        const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut rng = rand::rng();
        (0..8)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect()
    }
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
    /// Set by `batchproof forecast`: this run is a sample of a larger job.
    pub sample: Option<Sample>,
    /// Contract checks; None: the run judges no rules.
    pub checks: Option<Checks>,
    /// The plan the scenario names, if any.
    pub plan: Option<crate::api::Plan>,
    /// The limits the harness keeps to (the plan's, overridden field by field).
    pub limits: crate::api::RateLimits,
    /// Most runs the run may create (`budget.max_runs`).
    pub budget_runs: Option<u64>,
    /// What the scenario expects that would otherwise fail the run (`expect:`).
    pub expect: Expectations,
    /// Set by the cost guard when the budget cuts the load short.
    pub budget_stop: Option<BudgetStop>,
}

#[derive(Debug, Clone)]
pub struct Checks {
    pub selection: crate::checks::Selection,
    pub probes: bool,
    /// Probes from every shard of a sharded run, not shard 0 alone.
    pub probes_on_every_shard: bool,
    pub audit_batches: usize,
    pub page_size: u32,
    pub rapid_batches: u32,
    pub throttle_probe: u32,
    pub missing_version: MissingVersionExpectation,
    pub priority: u8,
}

/// A forecast's sample of a job: the run sends the job's batches 0, `stride`, 2·`stride`,
/// … (as many as `load.batches`), so the sample spans the job's files and feeder rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub files: u64,
    /// Batches the whole job takes.
    pub batches: u64,
    pub stride: u64,
    /// When the job's open-model schedule sends each of its batches (seconds); None for
    /// a closed-model job.
    pub schedule_s: Option<Vec<f64>>,
}

/// What the scenario says it expects, which would otherwise fail the run
/// (`expect:` in the scenario).
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// Batches the target refuses with a 4xx (other than 429) do not fail the run.
    #[serde(default)]
    pub rejected_batches: bool,
    /// Deliveries to this run's own endpoint that fail verification do not fail the run.
    #[serde(default)]
    pub rejected_webhooks: bool,
    /// Runs with no result by the deadline do not fail the run.
    #[serde(default)]
    pub missing_runs: bool,
}

/// The budget cut the load short: what was planned, and what the budget let through.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct BudgetStop {
    pub max_runs: u64,
    /// Runs the scenario would have created without the budget (None: an open number).
    pub planned_runs: Option<u64>,
    /// Batches the budget allowed.
    pub allowed_batches: u64,
    /// What the budget stopped, when it was not a run's load (e.g. a knee search).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
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
