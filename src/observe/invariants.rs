//! The accounting's own promises, judged on every run whatever its thresholds say: every
//! scheduled batch has exactly one outcome, every input of an accepted batch is exactly
//! one of seen or missing, and a result whose correlation tag names an input of this run
//! is never "unknown". A broken promise is a fault of the harness, not of the target: the
//! run does not pass, and the report says which promise broke, with evidence.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{BatchOutcome, Ledger};

/// Examples kept per invariant.
const EXAMPLES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Invariant {
    OneOutcome,
    SeenOrMissing,
    NoUnknownOwnResult,
}

impl Invariant {
    pub const ALL: [Invariant; 3] = [
        Invariant::OneOutcome,
        Invariant::SeenOrMissing,
        Invariant::NoUnknownOwnResult,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Invariant::OneOutcome => "ledger.one_outcome_per_batch",
            Invariant::SeenOrMissing => "ledger.seen_or_missing",
            Invariant::NoUnknownOwnResult => "ledger.own_results_known",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Invariant::OneOutcome => "every scheduled batch has exactly one outcome",
            Invariant::SeenOrMissing => {
                "every input of an accepted batch is exactly one of seen or missing"
            }
            Invariant::NoUnknownOwnResult => {
                "a result whose correlation tag names an input of this run is never unknown"
            }
        }
    }
}

/// Violations counted while the run goes on (paths that "cannot happen").
#[derive(Debug, Default)]
pub struct Faults {
    seen: BTreeMap<Invariant, (u64, Vec<String>)>,
}

impl Faults {
    pub fn record(&mut self, invariant: Invariant, example: String) {
        tracing::error!(invariant = invariant.id(), "{example}");
        let (n, examples) = self.seen.entry(invariant).or_default();
        *n += 1;
        if examples.len() < EXAMPLES {
            examples.push(example);
        }
    }

    pub fn count(&self, invariant: Invariant) -> u64 {
        self.seen.get(&invariant).map_or(0, |e| e.0)
    }
}

/// One invariant as the report shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InvariantResult {
    pub id: String,
    pub title: String,
    pub held: bool,
    /// Cases examined (batches, inputs or results).
    pub checked: u64,
    pub violations: u64,
    /// The first few violations, as evidence.
    pub examples: Vec<String>,
}

impl Ledger {
    /// Judges every invariant over what the run saw. `complete`: the run was not
    /// interrupted, so no batch may still be waiting for its answer.
    pub fn judge_invariants(&self, complete: bool) -> Vec<InvariantResult> {
        let mut found: BTreeMap<Invariant, (u64, Vec<String>)> = self
            .faults
            .seen
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let mut add = |inv: Invariant, example: String| {
            let (n, examples) = found.entry(inv).or_default();
            *n += 1;
            if examples.len() < EXAMPLES {
                examples.push(example);
            }
        };
        let mut inputs_checked = 0u64;
        let mut seen = 0u64;
        for b in &self.batches {
            if complete && b.outcome == BatchOutcome::Pending {
                add(
                    Invariant::OneOutcome,
                    format!("batch #{} was registered but has no outcome", b.index),
                );
            }
            if !self.track_inputs || !matches!(b.outcome, BatchOutcome::Accepted { .. }) {
                continue;
            }
            // Two tallies kept apart: the inputs with a first result, and the batch's
            // count of terminal inputs. They must agree, input for input.
            let range = b.first_seq as usize..(b.first_seq + u64::from(b.inputs)) as usize;
            let with_result = self.inputs[range]
                .iter()
                .filter(|r| r.first_seen().is_some())
                .count() as u64;
            inputs_checked += u64::from(b.inputs);
            seen += with_result;
            if with_result != u64::from(b.terminal) {
                add(
                    Invariant::SeenOrMissing,
                    format!(
                        "batch #{}: {} inputs have a result but {} were counted terminal",
                        b.index, with_result, b.terminal
                    ),
                );
            }
        }
        if complete {
            for (pos, ..) in &self.early {
                add(
                    Invariant::NoUnknownOwnResult,
                    format!(
                        "a result for batch #{} was held for its answer and never counted",
                        self.batches[*pos].index
                    ),
                );
            }
        }
        let checked = |inv: Invariant| match inv {
            Invariant::OneOutcome => self.batches.len() as u64,
            Invariant::SeenOrMissing => inputs_checked,
            Invariant::NoUnknownOwnResult => seen + self.anomalies.unknown,
        };
        Invariant::ALL
            .iter()
            .map(|&inv| {
                let (violations, examples) = found.remove(&inv).unwrap_or_default();
                InvariantResult {
                    id: inv.id().to_string(),
                    title: inv.title().to_string(),
                    held: violations == 0,
                    checked: checked(inv),
                    violations,
                    examples,
                }
            })
            .collect()
    }
}
