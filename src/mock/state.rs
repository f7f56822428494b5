//! The mock's state: runs, the batch index, the priority queue and the eviction order.
//! One struct behind one `std::sync::Mutex` (see `Shared`); every method is a short,
//! non-blocking critical section so HTTP handlers and the scheduler never wait long.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::api::RunStatus;

/// The store's maps hash with foldhash: keys are the mock's own ids and sequence numbers,
/// so SipHash's flooding resistance buys nothing and costs a tenth of ingest.
type Map<K, V> = hashbrown::HashMap<K, V>;

/// What processing will decide for a run; drawn from the seed at creation so a seed
/// replays the same outcomes whatever the timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Processed,
    Failed(&'static str),
    /// Needs review; the reviewer's decision, drawn with the outcome: approve (→
    /// PROCESSED) or reject (→ REJECTED).
    NeedsReview {
        approve: bool,
    },
    /// Cancelled by the client developer's steering convention (see `steer`), as if a
    /// user had cancelled it while it was processing.
    Cancelled,
}

/// The documented failure reasons processing draws from (docs/contract.md §5);
/// `INVALID_WORKFLOW` only comes by steering (see `steer::FAILURE_REASONS`).
pub const FAILURE_REASONS: [&str; 3] = [
    "INTERNAL_ERROR",
    "DOCUMENT_PROCESSOR_ERROR",
    "FAILED_TO_PROCESS_FILE",
];

/// The document a run was made from.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFile {
    pub id: String,
    pub name: String,
    /// PDF, IMG, CSV, TXT, DOCX, EXCEL, XML or HTML.
    pub kind: &'static str,
    /// Where the document came from (URL, file id or text); outputs derive from it.
    pub source: String,
    pub page_count: u32,
}

#[derive(Debug, Clone)]
pub struct Run {
    pub seq: u64,
    pub id: String,
    pub workflow: usize,
    pub version: String,
    pub batch_id: Option<String>,
    pub status: RunStatus,
    pub priority: u8,
    pub metadata: super::raw::Metadata,
    pub name: String,
    pub files: Vec<RunFile>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub outcome: Outcome,
    /// Real processing time (already divided by the time scale).
    pub duration: Duration,
    /// Set when the status_regression defect applies to this run.
    pub regress: bool,
    /// Set when the missing_terminal_webhook defect applies to this run.
    pub mute_terminal: bool,
    /// When a NEEDS_REVIEW run is reviewed (real time after it reaches NEEDS_REVIEW);
    /// `None`: only on demand, through `/_mock/runs/{id}/review`.
    pub review_after: Option<Duration>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub rejection_note: Option<String>,
    /// A failure message chosen by steering, instead of the simulated one.
    pub failure_message: Option<String>,
}

impl Run {
    pub fn failure(&self) -> Option<(&'static str, String)> {
        match (self.status, self.outcome) {
            (RunStatus::Failed, Outcome::Failed(reason)) => Some((
                reason,
                self.failure_message.clone().unwrap_or_else(|| {
                    format!(
                        "Simulated failure ({reason}) processing {}",
                        self.files
                            .first()
                            .map(|f| f.name.as_str())
                            .unwrap_or("input")
                    )
                }),
            )),
            _ => None,
        }
    }
}

/// Filters and order of a List Workflow Runs call.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub status: Option<RunStatus>,
    pub workflow_id: Option<usize>,
    pub batch_id: Option<String>,
    pub file_name_contains: Option<String>,
    pub sort_by_created: bool,
    pub ascending: bool,
    /// Exclusive cursor: (sort key in nanoseconds, seq) of the last run already returned.
    pub after: Option<(i64, u64)>,
    pub page_size: usize,
}

/// The alphabet of the mock's id tails (URL-safe, 6 bits a character).
pub const ID_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/// Appends `n` random characters of the id alphabet: ten from each random u64, six bits
/// a character (the alphabet has 64, so each is uniform).
pub fn push_random_chars(out: &mut String, n: usize, rng: &mut impl rand::Rng) {
    let mut left = n;
    while left > 0 {
        let mut bits: u64 = rng.random();
        for _ in 0..left.min(10) {
            out.push(ID_ALPHABET[(bits & 63) as usize] as char);
            bits >>= 6;
        }
        left = left.saturating_sub(10);
    }
}

/// Run ids that carry their run's sequence number, so a Get finds its run without an id
/// index: `workflow_run_` + 11 characters encoding a keyed permutation of the seq + 10
/// random characters. A lookup decodes the seq and then checks the whole id against the
/// run's, so a made-up or stale id (after a reset) is still not found. The key is drawn
/// per mock, so ids look random and differ between mocks.
#[derive(Debug, Clone, Copy)]
pub struct RunIds {
    key: u64,
}

