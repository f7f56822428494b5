//! The mock's deliberate contract violations (`defects:` in a profile), one per field:
//! each profile in `mock/defects/` switches on exactly one, so every contract rule can be
//! shown to catch what it claims.

use serde::{Deserialize, Serialize};

use crate::config::Dur;

/// Deliberate contract violations, one per field. `mock/defects/*.yaml` each switch on
/// exactly one, so the checks can be shown to catch what they claim.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Defects {
    /// Batch-created runs get this priority instead of 90 (or the requested one).
    pub batch_priority: Option<u8>,
    /// Runs do not carry their batchId (on get, list and webhooks).
    pub runs_without_batch_id: bool,
    /// Webhook payloads lack batchId (get and list still have it).
    pub webhook_without_batch_id: bool,
    /// Webhook payloads drop or alter the input's metadata.
    pub webhook_metadata: Option<MetadataDefect>,
    /// Batches of 1,001 inputs and more are accepted.
    pub accept_oversized_batch: bool,
    /// Batches with no inputs are accepted.
    pub accept_empty_batch: bool,
    /// Requests without a version header are served as the current version.
    pub accept_missing_version: bool,
    /// Errors use the other version family's body shape.
    pub wrong_error_shape: bool,
    /// One run more than the inputs is created per batch.
    pub extra_run_per_batch: bool,
    /// The last input of each batch gets no run.
    pub lost_run_per_batch: bool,
    /// The last run of each list page is repeated as the first of the next.
    pub repeat_across_pages: bool,
    /// Deliveries are signed with the wrong secret.
    pub wrong_signature: bool,
    /// Deliveries are signed with a timestamp ten minutes old.
    pub stale_signature: bool,
    /// This fraction of runs never gets a terminal webhook.
    pub missing_terminal_webhook: f64,
    /// Runs go back from PROCESSED to PROCESSING for a while after completing.
    pub status_regression: bool,
    /// Get and List keep every fifth finished run PROCESSING after its terminal webhook.
    pub stale_get: bool,
    /// A batch body that is not JSON, or of the wrong types, gets 500 INTERNAL_ERROR (a
    /// server that crashes on bad input) instead of a validation error.
    pub malformed_is_500: bool,
    /// Any token, or none, is accepted.
    pub auth_not_enforced: bool,
    /// A batch submitted within this time of the previous one gets 429.
    pub throttle_rapid_batches: Option<Dur>,
    /// The queue is first-in first-out, ignoring priority.
    pub ignore_priority: bool,
    /// FAILED runs are announced as `workflow_run.completed` (the payload still FAILED).
    pub failed_announced_as_completed: bool,
    /// `workflow_run.cancelled` goes to every endpoint subscribed to the run's workflow,
    /// legacy versions included.
    pub cancelled_to_legacy: bool,
    /// Cancel answers 200 with the run as it is, and cancels nothing.
    pub cancel_ignored: bool,
    /// Batch inputs with metadata over 10KB are accepted.
    pub accept_large_metadata: bool,
    /// A listing without maxPageSize gets pages of this size instead of 10.
    pub default_page_size: Option<usize>,
    /// A listing ignores its `status` filter.
    pub status_filter_ignored: bool,
    /// A listing ignores its `workflowId` filter.
    pub workflow_filter_ignored: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetadataDefect {
    Drop,
    Alter,
}
