//! The contract as types: API versions, run statuses, error bodies, and the wire shapes
//! that differ between versions. Both the mock (serving) and the harness (checking) use
//! this module, so one reading of the contract (`docs/contract.md`) drives both sides.

pub mod client;
pub mod error;
pub mod shapes;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Header that selects the API version on every request.
pub const VERSION_HEADER: &str = "x-extend-api-version";
/// Header an organization-scoped key uses to pick a workspace (2026).
pub const WORKSPACE_HEADER: &str = "x-extend-workspace-id";
/// Header carrying the server's request id on responses.
pub const REQUEST_ID_HEADER: &str = "x-extend-request-id";

/// Most inputs one batch may carry (and the least is one).
pub const MAX_BATCH_INPUTS: usize = 1000;

/// Metadata key marking runs the conformance probes created, so neither the harness nor
/// a reader confuses their results with the load's.
pub const PROBE_KEY: &str = "bp_probe";
/// Documented limit on a run's metadata object, serialised.
pub const MAX_METADATA_BYTES: usize = 10 * 1024;
/// Priority the API gives to batch-created runs when none is asked for.
pub const BATCH_DEFAULT_PRIORITY: u8 = 90;
/// Priority of single runs when none is asked for (spec-2025; assumed for 2026).
pub const SINGLE_DEFAULT_PRIORITY: u8 = 50;

/// A plan's published limits (docs/contract.md §7), or a scenario's own: requests per
/// second per category, and processing throughput in files per minute. `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RateLimits {
    pub run_rps: Option<f64>,
    pub write_rps: Option<f64>,
    pub get_rps: Option<f64>,
    pub files_per_minute: Option<f64>,
}

impl RateLimits {
    pub fn is_empty(&self) -> bool {
        self.run_rps.is_none() && self.write_rps.is_none() && self.get_rps.is_none()
    }

    /// One of `n` equal shares of these limits: what each of N shards on one account may
    /// use, so that together they stay under the account's limits.
    pub fn shared_by(&self, n: u64) -> RateLimits {
        let n = n.max(1) as f64;
        let share = |r: Option<f64>| r.map(|r| r / n);
        RateLimits {
            run_rps: share(self.run_rps),
            write_rps: share(self.write_rps),
            get_rps: share(self.get_rps),
            files_per_minute: share(self.files_per_minute),
        }
    }
}

/// The plans whose limits the documentation publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    Payg,
    Scale,
    Enterprise,
}

impl Plan {
    /// The published limits; Scale and Enterprise publish floors ("25+"), which is what
    /// a client can count on.
    pub fn limits(self) -> RateLimits {
        let (rps, files) = match self {
            Plan::Payg => (10.0, 80.0),
            Plan::Scale => (25.0, 120.0),
            Plan::Enterprise => (75.0, 300.0),
        };
        RateLimits {
            run_rps: Some(rps),
            write_rps: Some(rps),
            get_rps: Some(rps),
            files_per_minute: Some(files),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Payg => "payg",
            Plan::Scale => "scale",
            Plan::Enterprise => "enterprise",
        }
    }
}

/// The rate-limit category of a request (docs/contract.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Reads.
    Get,
    /// Changes other than runs: webhook endpoints, subscriptions, cancels.
    Write,
    /// Run and batch submissions.
    Run,
}

impl Category {
    /// The category of `method path` as the harness sends it.
    pub fn of(method: &str, path: &str) -> Category {
        let path = path.split('?').next().unwrap_or(path);
        match method {
            "GET" | "HEAD" => Category::Get,
            "POST" if path == "/workflow_runs" || path == "/workflow_runs/batch" => Category::Run,
            _ => Category::Write,
        }
    }
}

/// The API versions whose shapes batchproof knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ApiVersion {
    #[serde(rename = "2024-12-23")]
    V2024_12_23,
    #[serde(rename = "2025-04-21")]
    V2025_04_21,
    #[serde(rename = "2026-02-09")]
    V2026_02_09,
}