impl Default for RunIds {
    fn default() -> RunIds {
        RunIds {
            key: rand::random(),
        }
    }
}

const RUN_ID_PREFIX: &str = "workflow_run_";
const SEQ_CHARS: usize = 11;
const TAIL_CHARS: usize = 10;
/// Odd, so multiplying by it is a bijection on u64; and its inverse.
const MIX: u64 = 0x9E37_79B9_7F4A_7C15;
const MIX_INVERSE: u64 = {
    let mut inv = MIX;
    let mut i = 0;
    while i < 6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(MIX.wrapping_mul(inv)));
        i += 1;
    }
    inv
};

impl RunIds {
    pub fn id(&self, seq: u64, rng: &mut impl rand::Rng) -> String {
        let mut x = (seq ^ self.key).wrapping_mul(MIX);
        x ^= x >> 32;
        let mut id = String::with_capacity(RUN_ID_PREFIX.len() + SEQ_CHARS + TAIL_CHARS);
        id.push_str(RUN_ID_PREFIX);
        id.extend((0..SEQ_CHARS).map(|i| ID_ALPHABET[((x >> (6 * i)) & 63) as usize] as char));
        push_random_chars(&mut id, TAIL_CHARS, rng);
        id
    }

    /// The seq an id names, if it is one of this mock's run ids at all.
    pub fn seq(&self, id: &str) -> Option<u64> {
        let tail = id.strip_prefix(RUN_ID_PREFIX)?.as_bytes();
        if tail.len() != SEQ_CHARS + TAIL_CHARS {
            return None;
        }
        let mut x = 0u64;
        for (i, c) in tail[..SEQ_CHARS].iter().enumerate() {
            let v = ID_ALPHABET.iter().position(|a| a == c)? as u64;
            if i == SEQ_CHARS - 1 && v >> 4 != 0 {
                return None;
            }
            x |= v << (6 * i);
        }
        x ^= x >> 32;
        Some(x.wrapping_mul(MIX_INVERSE) ^ self.key)
    }
}

/// Runs are keyed by their sequence number, which the scheduler, the queue and the
/// eviction order all speak; a run id names its seq (see `RunIds`).
#[derive(Debug, Default)]
pub struct Store {
    /// Boxed: the table moves 8 bytes per run when it grows, not the whole run.
    runs: Map<u64, Box<Run>>,
    pub ids: RunIds,
    batches: Map<String, VecDeque<u64>>,
    /// (priority, seq): lower priority number first, FIFO within a priority.
    queue: BinaryHeap<Reverse<(u8, u64)>>,
    finished: VecDeque<(Instant, u64)>,
    /// CANCELLING runs and when they become CANCELLED, in that order (one fixed delay).
    cancelling: VecDeque<(Instant, u64)>,
    next_seq: u64,
    /// Bumped by reset, so the scheduler drops work it holds for runs that are gone.
    pub generation: u64,
    pub paused: bool,
    pub batches_created: u64,
    pub runs_created: u64,
    pub runs_evicted: u64,
}

impl Store {
    /// Reserves `n` consecutive sequence numbers; returns the first.
    pub fn reserve_seqs(&mut self, n: u64) -> u64 {
        let first = self.next_seq + 1;
        self.next_seq += n;
        first
    }

    pub fn insert(&mut self, run: Run, ignore_priority: bool) {
        if let Some(batch) = &run.batch_id {
            self.batches
                .entry(batch.clone())
                .or_default()
                .push_back(run.seq);
        }
        self.insert_run(run, ignore_priority);
    }

    /// Inserts a batch's runs under one lock: the batch index is looked up once and the
    /// maps grow once.
    pub fn insert_batch(&mut self, batch_id: &str, runs: Vec<Run>, ignore_priority: bool) {
        self.runs.reserve(runs.len());
        self.queue.reserve(runs.len());
        let seqs = self.batches.entry(batch_id.to_string()).or_default();
        seqs.extend(runs.iter().map(|r| r.seq));
        for run in runs {
            self.insert_run(run, ignore_priority);
        }
        self.batches_created += 1;
    }

    fn insert_run(&mut self, run: Run, ignore_priority: bool) {
        if run.status == RunStatus::Pending {
            let prio = if ignore_priority { 0 } else { run.priority };
            self.queue.push(Reverse((prio, run.seq)));
        }
        self.runs_created += 1;
        self.runs.insert(run.seq, Box::new(run));
    }

