//! The estimator against samples written here: a processing-bound one, a job offered
//! more slowly, runs without a result, repeatability and refusals.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

/// A processing-bound sample: 10 batches of 100 accepted in the first second, runs
/// finishing 100 a second in submission order, each 0–0.5 s late.
fn processing_bound(seed: u64) -> Vec<SampleBatch> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..10)
        .map(|b| SampleBatch {
            runs: 100,
            intended_s: b as f64 * 0.1,
            accepted_s: b as f64 * 0.1 + 0.01,
            done_s: (0..100)
                .map(|i| 1.0 + (b * 100 + i) as f64 / 100.0 + rng.random_range(0.0..0.5))
                .collect(),
            failed: 5,
            needs_review: 10,
            rejected: 0,
            credits: 300.0,
            credited: 100,
        })
        .collect()
}

#[test]
fn a_processing_bound_sample_projects_at_its_completion_pace() {
    let f = forecast(
        &Job {
            files: 10_000,
            batches: 100,
            schedule_s: None,
        },
        &processing_bound(1),
        7,
        None,
    )
    .unwrap();
    assert_eq!(f.bound, Bound::Processing);
    // 10,000 runs at 100/s after a 1 s head: about 101 s, plus a tail under 0.5 s.
    assert!(f.time_s.contains(101.3), "{:?}", f.time_s);
    assert!(f.time_s.high - f.time_s.low < 10.0, "{:?}", f.time_s);
    let credits = f.credits.unwrap();
    assert!((credits.estimate - 30_000.0).abs() < 1e-6, "{credits:?}");
    let failed = &f.shares[0];
    assert_eq!(failed.status, "FAILED");
    assert!(failed.share.contains(0.05) && failed.share.low > 0.0);
    assert!(
        f.curve
            .windows(2)
            .all(|w| w[0].at_s.estimate <= w[1].at_s.estimate)
    );
    let p50 = &f.e2e_s[0].1;
    assert!(p50.estimate > 40.0 && p50.estimate < 60.0, "{p50:?}");
}

#[test]
fn a_job_offered_slower_than_the_pace_follows_its_schedule() {
    // The target finishes 100 runs/s, but the job sends one batch of 100 every 2 s:
    // its last batch goes out at 198 s and is done about a second later.
    let job = Job {
        files: 10_000,
        batches: 100,
        schedule_s: Some((0..100).map(|j| j as f64 * 2.0).collect()),
    };
    let f = forecast(&job, &processing_bound(4), 3, None).unwrap();
    assert_eq!(f.bound, Bound::OfferedLoad);
    assert!(
        f.time_s.low > 198.0 && f.time_s.high < 202.0,
        "{:?}",
        f.time_s
    );
    assert!(
        (f.submit_s.estimate - 198.0).abs() < 1e-6,
        "{:?}",
        f.submit_s
    );
    // Each run waits for its own batch only: end to end stays near the sample's.
    let p50 = &f.e2e_s[0].1;
    assert!(p50.estimate < 5.0, "{p50:?}");
}

#[test]
fn runs_without_a_result_are_stated() {
    let mut sample = processing_bound(2);
    sample[4].done_s.truncate(60);
    let job = Job {
        files: 10_000,
        batches: 100,
        schedule_s: None,
    };
    let f = forecast(&job, &sample, 1, None).unwrap();
    assert_eq!(f.sample_terminal, 960);
    assert!(
        f.assumptions
            .iter()
            .any(|a| a.starts_with("40 of the sample's runs had no result")),
        "{:?}",
        f.assumptions
    );
}

#[test]
fn the_same_seed_gives_the_same_forecast() {
    let job = Job {
        files: 5_000,
        batches: 50,
        schedule_s: None,
    };
    let a = forecast(&job, &processing_bound(3), 11, None).unwrap();
    let b = forecast(&job, &processing_bound(3), 11, None).unwrap();
    assert_eq!(a, b);
}

#[test]
fn too_small_a_sample_is_refused_with_the_fix() {
    let e = forecast(
        &Job {
            files: 1,
            batches: 1,
            schedule_s: None,
        },
        &processing_bound(1)[..2],
        1,
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("--sample"), "{e}");
}

#[test]
fn a_gap_in_the_schedule_is_idle_time_not_a_head_start() {
    // The target finishes 100 runs/s a second after a batch arrives. The job sends batch 0,
    // leaves 25 s, then offers 200 runs/s: the pipeline idles from 1 s to 25 s and then
    // falls behind, so the last of its 99 later batches is done about 25 + 99 + 1 s in,
    // and the median run waits about 25 s in the queue the schedule builds.
    let mut schedule = vec![0.0];
    schedule.extend((1..100).map(|j| 25.0 + (j - 1) as f64 * 0.5));
    let job = Job {
        files: 10_000,
        batches: 100,
        schedule_s: Some(schedule),
    };
    let f = forecast(&job, &processing_bound(5), 9, None).unwrap();
    assert_eq!(f.bound, Bound::Processing);
    assert!(f.time_s.contains(125.2), "{:?}", f.time_s);
    assert!(f.time_s.high - f.time_s.low < 15.0, "{:?}", f.time_s);
    // Run 5,000 is in batch 50 (sent at 49.5 s) and has its turn at 25 + 50 s: ≈ 26.5 s.
    let p50 = &f.e2e_s[0].1;
    assert!(p50.contains(26.5), "{p50:?}");
}
