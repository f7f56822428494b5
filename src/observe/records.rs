//! Compact per-input records, sized for a bulk job of a million runs: 32 bytes per input,
//! run ids stored once in one text arena (no `String` per input), found again through a
//! table of input numbers, and event ids kept as 128-bit digests. The ledger holds one
//! `Records`; nothing else stores per-input data.

use std::hash::{BuildHasher, Hash, Hasher};

use crate::api::RunStatus;

/// Marks an absent time or run in the packed fields.
const NONE: u32 = u32::MAX;

/// What the ledger keeps of one input: when each channel first saw it terminal (µs after
/// the run's start), with which status, its run id (an index into the arena), and the
/// highest status rank seen per channel (to detect statuses going backwards).
#[derive(Debug, Clone, Copy)]
pub struct InputRecord {
    webhook_us: u64,
    poll_us: u64,
    /// Position of the input's batch in the ledger.
    pub batch: u32,
    run: u32,
    webhook_status: Option<RunStatus>,
    poll_status: Option<RunStatus>,
    pub max_rank: [u8; 2],
    pub last_status: Option<RunStatus>,
    /// Whether this input's credits were counted.
    pub credited: bool,
    /// Whether its run was seen NEEDS_REVIEW on any channel, reviewed since or not.
    pub needed_review: bool,
}

/// A terminal observation: status and µs after the run's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenAt {
    pub status: RunStatus,
    pub micros: u64,
}

impl InputRecord {
    pub fn new(batch: u32) -> InputRecord {
        InputRecord {
            webhook_us: 0,
            poll_us: 0,
            batch,
            run: NONE,
            webhook_status: None,
            poll_status: None,
            max_rank: [0; 2],
            last_status: None,
            credited: false,
            needed_review: false,
        }
    }

    pub fn webhook(&self) -> Option<SeenAt> {
        self.webhook_status.map(|status| SeenAt {
            status,
            micros: self.webhook_us,
        })
    }

    pub fn poll(&self) -> Option<SeenAt> {
        self.poll_status.map(|status| SeenAt {
            status,
            micros: self.poll_us,
        })
    }

    /// Sets the channel's first terminal observation; false if it already had one.
    pub fn mark(&mut self, channel: super::Channel, seen: SeenAt) -> bool {
        let (slot, at) = match channel {
            super::Channel::Webhook => (&mut self.webhook_status, &mut self.webhook_us),
            super::Channel::Poll => (&mut self.poll_status, &mut self.poll_us),
        };
        if slot.is_some() {
            return false;
        }
        self.needed_review |= seen.status == RunStatus::NeedsReview;
        *slot = Some(seen.status);
        *at = seen.micros;
        true
    }

    /// A review's outcome seen after NEEDS_REVIEW on `channel`, or NEEDS_REVIEW after its
    /// outcome when deliveries crossed: one legitimate sequence, not a duplicate. The
    /// record keeps the review's outcome, and the time of the first terminal status (the
    /// run's end-to-end latency ends at NEEDS_REVIEW, as the SDK pollers' does). Returns
    /// false when `status` does not follow a review.
    pub fn follow_review(&mut self, channel: super::Channel, status: RunStatus) -> bool {
        let slot = match channel {
            super::Channel::Webhook => &mut self.webhook_status,
            super::Channel::Poll => &mut self.poll_status,
        };
        let outcome = |s: RunStatus| matches!(s, RunStatus::Rejected | RunStatus::Processed);
        let crossed = matches!(*slot, Some(s) if outcome(s)) && status == RunStatus::NeedsReview;
        self.needed_review |= crossed;
        match *slot {
            Some(RunStatus::NeedsReview) if outcome(status) => {
                *slot = Some(status);
                true
            }
            Some(s) if outcome(s) && status == RunStatus::NeedsReview => true,
            _ => false,
        }
    }

    pub fn first_seen(&self) -> Option<(SeenAt, super::Channel)> {
        use super::Channel;
        match (self.webhook(), self.poll()) {
            (Some(w), Some(p)) if p.micros < w.micros => Some((p, Channel::Poll)),
            (Some(w), _) => Some((w, Channel::Webhook)),
            (None, Some(p)) => Some((p, Channel::Poll)),
            (None, None) => None,
        }
    }

    pub fn has_run(&self) -> bool {
        self.run != NONE
    }
}

