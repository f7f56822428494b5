//! An endpoint's `advancedOptions` (custom headers, payload format) and the large-payload
//! mode they switch on: instead of the run, a delivery carries a presigned URL to it
//! (`{"object": "signed_data_url", "data", "id", "metadata"}`) that points back at the mock.
//!
//! The payload behind a URL is kept as the bytes the delivery would have carried, so a GET
//! returns exactly the JSON a `json` endpoint received, whatever the run did since. Those
//! bytes live in a bounded ring (`webhooks.signed_url.kept`), so memory stays flat under
//! load; a URL is checked by an HMAC over its token and expiry, keyed with a secret made
//! when the mock starts, so an edited expiry or token is refused without a lookup.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::config::Dur;
use crate::webhook::signing;

/// The path the presigned URLs are served under, `{PATH}/{token}`.
pub const PATH: &str = "/_mock/signed";

/// `webhooks.signed_url` in a profile: what the references leave open.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignedUrlConfig {
    /// `sdk`: `{object, data, id, metadata}` as the SDKs read it; `data_only`: `{data}`,
    /// as older docs show it.
    pub shape: Shape,
    /// How long a URL stays valid, in mock time (divided by the time scale).
    pub ttl: Dur,
    /// Where the URLs point; by default the mock's own address.
    pub base_url: Option<String>,
    /// Payloads kept for fetching; the oldest go first (their URLs then answer 404).
    pub kept: usize,
}

impl Default for SignedUrlConfig {
    fn default() -> Self {
        SignedUrlConfig {
            shape: Shape::Sdk,
            ttl: Dur::from_secs(3600),
            base_url: None,
            kept: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    Sdk,
    DataOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Url,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadOptions {
    pub format: Format,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_threshold_bytes: Option<u64>,
}

/// `advancedOptions` of a webhook endpoint, as validated and echoed back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdvancedOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<PayloadOptions>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// Headers a custom header may not replace: the signature and the body's type.
const RESERVED: [&str; 4] = [
    signing::TIMESTAMP_HEADER,
    signing::SIGNATURE_HEADER,
    "content-type",
    "content-length",
];

impl AdvancedOptions {
    /// Reads `advancedOptions` from a request body; the error is the message of a 400.
    pub fn parse(v: Option<&Value>) -> Result<Option<AdvancedOptions>, String> {
        let o = match v {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(o)) => o,
            Some(_) => return Err("`advancedOptions` must be an object".into()),
        };
        if let Some(k) = o
            .keys()
            .find(|k| !matches!(k.as_str(), "payload" | "headers"))
        {
            return Err(format!(
                "`advancedOptions.{k}` is not a known option (known: payload, headers)"
            ));
        }
        Ok(Some(AdvancedOptions {
            payload: o.get("payload").map(parse_payload).transpose()?,
            headers: o
                .get("headers")
                .map(parse_headers)
                .transpose()?
                .unwrap_or_default(),
        }))
    }

    /// Whether a payload of `len` bytes goes out as a URL: over the threshold, or always
    /// when no threshold is set.
    pub fn uses_url(&self, len: usize) -> bool {
        match &self.payload {
            Some(p) if p.format == Format::Url => {
                p.url_threshold_bytes.is_none_or(|t| len as u64 > t)
            }
            _ => false,
        }
    }
}

/// Whether an endpoint with these options gets a payload of `len` bytes as a URL.
pub fn by_url(options: Option<&AdvancedOptions>, len: usize) -> bool {
    options.is_some_and(|o| o.uses_url(len))
}

fn parse_payload(v: &Value) -> Result<PayloadOptions, String> {
    let Value::Object(p) = v else {
        return Err("`advancedOptions.payload` must be an object".into());
    };
    if let Some(k) = p
        .keys()
        .find(|k| !matches!(k.as_str(), "format" | "urlThresholdBytes"))
    {
        return Err(format!(
            "`advancedOptions.payload.{k}` is not a known option (known: format, urlThresholdBytes)"
        ));
    }
    let format = match p.get("format").and_then(Value::as_str) {
        Some("json") => Format::Json,
        Some("url") => Format::Url,
        _ => {
            return Err(
                "`advancedOptions.payload.format` is required and must be \"json\" or \"url\""
                    .into(),
            );
        }
    };
    let url_threshold_bytes =
        match p.get("urlThresholdBytes") {
            None | Some(Value::Null) => None,
            Some(t) => Some(t.as_u64().ok_or(
                "`advancedOptions.payload.urlThresholdBytes` must be a non-negative integer",
            )?),
        };
    Ok(PayloadOptions {
        format,
        url_threshold_bytes,
    })
}

fn parse_headers(v: &Value) -> Result<BTreeMap<String, String>, String> {
    let Value::Object(h) = v else {
        return Err("`advancedOptions.headers` must be an object of strings".into());
    };
    let mut out = BTreeMap::new();
    for (name, value) in h {
        let bad = |why: &str| Err(format!("`advancedOptions.headers.{name}`: {why}"));
        let Some(value) = value.as_str() else {
            return bad("the value must be a string");
        };
        let lower = name.to_ascii_lowercase();
        if reqwest::header::HeaderName::from_bytes(lower.as_bytes()).is_err() {
            return bad("not a valid header name");
        }
        if reqwest::header::HeaderValue::from_str(value).is_err() {
            return bad("not a valid header value");
        }
        if RESERVED.contains(&lower.as_str()) {
            return bad("this header is set by the delivery itself");
        }
        out.insert(lower, value.to_string());
    }
    Ok(out)
}

/// The payloads behind the URLs handed out, and the key that signs those URLs.
pub struct Vault {
    key: [u8; 32],
    base: OnceLock<String>,
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    order: VecDeque<(String, i64)>,
    payloads: HashMap<String, Bytes>,
}

/// Why a presigned URL was not honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A bad signature or expiry: 403, as a storage service answers.
    Forbidden(&'static str),
    /// Genuine but its payload is no longer kept: 404.
    Gone,
}

impl Default for Vault {
    fn default() -> Self {
        let mut key = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut key[..]);
        Vault {
            key,
            base: OnceLock::new(),
            kept: Mutex::new(Kept::default()),
        }
    }
}

impl Vault {
    /// Where URLs point when the profile names no base: the address the mock serves on.
    pub fn set_base(&self, base: String) {
        let _ = self.base.set(base);
    }

