//! The load engine: turns the scenario's phases into intended submit times (open model)
//! or a pool of submitters (closed model), builds each batch's inputs, submits them and
//! records the three histograms per submission. Every scheduled batch is either sent and
//! settled or, when the run is interrupted, reported as never sent: nothing is dropped
//! silently.

pub mod inputs;
pub mod schedule;
pub mod submit;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};

use crate::api::client::Client;
pub use crate::metrics::HttpMetrics;
use crate::observe::Ledger;
use crate::scenario::{Model, Phase, Scenario};
use inputs::InputFactory;

/// What the engine needs from the run.
pub struct Engine {
    pub scenario: Arc<Scenario>,
    pub factory: Arc<InputFactory>,
    pub client: Client,
    pub ledger: Arc<Mutex<Ledger>>,
    pub metrics: Arc<Mutex<HttpMetrics>>,
    pub start: Instant,
    /// Which share of the batches this process sends: (index, count).
    pub shard: (u64, u64),
    pub in_flight: Arc<AtomicU64>,
    /// Stops the whole run with a reason: a refused API key ends it at once, since every
    /// further batch would be refused the same way.
    pub halt: watch::Sender<Option<String>>,
    /// Where the API key came from, for the refusal's message ("in EXTEND_API_KEY").
    pub key_source: Arc<str>,
}

impl Engine {
    /// Runs the load to its end (or until `stop` turns true), then waits up to `grace`
    /// for submissions already sent. Returns the number of batches scheduled but never
    /// sent because of the stop.
    pub async fn drive(&self, mut stop: watch::Receiver<bool>, grace: Duration) -> u64 {
        let mut tasks = tokio::task::JoinSet::new();
        let unsent = match self.scenario.load.model {
            Model::Open => self.schedule_open(&mut stop, &mut tasks).await,
            Model::Closed => {
                self.spawn_submitters(&stop, &mut tasks);
                0
            }
        };
        // Wait for what was sent; past the grace period (only on interrupt) abandon it,
        // leaving those batches Pending in the report.
        let wait_all = async { while tasks.join_next().await.is_some() {} };
        if *stop.borrow() {
            let _ = tokio::time::timeout(grace, wait_all).await;
        } else {
            tokio::select! {
                _ = wait_all => {}
                _ = async { let _ = stop.wait_for(|s| *s).await; tokio::time::sleep(grace).await; } => {}
            }
        }
        tasks.abort_all();
        #[cfg(debug_assertions)]
        test_seam::forged_answer(&self.ledger);
        unsent
    }

