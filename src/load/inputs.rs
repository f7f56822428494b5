//! Builds each batch's inputs from the scenario's templates or feeder rows. Each batch
//! draws from its own seeded stream, so the same seed gives the same inputs whatever
//! order the batches are built in (and whichever shard builds them).

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

use crate::api::shapes::{BatchInput, FileRef};
use crate::scenario::template::Slot;
use crate::scenario::{BatchSize, FileKind, Scenario};

pub struct InputFactory {
    scenario: std::sync::Arc<Scenario>,
}

/// One batch ready to send: the inputs, and the metadata each carries (for the ledger).
pub struct Batch {
    pub inputs: Vec<BatchInput>,
    pub metadata: Vec<Value>,
}

impl InputFactory {
    pub fn new(scenario: &std::sync::Arc<Scenario>) -> InputFactory {
        InputFactory {
            scenario: scenario.clone(),
        }
    }

    fn rng(&self, index: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(
            self.scenario.load.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17),
        )
    }

    pub fn size(&self, index: u64) -> u64 {
        match self.scenario.load.size {
            BatchSize::Fixed(n) => n,
            BatchSize::Uniform(a, b) => self.rng(index).random_range(a..=b),
        }
    }

    pub fn batch(&self, index: u64) -> Batch {
        let s = &self.scenario;
        let n = self.size(index);
        let mut rng = self.rng(index);
        // Consume the size draw so templates do not depend on the size distribution.
        let _: u64 = rng.random();
        let mut inputs = Vec::with_capacity(n as usize);
        let mut metadata = Vec::with_capacity(n as usize);
        for i in 0..n {
            // seq numbers inputs globally; batches may have different sizes, so it is
            // index·1000 + i (1000 being the most a batch can hold): unique and stable.
            let slot = Slot {
                batch: index,
                index: i,
                seq: index * 1000 + i,
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
            if let Some(Value::Object(m)) =
                s.inputs.metadata.as_ref().map(|t| t.render(slot, &mut rng))
            {
                meta.extend(m);
            }
            if let Some(key) = &s.inputs.correlation_key {
                meta.insert(key.clone(), Value::String(format!("{index}:{i}")));
            }
            let secrets = s.inputs.secrets.as_ref().map(|t| t.render(slot, &mut rng));
            let meta = Value::Object(meta);
            metadata.push(meta.clone());
            inputs.push(BatchInput {
                file,
                metadata: Some(meta),
                secrets,
            });
        }
        Batch { inputs, metadata }
    }
}
