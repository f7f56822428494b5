//! HdrHistogram recorders and the per-second timeline.
//!
//! Every operation gets three histograms, as DESIGN.md requires: response time (from the
//! schedule's intended start; what SLOs use), service time (from the actual send) and
//! schedule lag (actual send − intended). Values are microseconds. Histograms are
//! serialised with the V2+deflate encoding so reports from shards merge losslessly.

pub mod exposition;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

/// Highest value a histogram tracks: 24 hours in microseconds (an end-to-end latency of a
/// bulk job can be hours). Larger values are clamped and counted as such.
const MAX_US: u64 = 24 * 3600 * 1_000_000;

/// A latency histogram in microseconds, 3 significant digits.
#[derive(Debug, Clone)]
pub struct Latency {
    pub hist: Histogram<u64>,
    pub clamped: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            hist: Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds"),
            clamped: 0,
        }
    }
}

impl Latency {
    pub fn record(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).max(1);
        if us > MAX_US {
            self.clamped += 1;
        }
        // Saturating record cannot fail for values within the bounds.
        self.hist.saturating_record(us.min(MAX_US));
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        Duration::from_micros(self.hist.value_at_quantile(p / 100.0))
    }

    pub fn max(&self) -> Duration {
        Duration::from_micros(self.hist.max())
    }

    pub fn mean(&self) -> Duration {
        Duration::from_micros(self.hist.mean() as u64)
    }

    pub fn add(&mut self, other: &Latency) {
        // Both use the same bounds, so adding cannot fail.
        let _ = self.hist.add(&other.hist);
        self.clamped += other.clamped;
    }

    /// HdrHistogram V2+deflate, base64: the interchange form in reports.
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.hist, &mut buf)
            .expect("serialising into memory");
        STANDARD.encode(buf)
    }

    pub fn decode(s: &str) -> Result<Latency, String> {
        let bytes = STANDARD
            .decode(s)
            .map_err(|e| format!("histogram is not base64: {e}"))?;
        let hist: Histogram<u64> = Deserializer::new()
            .deserialize(&mut &bytes[..])
            .map_err(|e| format!("histogram does not decode: {e:?}"))?;
        let mut out = Latency::default();
        out.hist
            .add(&hist)
            .map_err(|e| format!("histogram out of range: {e:?}"))?;
        Ok(out)
    }

    pub fn summary(&self) -> LatencySummary {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        LatencySummary {
            count: self.count(),
            min_ms: if self.count() == 0 {
                0.0
            } else {
                self.hist.min() as f64 / 1e3
            },
            mean_ms: ms(self.mean()),
            p50_ms: ms(self.percentile(50.0)),
            p90_ms: ms(self.percentile(90.0)),
            p95_ms: ms(self.percentile(95.0)),
            p99_ms: ms(self.percentile(99.0)),
            p999_ms: ms(self.percentile(99.9)),
            max_ms: ms(self.max()),
            clamped: self.clamped,
            hdr: self.encode(),
        }
    }
}

/// The report form of a histogram: headline figures plus the lossless encoding.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub clamped: u64,
    /// HdrHistogram V2+deflate, base64.
    pub hdr: String,
}

/// The three histograms of one kind of request.
#[derive(Debug, Clone, Default)]
pub struct Operation {
    pub response: Latency,
    pub service: Latency,
    pub lag: Latency,
    pub ok: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OperationSummary {
    pub ok: u64,
    pub errors: u64,
    /// Completion − intended start.
    pub response: LatencySummary,
    /// Completion − actual send.
    pub service: LatencySummary,
    /// Actual send − intended start.
    pub lag: LatencySummary,
}

impl Operation {
    pub fn summary(&self) -> OperationSummary {
        OperationSummary {
            ok: self.ok,
            errors: self.errors,
            response: self.response.summary(),
            service: self.service.summary(),
            lag: self.lag.summary(),
        }
    }
}

/// Counts per whole second since the run started.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Second {
    pub t: u64,
    pub batches_submitted: u64,
    pub runs_submitted: u64,
    pub runs_completed: u64,
    pub runs_failed: u64,
    pub http_errors: u64,
    pub throttles: u64,
    pub webhooks: u64,
    /// Runs submitted and not yet seen terminal, at the end of this second.
    pub runs_in_flight: u64,
    /// Resident memory of this process (harness, and the embedded mock when it is the
    /// target) sampled in this second, KiB; 0 when not sampled.
    #[serde(default)]
    pub rss_kib: u64,
}

