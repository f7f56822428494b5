//! Batch bodies as the mock reads them: each input's `metadata` stays the raw JSON text the
//! client sent (checked once, never built into a `Value` tree, and returned byte for byte),
//! while everything else is parsed as usual so validation can still name any field that is
//! wrong. A 1,000-input batch is most of its metadata; this is where ingest spent its
//! allocations.

use std::fmt;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::steer::{self, Steer};

/// A part of the body that has the expected JSON type, or whatever else was sent there
/// (kept as a `Value` so validation can say what is wrong with it).
#[derive(Debug)]
pub enum Shape<T> {
    Expected(T),
    Other(Value),
}

/// The batch body: its fields, with `inputs` read apart.
#[derive(Debug, Default)]
pub struct BatchDoc<'a> {
    pub fields: Map<String, Value>,
    pub inputs: Option<Shape<Vec<Shape<InputDoc<'a>>>>>,
}

/// One input: its fields, with `metadata` kept as raw text.
#[derive(Debug, Default)]
pub struct InputDoc<'a> {
    pub fields: Map<String, Value>,
    pub metadata: Option<&'a RawValue>,
}

/// Reads a batch body; the error is serde_json's, for a body that is not JSON at all.
pub fn batch(bytes: &[u8]) -> Result<Shape<BatchDoc<'_>>, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// A run's metadata as the client sent it: a JSON object's text.
#[derive(Debug, Clone)]
pub struct Metadata(Box<RawValue>);

impl PartialEq for Metadata {
    fn eq(&self, other: &Metadata) -> bool {
        self.text() == other.text()
    }
}

impl Default for Metadata {
    fn default() -> Metadata {
        Metadata(RawValue::from_string("{}".into()).expect("{} is JSON"))
    }
}

impl Metadata {
    pub fn from_raw(raw: &RawValue) -> Metadata {
        Metadata(raw.to_owned())
    }

    pub fn from_value(v: &Value) -> Metadata {
        Metadata(serde_json::value::to_raw_value(v).expect("a Value serialises"))
    }

    /// The JSON text, exactly as sent.
    pub fn text(&self) -> &str {
        self.0.get()
    }

    pub fn value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// The steering key (see `steer`), parsed only when the text mentions it.
    pub fn steer(&self) -> Result<Option<Steer>, String> {
        steer_of(&self.0)
    }
}

pub fn steer_of(raw: &RawValue) -> Result<Option<Steer>, String> {
    if !raw.get().contains(steer::STEER_KEY) {
        return Ok(None);
    }
    let v: Value = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
    steer::read(&v)
}

/// Whether raw JSON text is an object (its first character, the text being valid JSON).
pub fn is_object(raw: &RawValue) -> bool {
    raw.get().trim_start().starts_with('{')
}

pub fn is_null(raw: &RawValue) -> bool {
    raw.get().trim() == "null"
}

/// The visit methods of a non-map, non-sequence JSON value, kept as `Value`; with `seq`,
/// a sequence is kept as `Value` too.
macro_rules! other_scalars {
    (seq) => {
        other_scalars!();
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Value::deserialize(SeqAccessDeserializer::new(seq)).map(Shape::Other)
        }
    };
    () => {
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Shape::Other(Value::Bool(v)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Shape::Other(Value::from(v)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Shape::Other(Value::from(v)))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Shape::Other(Value::from(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Shape::Other(Value::String(v.to_string())))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Shape::Other(Value::Null))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Shape::Other(Value::Null))
        }
    };
}

/// Reads a map's entries into `fields`, handing the value of `special` to `take`.
fn fields<'de, A: MapAccess<'de>>(
    mut map: A,
    special: &str,
    mut take: impl FnMut(&mut A) -> Result<(), A::Error>,
) -> Result<Map<String, Value>, A::Error> {
    let mut fields = Map::new();
    while let Some(key) = map.next_key::<String>()? {
        if key == special {
            take(&mut map)?;
        } else {
            let v = map.next_value::<Value>()?;
            fields.insert(key, v);
        }
    }
    Ok(fields)
}

impl<'de> Deserialize<'de> for Shape<BatchDoc<'de>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shape<BatchDoc<'de>>;
            other_scalars!(seq);
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let mut inputs = None;
                let fields = fields(map, "inputs", |m| {
                    inputs = Some(m.next_value::<Shape<Vec<Shape<InputDoc<'de>>>>>()?);
                    Ok(())
                })?;
                Ok(Shape::Expected(BatchDoc { fields, inputs }))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Shape<Vec<Shape<InputDoc<'de>>>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shape<Vec<Shape<InputDoc<'de>>>>;
            other_scalars!();
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1000));
                while let Some(input) = seq.next_element::<Shape<InputDoc<'de>>>()? {
                    out.push(input);
                }
                Ok(Shape::Expected(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Value::deserialize(MapAccessDeserializer::new(map)).map(Shape::Other)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Shape<InputDoc<'de>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shape<InputDoc<'de>>;
            other_scalars!(seq);
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let mut metadata = None;
                let fields = fields(map, "metadata", |m| {
                    metadata = Some(m.next_value::<&'de RawValue>()?);
                    Ok(())
                })?;
                Ok(Shape::Expected(InputDoc { fields, metadata }))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_stays_raw_and_the_rest_is_parsed() {
        let body = br#"{"workflow": {"id": "w"}, "inputs": [{"file": {"url": "u"}, "metadata": {"b": 1,  "a": [true]}}, 7, {"file": {"id": "f"}}], "priority": 3}"#;
        let Shape::Expected(doc) = batch(body).unwrap() else {
            panic!("an object");
        };
        assert_eq!(doc.fields["priority"], 3);
        assert_eq!(doc.fields["workflow"]["id"], "w");
        let Some(Shape::Expected(inputs)) = doc.inputs else {
            panic!("an array");
        };
        assert_eq!(inputs.len(), 3);
        match &inputs[0] {
            Shape::Expected(i) => {
                // Byte for byte, key order and spacing as sent.
                assert_eq!(i.metadata.unwrap().get(), r#"{"b": 1,  "a": [true]}"#);
                assert_eq!(i.fields["file"]["url"], "u");
                assert!(!i.fields.contains_key("metadata"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&inputs[1], Shape::Other(v) if *v == 7));
        assert!(matches!(&inputs[2], Shape::Expected(i) if i.metadata.is_none()));
    }

    #[test]
    fn wrong_shapes_are_kept_for_the_error() {
        assert!(matches!(
            batch(b"[1]").unwrap(),
            Shape::Other(Value::Array(_))
        ));
        let Shape::Expected(doc) = batch(br#"{"inputs": {"a": 1}}"#).unwrap() else {
            panic!()
        };
        assert!(matches!(doc.inputs, Some(Shape::Other(Value::Object(_)))));
        assert!(batch(b"{\"inputs\": [").is_err());
    }

    #[test]
    fn steering_is_read_only_when_mentioned() {
        let plain = Metadata::from_value(&serde_json::json!({"a": 1}));
        assert_eq!(plain.steer(), Ok(None));
        let steered = Metadata::from_value(&serde_json::json!({steer::STEER_KEY: "FAILED"}));
        assert!(steered.steer().unwrap().is_some());
        assert_eq!(Metadata::default().text(), "{}");
    }
}
