//! Live metrics in the Prometheus text format, through `prometheus-client`: a run (`run
//! --metrics-listen`) and the mock (`/_mock/metrics`) describe their state at each scrape
//! from what they already count, so nothing is counted twice and a scrape never blocks
//! the load for longer than a copy of the counters.

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::Latency;

/// Bucket bounds in seconds for latency histograms: from a millisecond (a submission on
/// loopback) to a day (a multi-hour bulk job's end to end, up to what the recorders hold).
pub const LATENCY_BUCKETS_S: [f64; 24] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0,
];

/// Writes metric families onto one scrape.
pub struct Scrape<'a, 'b> {
    encoder: &'a mut DescriptorEncoder<'b>,
}

impl<'a, 'b> Scrape<'a, 'b> {
    pub fn new(encoder: &'a mut DescriptorEncoder<'b>) -> Self {
        Scrape { encoder }
    }

    /// A counter family with one label (`name` gets `_total` in the text format).
    pub fn counters(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: impl IntoIterator<Item = (String, u64)>,
    ) -> fmt::Result {
        let mut family = self
            .encoder
            .encode_descriptor(name, help, None, MetricType::Counter)?;
        for (value, n) in values {
            let labels = [(label.to_string(), value)];
            family
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, u64, f64>(&n, None)?;
        }
        Ok(())
    }

    pub fn gauge(&mut self, name: &str, help: &str, value: f64) -> fmt::Result {
        self.encoder
            .encode_descriptor(name, help, None, MetricType::Gauge)?
            .encode_gauge(&value)
    }

    /// A latency histogram, its buckets read off the HdrHistogram (so the exposition
    /// and the report agree), in seconds.
    pub fn histogram(&mut self, name: &str, help: &str, latency: &Latency) -> fmt::Result {
        let h = &latency.hist;
        let mut buckets = Vec::with_capacity(LATENCY_BUCKETS_S.len() + 1);
        let mut below = 0u64;
        for bound in LATENCY_BUCKETS_S {
            let upto = h.count_between(0, (bound * 1e6) as u64);
            buckets.push((bound, upto.saturating_sub(below)));
            below = upto;
        }
        buckets.push((f64::INFINITY, h.len().saturating_sub(below)));
        let sum = h.mean() * h.len() as f64 / 1e6;
        self.encoder
            .encode_descriptor(name, help, None, MetricType::Histogram)?
            .encode_histogram::<NoLabelSet>(sum, h.len(), &buckets, None)
    }
}

/// The text exposition of what `collector` describes.
pub fn render(collector: impl prometheus_client::collector::Collector) -> String {
    render_labelled(collector, &[])
}

/// The text exposition of what `collector` describes, every series carrying `labels`
/// (a shard's `shard` and `shards`, so one dashboard sums N pods or splits them).
pub fn render_labelled(
    collector: impl prometheus_client::collector::Collector,
    labels: &[(&'static str, String)],
) -> String {
    let mut registry = Registry::with_labels(labels.iter().map(|(k, v)| {
        (
            std::borrow::Cow::Borrowed(*k),
            std::borrow::Cow::Owned(v.clone()),
        )
    }));
    registry.register_collector(Box::new(collector));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// The content type Prometheus scrapes the text format with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
