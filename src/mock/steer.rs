//! Steering one input's outcome, for client developers testing their error paths: a
//! mock-only metadata key, `x-batchproof-mock`, forces what processing decides for that
//! input (and optionally how long it takes). The mock returns metadata exactly as the
//! client sent it, so the key shows in the run's metadata only because the client put it
//! there; the real API would treat it as any other metadata key.
//!
//! ```json
//! "metadata": {"x-batchproof-mock": "FAILED"}
//! "metadata": {"x-batchproof-mock": {"outcome": "FAILED", "failureReason": "FAILED_TO_PROCESS_FILE",
//!                                    "failureMessage": "password protected", "processingTime": "3s"}}
//! "metadata": {"x-batchproof-mock": {"outcome": "NEEDS_REVIEW", "review": "reject"}}
//! ```

use std::time::Duration;

use serde_json::Value;

use crate::config::parse_duration;

/// The metadata key that steers an input's outcome in the mock.
pub const STEER_KEY: &str = "x-batchproof-mock";

/// Every failureReason the reference documents (docs/contract.md §4): the three the
/// profile's outcome mix draws from, and `INVALID_WORKFLOW`, which processing never draws
/// on its own (the mock's workflows are valid) but a client may steer into to test its
/// not-retryable path.
pub const FAILURE_REASONS: [&str; 4] = [
    "INTERNAL_ERROR",
    "DOCUMENT_PROCESSOR_ERROR",
    "FAILED_TO_PROCESS_FILE",
    "INVALID_WORKFLOW",
];

/// What a steered input's run will do.
#[derive(Debug, Clone, PartialEq)]
pub struct Steer {
    pub outcome: Steered,
    /// Processing time before time scaling, instead of the profile's draw.
    pub processing_time: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Steered {
    Processed,
    Failed {
        reason: &'static str,
        message: Option<String>,
    },
    /// NEEDS_REVIEW, then the review: `Some(true)` approve, `Some(false)` reject, `None`
    /// wait for `POST /_mock/runs/{id}/review`.
    NeedsReview {
        approve: Option<bool>,
    },
    Cancelled,
}

/// Reads the steering key of one input's metadata; `Ok(None)` when it has none. The
/// error says what is wrong and what is accepted.
pub fn read(metadata: &Value) -> Result<Option<Steer>, String> {
    let Some(v) = metadata.get(STEER_KEY) else {
        return Ok(None);
    };
    let (outcome, spec) = match v {
        Value::String(s) => (s.as_str(), None),
        Value::Object(m) => (
            m.get("outcome")
                .and_then(Value::as_str)
                .ok_or("needs `outcome`, a string")?,
            Some(m),
        ),
        _ => return Err("must be an outcome string or an object with `outcome`".into()),
    };
    let field = |k: &str| spec.and_then(|m| m.get(k));
    let text = |k: &str| -> Result<Option<String>, String> {
        match field(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("`{k}` must be a string")),
        }
    };
    let outcome = match outcome {
        "PROCESSED" => Steered::Processed,
        "FAILED" => {
            let reason = match text("failureReason")? {
                None => "FAILED_TO_PROCESS_FILE",
                Some(r) => FAILURE_REASONS
                    .iter()
                    .find(|k| **k == r)
                    .copied()
                    .ok_or_else(|| {
                        format!(
                            "`failureReason` must be one of {}; got `{r}`",
                            FAILURE_REASONS.join(", ")
                        )
                    })?,
            };
            Steered::Failed {
                reason,
                message: text("failureMessage")?,
            }
        }
        "NEEDS_REVIEW" => Steered::NeedsReview {
            approve: match text("review")?.as_deref() {
                None | Some("wait") => None,
                Some("approve") => Some(true),
                Some("reject") => Some(false),
                Some(other) => {
                    return Err(format!(
                        "`review` must be approve, reject or wait; got `{other}`"
                    ));
                }
            },
        },
        "CANCELLED" => Steered::Cancelled,
        other => {
            return Err(format!(
                "outcome must be PROCESSED, FAILED, NEEDS_REVIEW or CANCELLED; got `{other}`"
            ));
        }
    };
    let processing_time = text("processingTime")?
        .map(|t| parse_duration(&t).map_err(|e| format!("`processingTime`: {e}")))
        .transpose()?;
    Ok(Some(Steer {
        outcome,
        processing_time,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_shorthand_and_the_object() {
        assert_eq!(read(&json!({"a": 1})), Ok(None));
        let s = read(&json!({STEER_KEY: "FAILED"})).unwrap().unwrap();
        assert_eq!(
            s.outcome,
            Steered::Failed {
                reason: "FAILED_TO_PROCESS_FILE",
                message: None
            }
        );
        let s = read(&json!({STEER_KEY: {"outcome": "NEEDS_REVIEW", "review": "reject", "processingTime": "3s"}}))
            .unwrap()
            .unwrap();
        assert_eq!(
            s,
            Steer {
                outcome: Steered::NeedsReview {
                    approve: Some(false)
                },
                processing_time: Some(Duration::from_secs(3))
            }
        );
    }

    #[test]
    fn refuses_what_it_cannot_do_with_the_fix() {
        for (bad, needle) in [
            (json!("DONE"), "PROCESSED, FAILED"),
            (json!(7), "outcome string"),
            (
                json!({"outcome": "FAILED", "failureReason": "OOPS"}),
                "INTERNAL_ERROR",
            ),
            (
                json!({"outcome": "NEEDS_REVIEW", "review": "maybe"}),
                "approve, reject",
            ),
            (
                json!({"outcome": "PROCESSED", "processingTime": "soon"}),
                "processingTime",
            ),
        ] {
            let e = read(&json!({STEER_KEY: bad})).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
    }
}
