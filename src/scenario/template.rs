//! Input templates: strings with `{{batch}}`, `{{index}}`, `{{seq}}`, `{{uuid}}`,
//! `{{random:MIN-MAX}}` and `{{choice:a|b|c}}`, compiled once when the scenario loads
//! (so an unknown placeholder is a validation error) and expanded per input from a seeded
//! random stream (so a seed replays the same inputs).

use rand::Rng;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Batch,
    Index,
    Seq,
    Uuid,
    Random(i64, i64),
    Choice(Vec<String>),
}

/// Where in the load an input sits; what placeholders expand to.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    pub batch: u64,
    pub index: u64,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
    /// Per part, its literal text (or each choice) already escaped as JSON string content,
    /// so writing JSON escapes nothing per input.
    escaped: Vec<Vec<Vec<u8>>>,
}

/// `s` escaped as the inside of a JSON string.
fn escape(s: &str) -> Vec<u8> {
    let quoted = serde_json::to_vec(s).expect("a str serialises");
    quoted[1..quoted.len() - 1].to_vec()
}

impl Template {
    pub fn compile(s: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Lit(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("`{{{{` without a closing `}}}}` in `{s}`"))?;
            parts.push(placeholder(after[..end].trim())?);
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        let escaped = parts
            .iter()
            .map(|p| match p {
                Part::Lit(s) => vec![escape(s)],
                Part::Choice(c) => c.iter().map(|s| escape(s)).collect(),
                _ => vec![],
            })
            .collect();
        Ok(Template { parts, escaped })
    }

    /// True when rendering draws nothing from the random stream.
    pub fn is_deterministic(&self) -> bool {
        self.parts
            .iter()
            .all(|p| matches!(p, Part::Lit(_) | Part::Batch | Part::Index | Part::Seq))
    }

    pub fn render<R: Rng + ?Sized>(&self, slot: Slot, rng: &mut R) -> String {
        let mut out = String::new();
        self.render_into(slot, rng, &mut out);
        out
    }

    /// Appends the expansion to `out`, drawing what `render` draws.
    pub fn render_into<R: Rng + ?Sized>(&self, slot: Slot, rng: &mut R, out: &mut String) {
        for p in &self.parts {
            self.render_part(p, slot, rng, out);
        }
    }

    /// Writes the JSON `render_value` would give, without building it: a number for a
    /// lone numeric placeholder, else a string from pre-escaped pieces, drawing what
    /// `render` draws in the same order.
    pub fn write_json<R: Rng + ?Sized>(&self, slot: Slot, rng: &mut R, out: &mut Vec<u8>) {
        let number = |out: &mut Vec<u8>, n: u64| {
            let _ = serde_json::to_writer(&mut *out, &n);
        };
        if let [p] = self.parts.as_slice() {
            match p {
                Part::Batch => return number(out, slot.batch),
                Part::Index => return number(out, slot.index),
                Part::Seq => return number(out, slot.seq),
                Part::Random(a, b) => {
                    let _ = serde_json::to_writer(&mut *out, &rng.random_range(*a..=*b));
                    return;
                }
                _ => {}
            }
        }
        out.push(b'"');
        for (p, esc) in self.parts.iter().zip(&self.escaped) {
            match p {
                Part::Lit(_) => out.extend_from_slice(&esc[0]),
                Part::Batch => number(out, slot.batch),
                Part::Index => number(out, slot.index),
                Part::Seq => number(out, slot.seq),
                Part::Uuid => {
                    let mut buf = uuid::Uuid::encode_buffer();
                    out.extend_from_slice(draw_uuid(rng, &mut buf).as_bytes());
                }
                Part::Random(a, b) => {
                    let _ = serde_json::to_writer(&mut *out, &rng.random_range(*a..=*b));
                }
                Part::Choice(c) => out.extend_from_slice(&esc[rng.random_range(0..c.len())]),
            }
        }
        out.push(b'"');
    }

    fn render_part<R: Rng + ?Sized>(&self, p: &Part, slot: Slot, rng: &mut R, out: &mut String) {
        use std::fmt::Write;
        match p {
            Part::Lit(s) => out.push_str(s),
            Part::Batch => {
                let _ = write!(out, "{}", slot.batch);
            }
            Part::Index => {
                let _ = write!(out, "{}", slot.index);
            }
            Part::Seq => {
                let _ = write!(out, "{}", slot.seq);
            }
            Part::Uuid => {
                let mut buf = uuid::Uuid::encode_buffer();
                out.push_str(draw_uuid(rng, &mut buf));
            }
            Part::Random(a, b) => {
                let _ = write!(out, "{}", rng.random_range(*a..=*b));
            }
            Part::Choice(c) => out.push_str(&c[rng.random_range(0..c.len())]),
        }
    }

    /// Renders to a JSON value: a template that is one numeric placeholder gives a number.
    pub fn render_value<R: Rng + ?Sized>(&self, slot: Slot, rng: &mut R) -> Value {
        if let [p] = self.parts.as_slice() {
            match p {
                Part::Batch => return Value::from(slot.batch),
                Part::Index => return Value::from(slot.index),
                Part::Seq => return Value::from(slot.seq),
                Part::Random(a, b) => return Value::from(rng.random_range(*a..=*b)),
                _ => {}
            }
        }
        Value::String(self.render(slot, rng))
    }
}

/// A `{{uuid}}`: 16 bytes drawn from the input's stream, as lower-case hyphenated text.
fn draw_uuid<'b, R: Rng + ?Sized>(rng: &mut R, buf: &'b mut [u8; 45]) -> &'b str {
    let bytes: [u8; 16] = rng.random();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .encode_lower(buf)
}