    /// The open model: one task per batch at its intended time. Returns the batches left
    /// unsent by a stop.
    async fn schedule_open(
        &self,
        stop: &mut watch::Receiver<bool>,
        tasks: &mut tokio::task::JoinSet<()>,
    ) -> u64 {
        let factory = self.factory.clone();
        let sem = Arc::new(Semaphore::new(self.scenario.load.max_in_flight));
        let load = &self.scenario.load;
        let limit = load.batches.unwrap_or(u64::MAX);
        let mut unsent = 0;
        let mut offsets = schedule::OpenSchedule::new(&load.phases);
        let mut index = 0u64;
        while index < limit {
            let Some(offset) = offsets.next() else { break };
            let this = index;
            index += 1;
            if this % self.shard.1 != self.shard.0 {
                continue;
            }
            let this = this * self.stride();
            let intended = self.start + offset;
            // Biased, stop first: a batch whose time has already come must not race a
            // stop that came before it (a key refused at registration sends nothing).
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => { unsent += 1; break; }
                _ = tokio::time::sleep_until(intended.into()) => {}
            }
            // The cap on in-flight requests is where a saturated generator waits;
            // the wait shows up as schedule lag, never as a lost batch.
            let permit = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => { unsent += 1; break; }
                p = sem.clone().acquire_owned() => p.expect("semaphore open"),
            };
            // Registered here, in schedule order, before the task that builds
            // and sends it exists: its answer always finds its record.
            self.ledger
                .lock()
                .expect("ledger")
                .add_batch(this, intended, factory.size(this));
            let job = self.job(factory.clone(), this, intended);
            tasks.spawn(async move {
                job.await;
                drop(permit);
            });
            // Reap finished tasks so the set stays small on long runs.
            while tasks.try_join_next().is_some() {}
        }
        if *stop.borrow() {
            unsent += offsets.count_remaining(limit.saturating_sub(index)) / self.shard.1.max(1);
        }
        unsent
    }

    /// The closed model: as many submitters as the highest level, each sending its next
    /// batch as soon as its last one is answered, while the phase's level admits it.
    fn spawn_submitters(&self, stop: &watch::Receiver<bool>, tasks: &mut tokio::task::JoinSet<()>) {
        let factory = self.factory.clone();
        let load = &self.scenario.load;
        let limit = load.batches.unwrap_or(u64::MAX);
        let next = Arc::new(AtomicU64::new(0));
        let end = self.start + load.duration();
        let max_workers = load
            .phases
            .iter()
            .map(|p| match p {
                Phase::Concurrency { from, to, .. } => from.max(*to).ceil() as usize,
                Phase::Rate { .. } => 0,
            })
            .max()
            .unwrap_or(0);
        for worker in 0..max_workers {
            let next = next.clone();
            let mut stop = stop.clone();
            let engine = self.clone_parts();
            let factory = factory.clone();
            let phases = load.phases.clone();
            let start = self.start;
            tasks.spawn(async move {
                loop {
                    let now = Instant::now();
                    if now >= end || *stop.borrow() {
                        break;
                    }
                    // Each of N shards runs its share of the workers.
                    let level = (schedule::closed_level(&phases, now - start)
                        / engine.shard.1.max(1) as f64)
                        .ceil();
                    if (worker as f64) >= level {
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                            _ = stop.wait_for(|s| *s) => break,
                        }
                        continue;
                    }
                    // Closed model: the next batch is intended the moment the
                    // submitter is free, so lag is ~0 by construction. Its number
                    // is drawn and registered under one lock, so batches enter the
                    // ledger in schedule order whichever submitter is quicker.
                    let intended = Instant::now();
                    let index = {
                        let mut ledger = engine.ledger.lock().expect("ledger");
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index < limit && index % engine.shard.1 == engine.shard.0 {
                            let job_index = index * engine.stride();
                            ledger.add_batch(job_index, intended, factory.size(job_index));
                        }
                        index
                    };
                    if index >= limit {
                        break;
                    }
                    if index % engine.shard.1 != engine.shard.0 {
                        continue;
                    }
                    let index = index * engine.stride();
                    engine.job(factory.clone(), index, intended).await;
                }
            });
        }
    }

    /// A forecast's sample sends every `stride`-th batch of the job, numbered as in the
    /// job, so its inputs (and feeder rows) are the ones the job would send there.
    fn stride(&self) -> u64 {
        self.scenario.sample.as_ref().map_or(1, |s| s.stride.max(1))
    }

    fn clone_parts(&self) -> Engine {
        Engine {
            scenario: self.scenario.clone(),
            factory: self.factory.clone(),
            client: self.client.clone(),
            ledger: self.ledger.clone(),
            metrics: self.metrics.clone(),
            start: self.start,
            shard: self.shard,
            in_flight: self.in_flight.clone(),
            halt: self.halt.clone(),
            key_source: self.key_source.clone(),
        }
    }

    /// Builds and submits one registered batch, and settles its outcome.
    fn job(
        &self,
        factory: Arc<InputFactory>,
        index: u64,
        intended: Instant,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let engine = self.clone_parts();
        async move {
            #[cfg(debug_assertions)]
            test_seam::slow_body(index).await;
            let (body, _) = factory.body(index);
            engine.in_flight.fetch_add(1, Ordering::Relaxed);
            let result = submit::submit(
                &engine.client,
                bytes::Bytes::from(body),
                engine.scenario.load.max_throttle_retries,
                intended,
                &engine.metrics,
                engine.scenario.api_version,
            )
            .await;
            engine.in_flight.fetch_sub(1, Ordering::Relaxed);
            if let crate::observe::BatchOutcome::Accepted { batch_id } = &result.outcome {
                tracing::debug!(index, batch_id = batch_id.as_str(), "batch accepted");
            }
            if let Some(refusal) = &result.auth_refused {
                let why = format!("the API key {} was refused: {refusal}", engine.key_source);
                engine.halt.send_if_modified(|current| {
                    current.is_none() && {
                        *current = Some(why);
                        true
                    }
                });
            }
            let mut ledger = engine.ledger.lock().expect("ledger");
            ledger.add_findings(result.findings);
            ledger.settle_batch(index, result.outcome, result.answered, result.throttles);
        }
    }
}

/// Debug builds only, for tests. `BATCHPROOF_TEST_SLOW_BODY_MS=N` makes every
/// even-numbered batch take N ms longer to build, so batches reach the target (and the
/// ledger) out of schedule order, deterministically, as they do on a loaded machine.
#[cfg(debug_assertions)]
mod test_seam {
    use std::sync::OnceLock;
    use std::time::Duration;

    pub async fn slow_body(index: u64) {
        static DELAY: OnceLock<Option<Duration>> = OnceLock::new();
        let delay = DELAY.get_or_init(|| {
            std::env::var("BATCHPROOF_TEST_SLOW_BODY_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis)
        });
        if let Some(d) = delay
            && index % 2 == 0
        {
            tokio::time::sleep(*d).await;
        }
    }

    /// `BATCHPROOF_TEST_FORGE_ANSWER=1` settles a batch that was never registered, the
    /// state the accounting promises never to reach, to prove it is reported as a
    /// harness fault end to end.
    pub fn forged_answer(ledger: &std::sync::Mutex<crate::observe::Ledger>) {
        if std::env::var_os("BATCHPROOF_TEST_FORGE_ANSWER").is_some() {
            ledger.lock().expect("ledger").settle_batch(
                u64::MAX,
                crate::observe::BatchOutcome::Throttled,
                std::time::Instant::now(),
                0,
            );
        }
    }
}