#[derive(Debug, Default)]
pub struct Timeline {
    seconds: BTreeMap<u64, Second>,
}

impl Timeline {
    pub fn at(&mut self, since_start: Duration) -> &mut Second {
        let t = since_start.as_secs();
        self.seconds.entry(t).or_insert_with(|| Second {
            t,
            ..Default::default()
        })
    }

    /// The seconds in order, gaps filled, with runs in flight computed as a running sum.
    pub fn finish(&self) -> Vec<Second> {
        let Some(&last) = self.seconds.keys().next_back() else {
            return vec![];
        };
        let mut out = Vec::with_capacity(last as usize + 1);
        let mut in_flight: i64 = 0;
        let mut rss = 0;
        for t in 0..=last {
            let mut s = self.seconds.get(&t).cloned().unwrap_or(Second {
                t,
                ..Default::default()
            });
            in_flight += s.runs_submitted as i64 - s.runs_completed as i64;
            s.runs_in_flight = in_flight.max(0) as u64;
            // A second without a sample keeps the last one.
            if s.rss_kib == 0 {
                s.rss_kib = rss;
            }
            rss = s.rss_kib;
            out.push(s);
        }
        out
    }
}

/// Resident set size of this process in KiB, from /proc (Linux); None elsewhere.
pub fn rss_kib() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_is_lossless_and_merges() {
        let mut a = Latency::default();
        let mut b = Latency::default();
        for i in 1..=1000 {
            a.record(Duration::from_micros(i * 10));
            b.record(Duration::from_millis(i));
        }
        let a2 = Latency::decode(&a.encode()).unwrap();
        assert_eq!(a2.hist, a.hist);
        let mut merged = a2;
        merged.add(&Latency::decode(&b.encode()).unwrap());
        assert_eq!(merged.count(), 2000);
        assert_eq!(merged.max(), b.max());
    }

    #[test]
    fn timeline_fills_gaps_and_tracks_in_flight() {
        let mut t = Timeline::default();
        t.at(Duration::from_millis(100)).runs_submitted += 10;
        t.at(Duration::from_millis(2500)).runs_completed += 4;
        let s = t.finish();
        assert_eq!(s.len(), 3);
        assert_eq!(
            s.iter().map(|x| x.runs_in_flight).collect::<Vec<_>>(),
            vec![10, 10, 6]
        );
    }
}

/// Request metrics shared by the submitters and the poller.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    pub submit: Operation,
    pub list: Operation,
    pub get: Operation,
    /// Responses by status code ("200", "429", …) and failures without one ("timeout",
    /// "connect", "other").
    pub outcomes: BTreeMap<String, u64>,
    pub requests: u64,
    pub errors: u64,
    pub throttles: u64,
    /// The longest Retry-After any answer asked for: how long the target wants to be
    /// left alone (the knee waits it out between steps).
    pub retry_after_max: std::time::Duration,
}

impl HttpMetrics {
    pub fn count_reply(&mut self, reply: &crate::api::client::Reply) {
        use crate::api::client::Reply;
        self.requests += 1;
        let key = match reply {
            Reply::Answered { status, .. } => status.to_string(),
            Reply::Timeout { .. } => "timeout".into(),
            Reply::Connect { .. } => "connect".into(),
            Reply::Other { .. } => "other".into(),
        };
        match reply.status() {
            Some(429) => self.throttles += 1,
            Some(s) if s < 400 => {}
            _ => self.errors += 1,
        }
        *self.outcomes.entry(key).or_default() += 1;
        if let Reply::Answered {
            retry_after: Some(wait),
            ..
        } = reply
        {
            self.retry_after_max = self.retry_after_max.max(*wait);
        }
    }
}
