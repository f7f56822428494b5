//! Builds each batch's body from the scenario's templates or feeder rows.
//!
//! Every input draws from its own seeded stream (seed, batch, index), so the same seed
//! gives the same inputs whatever order batches are built in, whichever shard builds them,
//! and so the metadata an input was sent with can be rebuilt later, when its result comes
//! back, instead of being kept in memory for the whole run.
//!
//! Fast path: when no template draws random values (no uuid/random/choice) and there is no
//! feeder, a batch differs from any other of the same size only in the digits of its batch
//! number (`{{batch}}`, `{{seq}}` = batch·1000 + index, and the correlation tag). The body
//! is then rendered once with a sentinel batch number and split into a skeleton; each
//! batch's body is the skeleton with its number written in — a few memcpys instead of
//! thousands of allocations. Every body is still unique per batch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

use crate::api::shapes::{self, BatchInput, FileRef};
use crate::scenario::template::Slot;
use crate::scenario::{BatchSize, FileKind, Scenario};

/// A batch number that cannot occur in a real run; its digits mark where a batch's own
/// number goes in a skeleton.
const SENTINEL: u64 = 987_654_321_987;

pub struct InputFactory {
    scenario: Arc<Scenario>,
    skeletons: Option<Mutex<HashMap<u64, Arc<Skeleton>>>>,
}

/// A rendered body cut at each place the batch number appears. For each length of batch
/// number it keeps a laid-out body and the offsets of the number, so filling in a batch is
/// one memcpy of the body plus a few bytes per occurrence.
struct Skeleton {
    pieces: Vec<Vec<u8>>,
    layouts: Mutex<HashMap<usize, Arc<Layout>>>,
}

struct Layout {
    body: Vec<u8>,
    offsets: Vec<usize>,
}

impl Skeleton {
    fn from_body(body: &[u8]) -> Skeleton {
        let needle = SENTINEL.to_string().into_bytes();
        let mut pieces = Vec::new();
        let mut rest = body;
        while let Some(pos) = rest
            .windows(needle.len())
            .position(|w| w == needle.as_slice())
        {
            pieces.push(rest[..pos].to_vec());
            rest = &rest[pos + needle.len()..];
        }
        pieces.push(rest.to_vec());
        Skeleton {
            pieces,
            layouts: Mutex::new(HashMap::new()),
        }
    }

    fn layout(&self, width: usize) -> Arc<Layout> {
        let mut layouts = self.layouts.lock().expect("layouts");
        layouts
            .entry(width)
            .or_insert_with(|| {
                let mut body = Vec::new();
                let mut offsets = Vec::with_capacity(self.pieces.len());
                for (i, piece) in self.pieces.iter().enumerate() {
                    if i > 0 {
                        offsets.push(body.len());
                        body.resize(body.len() + width, b'0');
                    }
                    body.extend_from_slice(piece);
                }
                Arc::new(Layout { body, offsets })
            })
            .clone()
    }

    fn fill(&self, batch: u64) -> Vec<u8> {
        let digits = batch.to_string();
        let layout = self.layout(digits.len());
        let mut out = layout.body.clone();
        for &off in &layout.offsets {
            out[off..off + digits.len()].copy_from_slice(digits.as_bytes());
        }
        out
    }
}

