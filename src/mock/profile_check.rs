//! A profile's own check, of what serde cannot: ranges and relations between fields
//! (a positive time scale, shares that add up, statuses that exist, …), each failure
//! with the fix. Kept apart from the profile's shape so each file reads on its own.

use super::profile::*;

impl Profile {
    /// Checks what serde cannot: ranges and relations between fields.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |m: String, f: &str| Err((m, f.to_string()));
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return bad(
                format!(
                    "time_scale must be a positive number, got {}",
                    self.time_scale
                ),
                "set time_scale: 1 for real time, or e.g. 100 to run 100× faster",
            );
        }
        if self.processing.workers == 0 {
            return bad(
                "processing.workers is 0: nothing would ever run".into(),
                "set processing.workers: 1 or more",
            );
        }
        if let Err(m) = self.processing.duration.validate() {
            return bad(
                format!("processing.duration: {m}"),
                "fix the distribution's parameters",
            );
        }
        if let Some((name, status)) = self
            .validation_status
            .all()
            .into_iter()
            .find(|(_, s)| !matches!(s, 400 | 422))
        {
            return bad(
                format!("validation_status.{name} is {status}; it must be 400 or 422"),
                "use 400 (INVALID_REQUEST's status) or 422 (unprocessable entity)",
            );
        }
        if let Some(after) = &self.processing.review.after
            && let Err(m) = after.validate()
        {
            return bad(
                format!("processing.review.after: {m}"),
                "fix the distribution's parameters, or `after: null` to review only on demand",
            );
        }
        let signed = &self.webhooks.signed_url;
        if let Some(base) = &signed.base_url
            && !(base.starts_with("http://") || base.starts_with("https://"))
        {
            return bad(
                format!("webhooks.signed_url.base_url is {base:?}, not an http(s) URL"),
                "e.g. `base_url: https://mock.example.test`, or leave it out for the mock's own address",
            );
        }
        if signed.kept == 0 {
            return bad(
                "webhooks.signed_url.kept is 0: no signed URL could be fetched".into(),
                "keep at least 1 payload (the default keeps 10000)",
            );
        }
        let a = self.processing.review.approve;
        if !(0.0..=1.0).contains(&a) {
            return bad(
                format!("processing.review.approve must be a share from 0 to 1, got {a}"),
                "e.g. `approve: 0.8` approves 80 % of reviewed runs",
            );
        }
        let o = &self.processing.outcomes;
        if [o.processed, o.failed, o.needs_review]
            .iter()
            .any(|w| *w < 0.0 || !w.is_finite())
            || o.processed + o.failed + o.needs_review <= 0.0
        {
            return bad(
                "processing.outcomes weights must be non-negative and not all zero".into(),
                "e.g. processed: 0.9, failed: 0.05, needs_review: 0.05",
            );
        }
        if self.workflows.is_empty() {
            return bad(
                "no workflows: every batch would get 404".into(),
                "list at least one workflow under `workflows`",
            );
        }
        if self.webhooks.max_attempts == 0 || self.webhooks.concurrency == 0 {
            return bad(
                "webhooks.max_attempts and webhooks.concurrency must be at least 1".into(),
                "set them to 1 or more",
            );
        }
        self.limits.check()?;
        let f = &self.faults.webhooks;
        for (name, p) in [
            ("faults.webhooks.drop", f.drop),
            ("faults.webhooks.duplicate", f.duplicate),
            ("faults.webhooks.reorder", f.reorder),
            ("faults.webhooks.stale_timestamp", f.stale_timestamp),
            (
                "defects.missing_terminal_webhook",
                self.defects.missing_terminal_webhook,
            ),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return bad(
                    format!("{name} is a probability, got {p}"),
                    "use a number from 0 to 1",
                );
            }
        }
        for (ep, p) in &self.faults.errors {
            if !(0.0..=1.0).contains(p) {
                return bad(
                    format!("faults.errors.{ep:?} is a probability, got {p}"),
                    "use a number from 0 to 1",
                );
            }
        }
        Ok(())
    }
}