/// Run ids, each stored once: the concatenated text, where each id ends, and a table of
/// input numbers keyed by their run id's text.
#[derive(Default)]
pub struct RunIds {
    text: String,
    ends: Vec<u32>,
    table: hashbrown::HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl RunIds {
    fn get(&self, k: u32) -> &str {
        let k = k as usize;
        let start = if k == 0 { 0 } else { self.ends[k - 1] as usize };
        &self.text[start..self.ends[k] as usize]
    }

    /// The run id of `input`, if it has one.
    pub fn of<'a>(&'a self, input: &InputRecord) -> Option<&'a str> {
        input.has_run().then(|| self.get(input.run))
    }

    /// The input number `run_id` belongs to.
    pub fn find(&self, inputs: &[InputRecord], run_id: &str) -> Option<u64> {
        let hash = self.hasher.hash_one(run_id);
        self.table
            .find(hash, |&seq| self.get(inputs[seq as usize].run) == run_id)
            .map(|&seq| u64::from(seq))
    }

    /// Gives input `seq` the run id `run_id`. The input must have none yet.
    pub fn link(&mut self, inputs: &mut [InputRecord], seq: u64, run_id: &str) {
        debug_assert!(!inputs[seq as usize].has_run());
        self.text.push_str(run_id);
        let k = self.ends.len() as u32;
        self.ends.push(self.text.len() as u32);
        inputs[seq as usize].run = k;
        let hash = self.hasher.hash_one(run_id);
        let (ends, text, hasher) = (&self.ends, &self.text, &self.hasher);
        let id_of = |seq: u32| {
            let k = inputs[seq as usize].run as usize;
            let start = if k == 0 { 0 } else { ends[k - 1] as usize };
            &text[start..ends[k] as usize]
        };
        self.table
            .insert_unique(hash, seq as u32, |&s| hasher.hash_one(id_of(s)));
    }

    /// Bytes held, for the memory figures.
    pub fn heap_bytes(&self) -> usize {
        self.text.capacity() + self.ends.capacity() * 4 + self.table.capacity() * 5
    }
}

/// A 128-bit digest of an id: sets of them de-duplicate events without keeping each id's
/// text (two SipHash passes with different keys; a collision among a million ids has a
/// probability near 10⁻²⁶).
pub fn digest(id: &str) -> u128 {
    let half = |salt: u8| {
        let mut h = std::hash::DefaultHasher::new();
        salt.hash(&mut h);
        id.hash(&mut h);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_record_is_32_bytes() {
        assert_eq!(std::mem::size_of::<InputRecord>(), 32);
    }

    #[test]
    fn run_ids_round_trip_through_the_arena() {
        let mut inputs: Vec<InputRecord> = (0..1000).map(|_| InputRecord::new(0)).collect();
        let mut ids = RunIds::default();
        for seq in (0..1000).rev() {
            ids.link(&mut inputs, seq, &format!("workflow_run_{seq:021}"));
        }
        for seq in 0..1000u64 {
            let id = format!("workflow_run_{seq:021}");
            assert_eq!(ids.find(&inputs, &id), Some(seq));
            assert_eq!(ids.of(&inputs[seq as usize]), Some(id.as_str()));
        }
        assert_eq!(ids.find(&inputs, "workflow_run_nope"), None);
        assert_ne!(digest("evt_a"), digest("evt_b"));
    }
}

/// The distinct terminal events one run had: one bit per status, and a flag once a status
/// came twice. Four bytes per run, so the rule can be judged at a million runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TerminalEvents(u32);

impl TerminalEvents {
    const REPEATED: u32 = 1 << 31;

    fn bit(status: RunStatus) -> u32 {
        1 << (status as u32)
    }

    pub fn add(&mut self, status: RunStatus) {
        if self.0 & Self::bit(status) != 0 {
            self.0 |= Self::REPEATED;
        }
        self.0 |= Self::bit(status);
    }

    /// Distinct terminal statuses announced.
    pub fn count(self) -> u32 {
        (self.0 & !Self::REPEATED).count_ones()
    }

    pub fn repeated(self) -> bool {
        self.0 & Self::REPEATED != 0
    }

    /// One terminal event, or a review's legitimate pair: NEEDS_REVIEW, then the review's
    /// outcome (REJECTED, or PROCESSED after approval), whatever order they arrived in.
    /// A status announced twice, or two different final outcomes, is not.
    pub fn legitimate(self) -> bool {
        if self.repeated() {
            return false;
        }
        let review = Self::bit(RunStatus::NeedsReview);
        match self.count() {
            1 => true,
            2 => {
                self.0 & review != 0
                    && [RunStatus::Rejected, RunStatus::Processed]
                        .iter()
                        .any(|s| self.0 == review | Self::bit(*s))
            }
            _ => false,
        }
    }

    /// The statuses announced, for evidence.
    pub fn statuses(self) -> Vec<RunStatus> {
        RunStatus::ALL
            .iter()
            .copied()
            .filter(|s| self.0 & Self::bit(*s) != 0)
            .collect()
    }
}
