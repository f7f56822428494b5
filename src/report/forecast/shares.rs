//! The shares of statuses (FAILED, NEEDS_REVIEW, REJECTED): Wilson intervals for the
//! job's own share, widened for the job's own variation and for batches that differ more
//! than independent runs would.

use super::{Interval, measure::Measured};
use super::{SampleBatch, Share, Z95};

pub(super) const STATUSES: [&str; 3] = ["FAILED", "NEEDS_REVIEW", "REJECTED"];

pub(super) fn status_count(b: &SampleBatch, status: usize) -> f64 {
    f64::from(match status {
        0 => b.failed,
        1 => b.needs_review,
        _ => b.rejected,
    })
}

/// Each status's share of the job's `files` runs, from the sample and its replicates.
pub(super) fn shares(m: &Measured, files: f64, replicates: &[Vec<f64>; 3]) -> Vec<Share> {
    STATUSES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let hits: u64 = m.batches.iter().map(|b| status_count(b, i) as u64).sum();
            let share = wilson(hits, m.terminal, files, &replicates[i]);
            Share {
                status: name.to_string(),
                runs: hits,
                count: Interval {
                    estimate: share.estimate * files,
                    low: share.low * files,
                    high: share.high * files,
                },
                share,
            }
        })
        .collect()
}

/// A Wilson interval for the share of the job's `files` runs that end as `hits` of the
/// sample's `seen` did. It predicts the job's own share, not only the rate behind it: the
/// effective size is 1 / (1/seen + 1/files). When the batches differ more than
/// independent runs would (the bootstrap's variance over the binomial one, the design
/// effect), the size shrinks by that factor.
pub(super) fn wilson(hits: u64, seen: u64, files: f64, replicates: &[f64]) -> Interval {
    let p = hits as f64 / seen.max(1) as f64;
    let mean = replicates.iter().sum::<f64>() / replicates.len().max(1) as f64;
    let var = replicates.iter().map(|x| (x - mean).powi(2)).sum::<f64>()
        / replicates.len().saturating_sub(1).max(1) as f64;
    let binomial = p * (1.0 - p) / seen.max(1) as f64;
    let design = if binomial > 0.0 {
        (var / binomial).max(1.0)
    } else {
        1.0
    };
    let n = 1.0 / (1.0 / seen.max(1) as f64 + 1.0 / files.max(1.0)) / design;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Interval {
        estimate: p,
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::wilson;

    #[test]
    fn wilson_matches_the_published_interval() {
        // 10 of 100 with a job so large its own variation vanishes: the textbook
        // Wilson interval, 0.0552 – 0.1744.
        let i = wilson(10, 100, 1e12, &[]);
        assert!((i.low - 0.0552).abs() < 5e-4, "{i:?}");
        assert!((i.high - 0.1744).abs() < 5e-4, "{i:?}");
        // Zero of 100 still has an upper bound above zero.
        let z = wilson(0, 100, 1e12, &[]);
        assert_eq!(z.low, 0.0);
        assert!(z.high > 0.03 && z.high < 0.04, "{z:?}");
    }

    #[test]
    fn a_job_like_its_own_sample_doubles_the_variance() {
        let narrow = wilson(100, 1000, 1e12, &[]);
        let wide = wilson(100, 1000, 1000.0, &[]);
        let ratio = (wide.high - wide.low) / (narrow.high - narrow.low);
        assert!((ratio - 2f64.sqrt()).abs() < 0.05, "{ratio}");
    }
}
