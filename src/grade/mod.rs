//! Grading a client integration: what the mock observed a client do
//! (`observed`), judged by client rules (`rules`) into a grade with evidence, written as
//! a client report (`report`). This module reads observations only, never the mock's
//! internals, so a grade can also be judged from a saved observation file.

pub mod observed;
pub mod report;
pub mod rules;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use observed::Observations;
use rules::{RuleResult, Status, Tolerances};

/// How the client's own command ended, when `batchproof grade` ran it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientExit {
    pub command: String,
    /// Its exit code; None when it was killed (a timeout, a signal).
    pub code: Option<i32>,
    pub timed_out: bool,
    pub seconds: f64,
}

/// The grade: every rule's result, and whether the client passed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grade {
    pub passed: bool,
    pub requests: u64,
    pub deliveries: u64,
    /// Observations past the recording cap: the evidence is incomplete.
    pub dropped: u64,
    pub client: Option<ClientExit>,
    pub tolerances: Tolerances,
    pub rules: Vec<RuleResult>,
}

impl Grade {
    /// Judges `obs`; a client command that failed or timed out fails the grade too.
    pub fn judge(obs: &Observations, t: &Tolerances, client: Option<ClientExit>) -> Grade {
        let rules = rules::judge(obs, t);
        let client_ok = client
            .as_ref()
            .is_none_or(|c| c.code == Some(0) && !c.timed_out);
        Grade {
            passed: client_ok && rules.iter().all(|r| r.status != Status::Failed),
            requests: obs.requests.len() as u64,
            deliveries: obs.deliveries.len() as u64,
            dropped: obs.dropped,
            client,
            tolerances: *t,
            rules,
        }
    }

    pub fn failed(&self) -> impl Iterator<Item = &RuleResult> {
        self.rules.iter().filter(|r| r.status == Status::Failed)
    }
}
