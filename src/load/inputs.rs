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
//!
//! General path (random draws or a feeder): what does not change between inputs is laid
//! out once (`InputPlan`), and each input is written straight into the body from its own
//! seeded stream, with no `Value` and no allocation per input. Both paths are held byte
//! for byte to `render`, which builds each input and serialises the batch.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

use crate::api::shapes::{self, BatchInput, FileParts, FileRef};
use crate::scenario::template::{Slot, ValueTemplate};
use crate::scenario::{BatchSize, FileKind, Scenario};

/// A batch number that cannot occur in a real run; its digits mark where a batch's own
/// number goes in a skeleton.
const SENTINEL: u64 = 987_654_321_987;

pub struct InputFactory {
    scenario: Arc<Scenario>,
    skeletons: Option<Mutex<HashMap<u64, Arc<Skeleton>>>>,
    /// A body with no inputs, cut where the inputs go.
    frame: (Vec<u8>, Vec<u8>),
    plan: InputPlan,
    /// The largest body written so far, so the next one is allocated once.
    size_hint: AtomicUsize,
}

/// Buffers one batch's inputs reuse, so writing an input allocates nothing once they
/// have grown.
#[derive(Default)]
struct Scratch {
    value: String,
    name: String,
    meta: Vec<u8>,
    spans: Vec<Range<usize>>,
}

/// One piece of an input's metadata object as written: fixed bytes (keys, commas, a
/// feeder row's own values), the metadata template's i-th value, or the correlation tag.
#[derive(Debug, Clone)]
enum Piece {
    Fixed(Range<usize>),
    Value(usize),
    Tag,
}

/// A feeder row, laid out once: its file as written and its metadata's pieces.
struct RowLayout {
    head: Range<usize>,
    metadata: Vec<Piece>,
}

/// What the general path writes per input, worked out when the scenario loads: the
/// metadata object's key order (the row's keys first, a template value replacing a row's
/// in place, then the template's new keys, then the correlation tag, in place when a key
/// of that name is already there — as `input` merges them) with every fixed byte already
/// serialised into one arena.
struct InputPlan {
    arena: Vec<u8>,
    /// Without a feeder: the metadata's pieces.
    metadata: Vec<Piece>,
    rows: Option<Vec<RowLayout>>,
}

impl InputPlan {
    fn new(s: &Scenario) -> InputPlan {
        let mut plan = InputPlan {
            arena: Vec::new(),
            metadata: Vec::new(),
            rows: None,
        };
        plan.metadata = plan.plan(s, None);
        plan.rows = s.inputs.feeder.as_ref().map(|rows| {
            rows.iter()
                .map(|row| {
                    let start = plan.arena.len();
                    shapes::write_input_head(
                        s.api_version,
                        FileParts::from(&row.file),
                        &mut plan.arena,
                    );
                    let head = start..plan.arena.len();
                    RowLayout {
                        head,
                        metadata: plan.plan(s, Some(&row.metadata)),
                    }
                })
                .collect()
        });
        plan
    }