impl ApiVersion {
    pub const ALL: [ApiVersion; 3] = [
        ApiVersion::V2024_12_23,
        ApiVersion::V2025_04_21,
        ApiVersion::V2026_02_09,
    ];
    /// The version the current SDKs send by default.
    pub const CURRENT: ApiVersion = ApiVersion::V2026_02_09;

    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V2024_12_23 => "2024-12-23",
            ApiVersion::V2025_04_21 => "2025-04-21",
            ApiVersion::V2026_02_09 => "2026-02-09",
        }
    }

    /// Versions before 2026-02-09 wrap responses in `{success, ...}` and use
    /// `{success: false, error}` error bodies.
    pub fn is_legacy(self) -> bool {
        self != ApiVersion::V2026_02_09
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApiVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApiVersion::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown API version `{s}`; known versions: 2024-12-23, 2025-04-21, 2026-02-09"
                )
            })
    }
}

/// Status of a workflow run, as every version spells it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Pending,
    Processing,
    NeedsReview,
    Rejected,
    Processed,
    Failed,
    Cancelling,
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 8] = [
        RunStatus::Pending,
        RunStatus::Processing,
        RunStatus::NeedsReview,
        RunStatus::Rejected,
        RunStatus::Processed,
        RunStatus::Failed,
        RunStatus::Cancelling,
        RunStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "PENDING",
            RunStatus::Processing => "PROCESSING",
            RunStatus::NeedsReview => "NEEDS_REVIEW",
            RunStatus::Rejected => "REJECTED",
            RunStatus::Processed => "PROCESSED",
            RunStatus::Failed => "FAILED",
            RunStatus::Cancelling => "CANCELLING",
            RunStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Terminal as the SDK pollers define it: everything but PENDING, PROCESSING and
    /// CANCELLING. NEEDS_REVIEW counts as terminal because a human must act next.
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            RunStatus::Pending | RunStatus::Processing | RunStatus::Cancelling
        )
    }

    /// Position in the forward-only lifecycle; a run's rank never decreases.
    pub fn rank(self) -> u8 {
        match self {
            RunStatus::Pending => 0,
            RunStatus::Processing | RunStatus::Cancelling => 1,
            RunStatus::NeedsReview => 2,
            RunStatus::Processed
            | RunStatus::Failed
            | RunStatus::Rejected
            | RunStatus::Cancelled => 3,
        }
    }

    /// The webhook event type announcing this status, if the API announces it in `version`.
    pub fn event_type(self, version: ApiVersion) -> Option<&'static str> {
        match self {
            RunStatus::Processed => Some("workflow_run.completed"),
            RunStatus::Failed => Some("workflow_run.failed"),
            RunStatus::NeedsReview => Some("workflow_run.needs_review"),
            RunStatus::Rejected => Some("workflow_run.rejected"),
            RunStatus::Cancelled if !version.is_legacy() => Some("workflow_run.cancelled"),
            _ => None,
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The step-run event: its payload is one StepRun with `workflowRunId`, and no batchId or
/// metadata.
pub const STEP_RUN_EVENT: &str = "workflow_run.step_run.processed";

/// Every workflow-run event a subscription may enable in `version`
/// (`workflow_run.cancelled` exists from 2026-02-09 on).
pub fn workflow_run_events(version: ApiVersion) -> Vec<&'static str> {
    RUN_EVENT_TYPES
        .iter()
        .copied()
        .filter(|e| !(version.is_legacy() && *e == "workflow_run.cancelled"))
        .chain([STEP_RUN_EVENT])
        .collect()
}

/// Event types that carry a whole WorkflowRun (and so batchId and metadata).
pub const RUN_EVENT_TYPES: [&str; 5] = [
    "workflow_run.completed",
    "workflow_run.failed",
    "workflow_run.needs_review",
    "workflow_run.rejected",
    "workflow_run.cancelled",
];

/// The failure reasons the documentation names (docs/contract.md §5). A run of a working
/// workflow fails with one of the first three; `INVALID_WORKFLOW` is for a workflow that
/// cannot run, which the mock gives only when a client steers it.
pub const FAILURE_REASONS: [&str; 4] = [
    "INTERNAL_ERROR",
    "DOCUMENT_PROCESSOR_ERROR",
    "FAILED_TO_PROCESS_FILE",
    "INVALID_WORKFLOW",
];
