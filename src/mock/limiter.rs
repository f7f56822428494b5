//! Plan rate limits as token buckets, one per category (GET, WRITE, RUN), each refilled at
//! the plan's rate times the time scale, holding one simulated second's worth as burst:
//! the window shrinks with the time scale as every other duration does, so a rehearsal
//! meets its limit after the same number of requests as the real plan would.

use std::time::{Duration, Instant};

use super::profile::{Endpoint, Profile};
use crate::api::Category;

/// The rate-limit category (docs/contract.md §7) an endpoint counts against: the same
/// categories the harness paces itself by.
pub fn category(endpoint: Endpoint) -> Category {
    match endpoint {
        Endpoint::List | Endpoint::Get => Category::Get,
        Endpoint::Batch | Endpoint::Create => Category::Run,
        Endpoint::Update | Endpoint::Cancel | Endpoint::Delete | Endpoint::WebhookEndpoints => {
            Category::Write
        }
    }
}

#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A plan's `per_second` rate run `time_scale` times faster; the burst stays
    /// `burst_s` simulated seconds' worth (at least one token).
    pub fn scaled(per_second: f64, time_scale: f64, burst_s: f64) -> Bucket {
        let burst = (per_second * burst_s).max(1.0);
        let per_second = per_second * time_scale;
        Bucket {
            rate: per_second,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Holds at least `real` of the scaled rate. The scheduler starts runs on ticks a
    /// millisecond or more apart; at a high time scale a burst of a few tokens would cap
    /// processing below the plan's rate by the tick's length.
    pub fn at_least(mut self, real: Duration) -> Bucket {
        self.burst = self.burst.max(self.rate * real.as_secs_f64());
        self.tokens = self.burst;
        self
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.last = now;
    }

    /// Takes one token, or says how long until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }

    /// Time until a token is available, without taking it.
    pub fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }
}

#[derive(Debug)]
pub struct Limiters {
    get: Option<Bucket>,
    write: Option<Bucket>,
    run: Option<Bucket>,
}

impl Limiters {
    pub fn new(profile: &Profile) -> Limiters {
        let scale = if profile.limits.real_time {
            1.0
        } else {
            profile.time_scale
        };
        let mk = |r: Option<f64>| r.map(|r| Bucket::scaled(r, scale, profile.limits.burst_s));
        Limiters {
            get: mk(profile.limits.get_rps),
            write: mk(profile.limits.write_rps),
            run: mk(profile.limits.run_rps),
        }
    }

    pub fn take(&mut self, cat: Category) -> Result<(), Duration> {
        let bucket = match cat {
            Category::Get => &mut self.get,
            Category::Write => &mut self.write,
            Category::Run => &mut self.run,
        };
        match bucket {
            Some(b) => b.take(Instant::now()),
            None => Ok(()),
        }
    }
}

/// The limits enforced, in requests per real second by category (`get_rps`, …): the
/// plan's rates times the time scale, unless the profile counts them in real time.
pub fn enforced(profile: &Profile) -> std::collections::BTreeMap<String, f64> {
    let l = &profile.limits;
    [
        ("get_rps", l.get_rps),
        ("write_rps", l.write_rps),
        ("run_rps", l.run_rps),
    ]
    .into_iter()
    .filter_map(|(k, v)| {
        let scale = if l.real_time { 1.0 } else { profile.time_scale };
        Some((k.to_string(), v? * scale))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_throttles() {
        let mut b = Bucket::scaled(10.0, 1.0, 1.0);
        let now = Instant::now();
        for _ in 0..10 {
            assert!(b.take(now).is_ok());
        }
        let wait = b.take(now).unwrap_err();
        assert!(wait <= Duration::from_millis(101), "{wait:?}");
        assert!(b.take(now + Duration::from_millis(150)).is_ok());
    }

    #[test]
    fn a_time_scale_shortens_the_window_not_the_burst() {
        // 10/s at time scale 100: 1,000 tokens a second, but a burst of one simulated
        // second (10 requests), as the real plan allows.
        let mut b = Bucket::scaled(10.0, 100.0, 1.0);
        let now = Instant::now();
        for _ in 0..10 {
            assert!(b.take(now).is_ok());
        }
        assert!(b.take(now).is_err());
        assert!(b.take(now + Duration::from_millis(2)).is_ok());
    }
}