    fn plan(&mut self, s: &Scenario, row: Option<&Map<String, Value>>) -> Vec<Piece> {
        enum Source<'a> {
            Row(&'a Value),
            Template(usize),
            Tag,
        }
        let keys: &[(String, ValueTemplate)] = match &s.inputs.metadata {
            Some(ValueTemplate::Object(m)) => m,
            // The scenario only accepts a mapping.
            _ => &[],
        };
        let tag = s.inputs.correlation_key.as_deref();
        let template = |k: &str| keys.iter().position(|(tk, _)| tk == k);
        let mut entries: Vec<(&str, Source)> = Vec::new();
        for (k, v) in row.into_iter().flatten() {
            let source = if tag == Some(k.as_str()) {
                Source::Tag
            } else if let Some(i) = template(k) {
                Source::Template(i)
            } else {
                Source::Row(v)
            };
            entries.push((k, source));
        }
        for (i, (k, _)) in keys.iter().enumerate() {
            if !row.is_some_and(|r| r.contains_key(k)) {
                let source = if tag == Some(k.as_str()) {
                    Source::Tag
                } else {
                    Source::Template(i)
                };
                entries.push((k, source));
            }
        }
        if let Some(t) = tag
            && !entries.iter().any(|(k, _)| *k == t)
        {
            entries.push((t, Source::Tag));
        }
        let mut pieces = Vec::new();
        let fixed = |arena: &mut Vec<u8>, pieces: &mut Vec<Piece>, write: &dyn Fn(&mut Vec<u8>)| {
            let start = arena.len();
            write(arena);
            match pieces.last_mut() {
                // Contiguous with the previous fixed piece: one copy instead of two.
                Some(Piece::Fixed(r)) if r.end == start => r.end = arena.len(),
                _ => pieces.push(Piece::Fixed(start..arena.len())),
            }
        };
        for (i, (k, source)) in entries.iter().enumerate() {
            fixed(&mut self.arena, &mut pieces, &|a: &mut Vec<u8>| {
                if i > 0 {
                    a.push(b',');
                }
                let _ = serde_json::to_writer(&mut *a, k);
                a.push(b':');
            });
            match source {
                Source::Row(v) => fixed(&mut self.arena, &mut pieces, &|a: &mut Vec<u8>| {
                    let _ = serde_json::to_writer(&mut *a, v);
                }),
                Source::Template(i) => pieces.push(Piece::Value(*i)),
                Source::Tag => pieces.push(Piece::Tag),
            }
        }
        pieces
    }
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
        let d = digits.as_bytes();
        // A copy of a length known at compile time is a few moves; a slice copy of a
        // runtime length is a call to memmove, thousands of them per body.
        macro_rules! stamp {
            ($($n:literal)*) => {
                match d.len() {
                    $($n => {
                        let d: &[u8; $n] = d.try_into().expect("length matched");
                        for &off in &layout.offsets {
                            let at: &mut [u8; $n] = (&mut out[off..off + $n]).try_into().expect("in the body");
                            *at = *d;
                        }
                    })*
                    _ => unreachable!("a u64 has 1 to 20 digits"),
                }
            };
        }
        stamp!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20);
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
            frame: shapes::batch_frame(s.api_version, &s.workflow, s.load.priority),
            plan: InputPlan::new(s),
            size_hint: AtomicUsize::new(0),
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
        if let Some(t) = s.inputs.tagging() {
            meta.insert(t.key.clone(), Value::String(t.tag(batch, index)));
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

    /// The body `render` gives, written input by input straight into one buffer: the same
    /// seeded draws in the same order, no `Value` and no allocation per input.
    fn write(&self, batch: u64, n: u64) -> Vec<u8> {
        let s = &self.scenario;
        let (head, tail) = &self.frame;
        let mut out = Vec::with_capacity(self.size_hint.load(Ordering::Relaxed));
        out.extend_from_slice(head);
        let mut scratch = Scratch::default();
        for index in 0..n {
            if index > 0 {
                out.push(b',');
            }
            self.write_input(s, batch, index, &mut scratch, &mut out);
        }
        out.extend_from_slice(tail);
        self.size_hint.fetch_max(out.len(), Ordering::Relaxed);
        out
    }

    /// One input, as `input` builds it and `batch_body` serialises it.
    fn write_input(
        &self,
        s: &Scenario,
        batch: u64,
        index: u64,
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(s.load.seed, batch, index));
        let slot = Slot {
            batch,
            index,
            seq: batch * 1000 + index,
        };
        let Scratch {
            value,
            name,
            meta,
            spans,
        } = scratch;
        let layout = &self.plan;
        let pieces = match &layout.rows {
            Some(rows) => {
                let row = &rows[(slot.seq % rows.len() as u64) as usize];
                out.extend_from_slice(&layout.arena[row.head.clone()]);
                &row.metadata
            }
            None => {
                let f = &s.inputs.file;
                value.clear();
                f.value.render_into(slot, &mut rng, value);
                let name = f.name.as_ref().map(|t| {
                    name.clear();
                    t.render_into(slot, &mut rng, name);
                    name.as_str()
                });
                let file = match f.kind {
                    FileKind::Url => FileParts::Url { url: value, name },
                    FileKind::Id => FileParts::Id { id: value },
                    FileKind::Text => FileParts::Text { text: value, name },
                };
                shapes::write_input_head(s.api_version, file, out);
                &layout.metadata
            }
        };
        // The template's values are drawn in its own key order, then laid out by the plan.
        meta.clear();
        spans.clear();
        if let Some(ValueTemplate::Object(m)) = &s.inputs.metadata {
            for (_, t) in m {
                let start = meta.len();
                t.write_json(slot, &mut rng, meta);
                spans.push(start..meta.len());
            }
        }
        out.extend_from_slice(b",\"metadata\":{");
        for piece in pieces {
            match piece {
                Piece::Fixed(r) => out.extend_from_slice(&layout.arena[r.clone()]),
                Piece::Value(i) => out.extend_from_slice(&meta[spans[*i].clone()]),
                Piece::Tag => {
                    out.push(b'"');
                    // The nonce is base 36: nothing in it needs escaping.
                    if !s.inputs.run_nonce.is_empty() {
                        out.extend_from_slice(s.inputs.run_nonce.as_bytes());
                        out.push(b':');
                    }
                    let _ = serde_json::to_writer(&mut *out, &batch);
                    out.push(b':');
                    let _ = serde_json::to_writer(&mut *out, &index);
                    out.push(b'"');
                }
            }
        }
        out.push(b'}');
        if let Some(secrets) = &s.inputs.secrets {
            out.extend_from_slice(b",\"secrets\":");
            secrets.write_json(slot, &mut rng, out);
        }
        out.push(b'}');
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
            _ => (self.write(index, n), n),
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

    /// The writer is checked against the reference it replaces: every input built as a
    /// `BatchInput` and serialised by `shapes::batch_body`, byte for byte.
    #[test]
    fn written_bodies_equal_built_bodies() {
        let file_kinds = [
            "file: {url: \"https://x/{{uuid}}/\\\"q\\\"-é.pdf\", name: \"d-{{choice:a|b\\\\c}}\"}",
            "file: {id: \"file_{{random:1-99}}\"}",
            "file: {text: \"line\\n{{seq}}\", name: \"t-{{index}}\"}",
        ];
        let metadata = [
            "",
            "  metadata: {a: \"{{random:1-9}}\", bp_input: \"x\", c: [\"{{uuid}}\", 3, null], d: {e: \"{{seq}}\"}}\n",
            "  metadata: {q: \"x\\\"{{index}}\\u2028\", n: 1.5, t: true, bp_input: \"{{seq}}\"}\n",
        ];
        let extras = [
            "",
            "  secrets: {k: \"{{choice:s1|s2}}\"}\n",
            "  correlation_key: null\n",
        ];
        let versions = ["2026-02-09", "2025-04-21", "2024-12-23"];
        let mut checked = 0;
        for version in versions {
            for file in file_kinds {
                for meta in metadata {
                    for extra in extras {
                        let yaml = format!(
                            "api_version: {version}\nload: {{phases: [{{hold: 1s, rate: 1}}], inputs_per_batch: 7, seed: 11, priority: 5}}\ninputs:\n  {file}\n{meta}{extra}"
                        );
                        let yaml = if version == "2026-02-09" {
                            yaml
                        } else {
                            yaml.replace(", priority: 5", "")
                        };
                        let s = Scenario::from_text(Path::new("t.yaml"), &yaml)
                            .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
                        for feeder in [false, true] {
                            let mut s = s.clone();
                            if feeder {
                                s.inputs.feeder = Some(rows());
                            }
                            let f = InputFactory::new(&Arc::new(s));
                            for batch in [0, 3, 1234] {
                                let written = String::from_utf8(f.write(batch, 7)).unwrap();
                                let built = String::from_utf8(f.render(batch, 7)).unwrap();
                                assert_eq!(
                                    written, built,
                                    "{yaml}\nfeeder {feeder}, batch {batch}"
                                );
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 3 * 3 * 3 * 3 * 2 * 3);
    }

    /// Feeder rows whose metadata shares keys with the template and the correlation tag.
    fn rows() -> Vec<crate::scenario::feeder::Row> {
        (0..5)
            .map(|i| crate::scenario::feeder::Row {
                file: if i % 2 == 0 {
                    FileRef::Url {
                        url: format!("https://f/{i}.pdf"),
                        name: (i == 2).then(|| "n\"2".to_string()),
                    }
                } else {
                    FileRef::Id {
                        id: format!("file_{i}"),
                    }
                },
                metadata: serde_json::json!({"z": i, "a": "row", "bp_input": "row-tag", "u": "ü"})
                    .as_object()
                    .unwrap()
                    .clone(),
            })
            .collect()
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