fn mix(seed: u64, batch: u64, index: u64) -> u64 {
    // SplitMix64-style mixing of three words into one seed.
    let mut z = seed
        ^ batch.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ index.wrapping_mul(0xBF58_476D_1CE4_E5B9).rotate_left(31);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl InputFactory {
    pub fn new(scenario: &Arc<Scenario>) -> InputFactory {
        let s = scenario;
        let deterministic = s.inputs.feeder.is_none()
            && s.inputs.file.value.is_deterministic()
            && s.inputs
                .file
                .name
                .as_ref()
                .is_none_or(|t| t.is_deterministic())
            && s.inputs
                .metadata
                .as_ref()
                .is_none_or(|t| t.is_deterministic())
            && s.inputs
                .secrets
                .as_ref()
                .is_none_or(|t| t.is_deterministic());
        InputFactory {
            scenario: scenario.clone(),
            skeletons: deterministic.then(|| Mutex::new(HashMap::new())),
        }
    }

    /// Inputs in batch `index`.
    pub fn size(&self, index: u64) -> u64 {
        match self.scenario.load.size {
            BatchSize::Fixed(n) => n,
            BatchSize::Uniform(a, b) => {
                ChaCha8Rng::seed_from_u64(mix(self.scenario.load.seed, index, u64::MAX))
                    .random_range(a..=b)
            }
        }
    }

    /// The input at (`batch`, `index`), exactly as it is sent.
    pub fn input(&self, batch: u64, index: u64) -> BatchInput {
        let s = &self.scenario;
        let mut rng = ChaCha8Rng::seed_from_u64(mix(s.load.seed, batch, index));
        let slot = Slot {
            batch,
            index,
            // Unique and stable whatever the batch sizes: a batch holds at most 1,000.
            seq: batch * 1000 + index,
        };
        let (file, mut meta) = match &s.inputs.feeder {
            Some(rows) => {
                let row = &rows[(slot.seq % rows.len() as u64) as usize];
                (row.file.clone(), row.metadata.clone())
            }
            None => {
                let f = &s.inputs.file;
                let value = f.value.render(slot, &mut rng);
                let name = f.name.as_ref().map(|t| t.render(slot, &mut rng));
                let file = match f.kind {
                    FileKind::Url => FileRef::Url { url: value, name },
                    FileKind::Id => FileRef::Id { id: value },
                    FileKind::Text => FileRef::Text { text: value, name },
                };
                (file, Map::new())
            }
        };
        if let Some(Value::Object(m)) = s.inputs.metadata.as_ref().map(|t| t.render(slot, &mut rng))
        {
            meta.extend(m);
        }
        if let Some(key) = &s.inputs.correlation_key {
            meta.insert(key.clone(), Value::String(format!("{batch}:{index}")));
        }
        let secrets = s.inputs.secrets.as_ref().map(|t| t.render(slot, &mut rng));
        BatchInput {
            file,
            metadata: Some(Value::Object(meta)),
            secrets,
        }
    }

    /// The metadata input (`batch`, `index`) was sent with, rebuilt from the seed.
    pub fn metadata(&self, batch: u64, index: u64) -> Value {
        self.input(batch, index)
            .metadata
            .unwrap_or_else(|| Value::Object(Map::new()))
    }

    fn render(&self, batch: u64, n: u64) -> Vec<u8> {
        let s = &self.scenario;
        let inputs: Vec<BatchInput> = (0..n).map(|i| self.input(batch, i)).collect();
        shapes::batch_body(s.api_version, &s.workflow, &inputs, s.load.priority)
    }

    /// The serialised body of batch `index` and its number of inputs.
    pub fn body(&self, index: u64) -> (Vec<u8>, u64) {
        let n = self.size(index);
        // Batch 0 cannot use a skeleton: its seq numbers have no batch digits in front.
        match &self.skeletons {
            Some(cache) if index > 0 => {
                let skeleton = {
                    let mut cache = cache.lock().expect("skeleton cache");
                    cache
                        .entry(n)
                        .or_insert_with(|| Arc::new(Skeleton::from_body(&self.render(SENTINEL, n))))
                        .clone()
                };
                (skeleton.fill(index), n)
            }
            _ => (self.render(index, n), n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn factory(inputs: &str) -> InputFactory {
        let yaml = format!(
            "load: {{phases: [{{hold: 1s, rate: 1}}], inputs_per_batch: 5, seed: 3}}\n{inputs}"
        );
        let s = Scenario::from_text(Path::new("t.yaml"), &yaml).unwrap();
        InputFactory::new(&Arc::new(s))
    }

    #[test]
    fn skeleton_bodies_equal_rendered_bodies() {
        let f = factory(
            "inputs:\n  file: {url: \"https://x/{{batch}}/{{index}}.pdf\", name: \"d-{{seq}}\"}\n  metadata: {n: \"{{seq}}\", b: \"{{batch}}\"}\n",
        );
        assert!(f.skeletons.is_some());
        for batch in [1, 7, 42, 123_456] {
            let (fast, n) = f.body(batch);
            assert_eq!(n, 5);
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(f.render(batch, 5)).unwrap()
            );
        }
        let v: Value = serde_json::from_slice(&f.body(7).0).unwrap();
        assert_eq!(
            v["inputs"][3]["metadata"],
            serde_json::json!({"n": 7003, "b": 7, "bp_input": "7:3"})
        );
    }

    #[test]
    fn random_templates_take_the_slow_path_and_replay_per_input() {
        let f = factory("inputs:\n  metadata: {r: \"{{random:1-1000000}}\", u: \"{{uuid}}\"}\n");
        assert!(f.skeletons.is_none());
        let v: Value = serde_json::from_slice(&f.body(2).0).unwrap();
        assert_eq!(v["inputs"][4]["metadata"], f.metadata(2, 4));
        assert_ne!(f.metadata(2, 4), f.metadata(2, 3));
    }
}
