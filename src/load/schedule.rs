//! Schedules. The open model's intended start times come from the phases alone — never
//! from how fast the target answers — so a slow target shows up as latency and lag
//! instead of as a lower request rate (coordinated omission).

use std::time::Duration;

use crate::scenario::Phase;

/// Intended offsets (from the run start) of successive batches for rate phases. Within a
/// phase whose rate goes linearly from `a` to `b` over `T`, the expected count by time t
/// is N(t) = a·t + (b−a)·t²/(2T); the k-th batch is due when N reaches k.
pub struct OpenSchedule {
    phases: Vec<(f64, f64, f64)>,
    phase: usize,
    phase_start: f64,
    count_at_phase_start: f64,
    emitted: u64,
}

impl OpenSchedule {
    pub fn new(phases: &[Phase]) -> OpenSchedule {
        OpenSchedule {
            phases: phases
                .iter()
                .filter_map(|p| match p {
                    Phase::Rate { duration, from, to } => {
                        Some((duration.as_secs_f64(), *from, *to))
                    }
                    Phase::Concurrency { .. } => None,
                })
                .collect(),
            phase: 0,
            phase_start: 0.0,
            count_at_phase_start: 0.0,
            emitted: 0,
        }
    }

    /// How many more batches the schedule would produce (at most `cap`).
    pub fn count_remaining(&mut self, cap: u64) -> u64 {
        let mut n = 0;
        while n < cap && self.next().is_some() {
            n += 1;
        }
        n
    }
}

impl Iterator for OpenSchedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        // The first batch goes at t=0 when the rate is positive there; then one per unit
        // of accumulated expected count.
        let target = self.emitted as f64;
        while let Some(&(t, a, b)) = self.phases.get(self.phase) {
            let total = t * (a + b) / 2.0;
            let local = target - self.count_at_phase_start;
            if local < total {
                let x = if (b - a).abs() < 1e-12 {
                    if a > 0.0 { local / a } else { f64::INFINITY }
                } else {
                    let k = (b - a) / t;
                    // Solve k/2·x² + a·x − local = 0 for the positive root.
                    (-a + (a * a + 2.0 * k * local).max(0.0).sqrt()) / k
                };
                if x.is_finite() && x <= t {
                    self.emitted += 1;
                    return Some(Duration::from_secs_f64(self.phase_start + x));
                }
            }
            self.phase += 1;
            self.phase_start += t;
            self.count_at_phase_start += total;
        }
        None
    }
}

/// Number of active submitters at `elapsed` for closed-model phases.
pub fn closed_level(phases: &[Phase], elapsed: Duration) -> f64 {
    let mut start = Duration::ZERO;
    for p in phases {
        if let Phase::Concurrency { duration, from, to } = p {
            if elapsed < start + *duration {
                let f = (elapsed - start).as_secs_f64() / duration.as_secs_f64().max(1e-9);
                return from + (to - from) * f;
            }
            start += *duration;
        }
    }
    0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(secs: u64, from: f64, to: f64) -> Phase {
        Phase::Rate {
            duration: Duration::from_secs(secs),
            from,
            to,
        }
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let v: Vec<Duration> = OpenSchedule::new(&[rate(2, 5.0, 5.0)]).collect();
        assert_eq!(v.len(), 10);
        assert_eq!(v[0], Duration::ZERO);
        assert_eq!(v[1], Duration::from_millis(200));
        assert_eq!(v[9], Duration::from_millis(1800));
    }

    #[test]
    fn ramp_then_hold_counts_match_the_integral() {
        // Ramp 0→10/s over 10 s gives 50 batches, then 10/s for 5 s gives 50 more.
        let v: Vec<Duration> =
            OpenSchedule::new(&[rate(10, 0.0, 10.0), rate(5, 10.0, 10.0)]).collect();
        assert!((99..=101).contains(&v.len()), "{}", v.len());
        assert!(v.windows(2).all(|w| w[0] <= w[1]));
        // Spacing shrinks during the ramp.
        assert!(v[2] - v[1] > v[40] - v[39]);
    }

    #[test]
    fn closed_level_interpolates() {
        let phases = [Phase::Concurrency {
            duration: Duration::from_secs(10),
            from: 0.0,
            to: 10.0,
        }];
        assert!((closed_level(&phases, Duration::from_secs(5)) - 5.0).abs() < 1e-9);
        assert_eq!(closed_level(&phases, Duration::from_secs(11)), 0.0);
    }
}