    fn seq_of(&self, id: &str) -> Option<u64> {
        let seq = self.ids.seq(id)?;
        self.runs.get(&seq).filter(|r| r.id == id).map(|_| seq)
    }

    pub fn get(&self, id: &str) -> Option<&Run> {
        self.runs.get(&self.seq_of(id)?).map(|r| &**r)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Run> {
        let seq = self.seq_of(id)?;
        self.runs.get_mut(&seq).map(|r| &mut **r)
    }

    pub fn by_seq_mut(&mut self, seq: u64) -> Option<&mut Run> {
        self.runs.get_mut(&seq).map(|r| &mut **r)
    }

    /// Takes the next queued run (lowest priority number, then oldest) off the queue.
    pub fn pop_queued(&mut self) -> Option<u64> {
        loop {
            let Reverse((_, seq)) = self.queue.pop()?;
            // Cancelled or deleted runs may still sit in the queue; skip them.
            if self
                .runs
                .get(&seq)
                .is_some_and(|r| r.status == RunStatus::Pending)
            {
                return Some(seq);
            }
        }
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Moves a PENDING or PROCESSING run to CANCELLING; it becomes CANCELLED at `due`
    /// (`settle_cancelled`). Returns the run as it now is, or its status when it cannot
    /// be cancelled.
    pub fn cancel(
        &mut self,
        id: &str,
        due: Instant,
        wall: DateTime<Utc>,
    ) -> Option<Result<Run, RunStatus>> {
        let run = self.get_mut(id)?;
        if !matches!(run.status, RunStatus::Pending | RunStatus::Processing) {
            return Some(Err(run.status));
        }
        run.status = RunStatus::Cancelling;
        run.updated_at = wall;
        let snapshot = run.clone();
        self.cancelling.push_back((due, snapshot.seq));
        Some(Ok(snapshot))
    }

    /// CANCELLING runs whose time has come become CANCELLED; returns them, and when the
    /// next one is due.
    pub fn settle_cancelled(
        &mut self,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> (Vec<Run>, Option<Instant>) {
        let mut done = Vec::new();
        while let Some(&(due, seq)) = self.cancelling.front() {
            if due > now {
                return (done, Some(due));
            }
            self.cancelling.pop_front();
            if let Some(run) = self.by_seq_mut(seq)
                && run.status == RunStatus::Cancelling
            {
                run.status = RunStatus::Cancelled;
                run.updated_at = wall;
                run.end_time = Some(wall);
                done.push(run.clone());
                self.mark_finished(seq, now);
            }
        }
        (done, None)
    }

    /// Reviews a NEEDS_REVIEW run: approved → PROCESSED, rejected → REJECTED. Returns the
    /// run as it now is, or its status when it is not awaiting review.
    pub fn review(
        &mut self,
        id: &str,
        approve: bool,
        note: Option<String>,
        wall: DateTime<Utc>,
    ) -> Option<Result<Run, RunStatus>> {
        let run = self.get_mut(id)?;
        if run.status != RunStatus::NeedsReview {
            return Some(Err(run.status));
        }
        run.status = if approve {
            RunStatus::Processed
        } else {
            RunStatus::Rejected
        };
        run.reviewed_at = Some(wall);
        run.updated_at = wall;
        if !approve {
            run.rejection_note = Some(note.unwrap_or_else(|| "Rejected in review".into()));
        }
        Some(Ok(run.clone()))
    }

    /// Records that a run reached a terminal status, for eviction.
    pub fn mark_finished(&mut self, seq: u64, now: Instant) {
        self.finished.push_back((now, seq));
    }

    /// Evicts the oldest terminal runs beyond the count limit or the age limit. Returns
    /// them, so the caller frees them after letting go of the lock.
    pub fn evict(&mut self, max_finished: usize, max_age: Duration, now: Instant) -> Vec<Run> {
        let mut evicted = Vec::new();
        while let Some(&(at, seq)) = self.finished.front() {
            let too_many = self.finished.len() > max_finished;
            let too_old = now.duration_since(at) > max_age;
            if !(too_many || too_old) {
                break;
            }
            self.finished.pop_front();
            evicted.extend(self.remove_seq(seq));
            self.runs_evicted += 1;
        }
        evicted
    }

    fn remove_seq(&mut self, seq: u64) -> Option<Run> {
        let run = *self.runs.remove(&seq)?;
        if let Some(batch) = &run.batch_id
            && let Some(seqs) = self.batches.get_mut(batch)
        {
            // Eviction is oldest-first and batches are created in seq order, so the run is
            // almost always at the front.
            if seqs.front() == Some(&seq) {
                seqs.pop_front();
            } else if let Some(pos) = seqs.iter().position(|s| *s == seq) {
                seqs.remove(pos);
            }
            if seqs.is_empty() {
                self.batches.remove(batch);
            }
        }
        Some(run)
    }

    pub fn delete(&mut self, id: &str) -> Option<Run> {
        let seq = self.seq_of(id)?;
        self.remove_seq(seq)
    }

    pub fn reset(&mut self) {
        let (generation, ids) = (self.generation + 1, self.ids);
        *self = Store::default();
        self.generation = generation;
        // Seqs start over; the random tails keep old ids from naming new runs.
        self.ids = ids;
    }

    /// One page of runs matching `q`, and whether more follow.
    pub fn list(&self, q: &ListQuery) -> (Vec<&Run>, bool) {
        let key = |r: &Run| Store::sort_key(r, q.sort_by_created);
        let matches = |r: &&Run| {
            q.status.is_none_or(|s| r.status == s)
                && q.workflow_id.is_none_or(|w| r.workflow == w)
                && q.batch_id
                    .as_ref()
                    .is_none_or(|b| r.batch_id.as_deref() == Some(b))
                && q.file_name_contains
                    .as_ref()
                    .is_none_or(|needle| r.files.iter().any(|f| f.name.contains(needle.as_str())))
        };
        let mut candidates: Vec<&Run> = match &q.batch_id {
            // The batch index keeps a batchId filter cheap however many runs exist.
            Some(b) => self
                .batches
                .get(b)
                .map(|seqs| {
                    seqs.iter()
                        .filter_map(|s| self.runs.get(s).map(|r| &**r))
                        .filter(matches)
                        .collect()
                })
                .unwrap_or_default(),
            None => self.runs.values().map(|r| &**r).filter(matches).collect(),
        };
        candidates.sort_by_key(|r| key(r));
        if !q.ascending {
            candidates.reverse();
        }
        let start = match q.after {
            None => 0,
            Some(cursor) => candidates
                .iter()
                .position(|r| {
                    if q.ascending {
                        key(r) > cursor
                    } else {
                        key(r) < cursor
                    }
                })
                .unwrap_or(candidates.len()),
        };
        let end = (start + q.page_size).min(candidates.len());
        let more = end < candidates.len();
        (candidates[start..end].to_vec(), more)
    }

    pub fn sort_key(run: &Run, by_created: bool) -> (i64, u64) {
        let t = if by_created {
            run.created_at
        } else {
            run.updated_at
        };
        (t.timestamp_nanos_opt().unwrap_or(i64::MAX), run.seq)
    }

    /// Runs per status, and how many batches are known.
    pub fn summary(&self) -> (BTreeMap<&'static str, u64>, usize) {
        let mut by_status = BTreeMap::new();
        for s in RunStatus::ALL {
            by_status.insert(s.as_str(), 0);
        }
        for r in self.runs.values() {
            *by_status.entry(r.status.as_str()).or_default() += 1;
        }
        (by_status, self.batches.len())
    }

    pub fn batch_summary(&self, batch: &str) -> Option<BTreeMap<&'static str, u64>> {
        let seqs = self.batches.get(batch)?;
        let mut by_status = BTreeMap::new();
        for seq in seqs {
            if let Some(r) = self.runs.get(seq) {
                *by_status.entry(r.status.as_str()).or_default() += 1;
            }
        }
        Some(by_status)
    }

    pub fn len(&self) -> usize {
        self.runs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_name_their_seq_and_nothing_else() {
        let ids = RunIds::default();
        let mut rng = rand::rng();
        for seq in [1, 2, 999, 1 << 40, u64::MAX] {
            let id = ids.id(seq, &mut rng);
            assert_eq!(id.len(), "workflow_run_".len() + 21, "{id}");
            assert_eq!(ids.seq(&id), Some(seq), "{id}");
        }
        // Neighbouring seqs do not give neighbouring ids.
        let (a, b) = (ids.id(41, &mut rng), ids.id(42, &mut rng));
        assert_ne!(a[13..20], b[13..20]);
        assert_eq!(ids.seq("workflow_run_short"), None);
        assert_eq!(ids.seq("workflow_run_!!!!!!!!!!!!!!!!!!!!!"), None);
        assert_eq!(ids.seq("batch_AAAAAAAAAAAAAAAAAAAAA"), None);
    }
}