    fn sign(&self, token: &str, expires: i64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(format!("{token}:{expires}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The payload that replaces `payload` in a delivery: a fresh URL to it, valid for
    /// `ttl` of real time (the profile's, divided by the time scale).
    pub fn wrap(&self, config: &SignedUrlConfig, ttl: Duration, payload: &Bytes) -> Bytes {
        let token = super::state::random_id(32);
        let ttl = ttl.max(Duration::from_millis(1));
        let expires = Utc::now().timestamp_millis() + ttl.as_millis() as i64;
        let base = config
            .base_url
            .as_deref()
            .or(self.base.get().map(String::as_str))
            .unwrap_or("http://127.0.0.1");
        let url = format!(
            "{}{PATH}/{token}?expires={expires}&signature={}",
            base.trim_end_matches('/'),
            self.sign(&token, expires)
        );
        self.keep(token, expires, payload.clone(), config.kept);
        let mut out = Map::new();
        if config.shape == Shape::Sdk {
            out.insert("object".into(), "signed_data_url".into());
        }
        out.insert("data".into(), url.into());
        if config.shape == Shape::Sdk {
            // The id and metadata let a receiver decide before fetching (the SDK's use).
            let full: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
            out.insert("id".into(), full.get("id").cloned().unwrap_or(Value::Null));
            if let Some(m) = full.get("metadata").filter(|m| !m.is_null()) {
                out.insert("metadata".into(), m.clone());
            }
        }
        Bytes::from(serde_json::to_vec(&Value::Object(out)).unwrap_or_default())
    }

    fn keep(&self, token: String, expires: i64, payload: Bytes, cap: usize) {
        let now = Utc::now().timestamp_millis();
        let mut kept = self.kept.lock().expect("signed payloads");
        // Every URL lives as long as the next, so the oldest expire first.
        while let Some((t, at)) = kept.order.front() {
            if *at > now && kept.order.len() < cap.max(1) {
                break;
            }
            let t = t.clone();
            kept.payloads.remove(&t);
            kept.order.pop_front();
        }
        kept.payloads.insert(token.clone(), payload);
        kept.order.push_back((token, expires));
    }

    /// The payload behind a URL, if its signature holds and it has not expired.
    pub fn fetch(
        &self,
        token: &str,
        expires: Option<&str>,
        signature: Option<&str>,
    ) -> Result<Bytes, Refused> {
        let (Some(expires), Some(signature)) = (expires, signature) else {
            return Err(Refused::Forbidden(
                "missing expires or signature: not a presigned URL",
            ));
        };
        let Ok(at) = expires.parse::<i64>() else {
            return Err(Refused::Forbidden("signature does not match"));
        };
        let want = self.sign(token, at);
        let same = want.len() == signature.len()
            && want
                .bytes()
                .zip(signature.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return Err(Refused::Forbidden("signature does not match"));
        }
        if Utc::now().timestamp_millis() > at {
            return Err(Refused::Forbidden("request has expired"));
        }
        let kept = self.kept.lock().expect("signed payloads");
        kept.payloads.get(token).cloned().ok_or(Refused::Gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_are_validated_and_thresholds_apply() {
        let o = AdvancedOptions::parse(Some(&json!({"payload": {"format": "url", "urlThresholdBytes": 10}, "headers": {"X-Team": "a"}})))
            .unwrap()
            .unwrap();
        assert!(!o.uses_url(10) && o.uses_url(11));
        assert_eq!(o.headers.get("x-team").map(String::as_str), Some("a"));
        let always = AdvancedOptions::parse(Some(&json!({"payload": {"format": "url"}})));
        assert!(always.unwrap().unwrap().uses_url(0));
        for bad in [
            json!({"payload": {"format": "xml"}}),
            json!({"payload": {"format": "url", "urlThresholdBytes": -1}}),
            json!({"headers": {"x-extend-request-signature": "x"}}),
            json!({"headers": {"x": 1}}),
            json!({"colour": 1}),
            json!([]),
        ] {
            assert!(AdvancedOptions::parse(Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_resolve_until_tampered_or_expired() {
        let vault = Vault::default();
        let config = SignedUrlConfig::default();
        let payload = Bytes::from_static(br#"{"id":"workflow_run_1","metadata":{"k":1}}"#);
        let wrapped: Value =
            serde_json::from_slice(&vault.wrap(&config, config.ttl.0, &payload)).unwrap();
        assert_eq!(wrapped["object"], "signed_data_url");
        assert_eq!(wrapped["id"], "workflow_run_1");
        assert_eq!(wrapped["metadata"], json!({"k": 1}));
        let url = wrapped["data"].as_str().unwrap();
        let (path, query) = url.split_once('?').unwrap();
        let token = path.rsplit('/').next().unwrap();
        let q: HashMap<_, _> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let (exp, sig) = (q["expires"], q["signature"]);
        assert_eq!(vault.fetch(token, Some(exp), Some(sig)), Ok(payload));
        let later = (exp.parse::<i64>().unwrap() + 1).to_string();
        assert!(vault.fetch(token, Some(&later), Some(sig)).is_err());
        let past = Utc::now().timestamp_millis() - 1;
        let stale = vault.sign(token, past);
        assert_eq!(
            vault.fetch(token, Some(&past.to_string()), Some(&stale)),
            Err(Refused::Forbidden("request has expired"))
        );
    }
}
