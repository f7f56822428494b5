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
    /// The signal that ended it, if one did.
    #[serde(default)]
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub seconds: f64,
}

/// The grade: every rule's result, and whether the client passed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grade {
    pub passed: bool,
    /// Why it did not pass, each a sentence; empty when it passed.
    pub reasons: Vec<String>,
    pub requests: u64,
    /// Requests to the API itself (not the admin surface).
    pub api_requests: u64,
    pub deliveries: u64,
    /// Observations past the recording cap: the evidence is incomplete.
    pub dropped: u64,
    pub client: Option<ClientExit>,
    pub tolerances: Tolerances,
    pub rules: Vec<RuleResult>,
}

impl Grade {
    /// Judges `obs`. Besides a broken rule, a client that sent the API nothing (every
    /// rule unexercised proves nothing) and a command that failed or timed out fail it.
    pub fn judge(obs: &Observations, t: &Tolerances, client: Option<ClientExit>) -> Grade {
        let rules = rules::judge(obs, t);
        let api_requests = obs
            .requests
            .iter()
            .filter(|r| !matches!(r.route, observed::Route::Admin | observed::Route::Other))
            .count() as u64;
        let mut reasons = Vec::new();
        let broken = rules.iter().filter(|r| r.status == Status::Failed).count();
        if broken > 0 {
            reasons.push(format!("{broken} client rule(s) broken"));
        }
        if api_requests == 0 {
            reasons.push(if client.is_some() {
                "the client sent the API nothing: no rule was put to the test (check the command, and that it passes EXTEND_BASE_URL to its SDK as the base URL)"
                    .to_string()
            } else {
                "the client sent the API nothing while the mock ran: no rule was put to the test (point the client's base URL at this mock)"
                    .to_string()
            });
        }
        if let Some(c) = &client {
            if c.timed_out {
                reasons.push(format!(
                    "the client's command timed out after {:.0} s, its --timeout ({})",
                    c.seconds, c.command
                ));
            } else if c.code != Some(0) {
                let how = match (c.code, c.signal) {
                    (Some(code), _) => format!("exited {code}"),
                    (None, Some(sig)) => format!("was killed by signal {sig}"),
                    (None, None) => "ended abnormally".to_string(),
                };
                reasons.push(format!("the client's command {how} ({})", c.command));
            }
        }
        Grade {
            passed: reasons.is_empty(),
            reasons,
            requests: obs.requests.len() as u64,
            api_requests,
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