fn placeholder(name: &str) -> Result<Part, String> {
    match name {
        "batch" => Ok(Part::Batch),
        "index" => Ok(Part::Index),
        "seq" => Ok(Part::Seq),
        "uuid" => Ok(Part::Uuid),
        _ => {
            if let Some(range) = name.strip_prefix("random:") {
                let (a, b) = range.split_once('-').ok_or_else(|| {
                    format!("`{{{{{name}}}}}`: write a range as `random:MIN-MAX`")
                })?;
                let a: i64 = a
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{{{{{name}}}}}`: MIN is not an integer"))?;
                let b: i64 = b
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{{{{{name}}}}}`: MAX is not an integer"))?;
                if a > b {
                    return Err(format!("`{{{{{name}}}}}`: MIN is above MAX"));
                }
                Ok(Part::Random(a, b))
            } else if let Some(list) = name.strip_prefix("choice:") {
                let c: Vec<String> = list.split('|').map(|s| s.to_string()).collect();
                if c.iter().any(|s| s.is_empty()) {
                    return Err(format!(
                        "`{{{{{name}}}}}`: empty choice; write `choice:a|b|c`"
                    ));
                }
                Ok(Part::Choice(c))
            } else {
                Err(format!(
                    "unknown placeholder `{{{{{name}}}}}`; use batch, index, seq, uuid, random:MIN-MAX or choice:a|b"
                ))
            }
        }
    }
}

/// A JSON value whose strings are templates (metadata and secrets).
#[derive(Debug, Clone, PartialEq)]
pub enum ValueTemplate {
    Str(Template),
    Array(Vec<ValueTemplate>),
    Object(Vec<(String, ValueTemplate)>),
    Other(Value),
}

impl ValueTemplate {
    pub fn is_deterministic(&self) -> bool {
        match self {
            ValueTemplate::Str(t) => t.is_deterministic(),
            ValueTemplate::Array(a) => a.iter().all(ValueTemplate::is_deterministic),
            ValueTemplate::Object(m) => m.iter().all(|(_, t)| t.is_deterministic()),
            ValueTemplate::Other(_) => true,
        }
    }

    pub fn compile(v: &Value) -> Result<ValueTemplate, String> {
        Ok(match v {
            Value::String(s) => ValueTemplate::Str(Template::compile(s)?),
            Value::Array(a) => ValueTemplate::Array(
                a.iter()
                    .map(ValueTemplate::compile)
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => ValueTemplate::Object(
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), ValueTemplate::compile(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => ValueTemplate::Other(other.clone()),
        })
    }

    pub fn render<R: Rng + ?Sized>(&self, slot: Slot, rng: &mut R) -> Value {
        match self {
            ValueTemplate::Str(t) => t.render_value(slot, rng),
            ValueTemplate::Array(a) => {
                Value::Array(a.iter().map(|t| t.render(slot, rng)).collect())
            }
            ValueTemplate::Object(m) => {
                let mut out = Map::with_capacity(m.len());
                for (k, t) in m {
                    out.insert(k.clone(), t.render(slot, rng));
                }
                Value::Object(out)
            }
            ValueTemplate::Other(v) => v.clone(),
        }
    }

    /// Writes the JSON `render` would give, drawing the same values in the same order.
    pub fn write_json<R: Rng + ?Sized>(&self, slot: Slot, rng: &mut R, out: &mut Vec<u8>) {
        match self {
            ValueTemplate::Str(t) => t.write_json(slot, rng, out),
            ValueTemplate::Array(a) => {
                out.push(b'[');
                for (i, t) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    t.write_json(slot, rng, out);
                }
                out.push(b']');
            }
            ValueTemplate::Object(m) => {
                out.push(b'{');
                for (i, (k, t)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    let _ = serde_json::to_writer(&mut *out, k);
                    out.push(b':');
                    t.write_json(slot, rng, out);
                }
                out.push(b'}');
            }
            ValueTemplate::Other(v) => {
                let _ = serde_json::to_writer(&mut *out, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use serde_json::json;

    #[test]
    fn expands_placeholders_deterministically() {
        let t = Template::compile("s3://b/{{batch}}/{{index}}-{{seq}}.pdf").unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let slot = Slot {
            batch: 2,
            index: 7,
            seq: 2007,
        };
        assert_eq!(t.render(slot, &mut rng), "s3://b/2/7-2007.pdf");
        let u = Template::compile("{{uuid}}").unwrap();
        let a = u.render(slot, &mut rand_chacha::ChaCha8Rng::seed_from_u64(9));
        let b = u.render(slot, &mut rand_chacha::ChaCha8Rng::seed_from_u64(9));
        assert_eq!(a, b);
        assert_eq!(a.len(), 36);
    }

    #[test]
    fn numeric_placeholders_become_numbers_in_metadata() {
        let v = ValueTemplate::compile(
            &json!({"seq": "{{seq}}", "tag": "t-{{index}}", "n": [1, "{{random:5-5}}"]}),
        )
        .unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let out = v.render(
            Slot {
                batch: 0,
                index: 3,
                seq: 42,
            },
            &mut rng,
        );
        assert_eq!(out, json!({"seq": 42, "tag": "t-3", "n": [1, 5]}));
    }

    #[test]
    fn unknown_placeholder_is_rejected() {
        assert!(
            Template::compile("{{bach}}")
                .unwrap_err()
                .contains("unknown placeholder")
        );
        assert!(Template::compile("{{seq").unwrap_err().contains("closing"));
        assert!(Template::compile("{{random:9-1}}").is_err());
    }
}
