//! Extend's webhook signature: lowercase hex HMAC-SHA256 of `v0:{unix seconds}:{raw body}`
//! keyed with the endpoint's `wss_…` secret (its UTF-8 bytes, prefix included), sent in
//! `x-extend-request-signature` beside `x-extend-request-timestamp`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const TIMESTAMP_HEADER: &str = "x-extend-request-timestamp";
pub const SIGNATURE_HEADER: &str = "x-extend-request-signature";
/// The SDKs' default: older deliveries are rejected.
pub const MAX_AGE_SECS: i64 = 300;
/// The SDKs' default: deliveries dated further ahead are rejected.
pub const MAX_FUTURE_SKEW_SECS: i64 = 60;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(b"v0:");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

/// The signature header value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
}

/// Why a delivery failed verification. Each kind is counted separately in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    MissingHeaders,
    MalformedTimestamp,
    BadSignature,
    Stale,
    FutureDated,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::MissingHeaders => "missing_headers",
            Rejection::MalformedTimestamp => "malformed_timestamp",
            Rejection::BadSignature => "bad_signature",
            Rejection::Stale => "stale",
            Rejection::FutureDated => "future_dated",
        }
    }
}

/// Verifies a delivery the way the SDKs do. `now` is Unix seconds; `max_age` of 0 turns
/// the age check off, as in the SDKs. The signature is compared in constant time.
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
    max_age: i64,
) -> Result<i64, Rejection> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(Rejection::MissingHeaders);
    };
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Rejection::MalformedTimestamp)?;
    // Signature first: a forged delivery should be reported as forged, whatever its date.
    let expected = hex::decode(signature.trim()).map_err(|_| Rejection::BadSignature)?;
    // Python's SDK compares the hex strings case-sensitively; reject uppercase as it would.
    if signature.trim().bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(Rejection::BadSignature);
    }
    mac(secret, ts, body)
        .verify_slice(&expected)
        .map_err(|_| Rejection::BadSignature)?;
    if max_age > 0 && now - ts > max_age {
        return Err(Rejection::Stale);
    }
    if ts - now > MAX_FUTURE_SKEW_SECS {
        return Err(Rejection::FutureDated);
    }
    Ok(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wss_test_secret";

    #[test]
    fn signs_the_documented_string() {
        // Independent computation of the same HMAC over the literal signed string.
        let mut m = HmacSha256::new_from_slice(SECRET.as_bytes()).unwrap();
        m.update(b"v0:1700000000:{\"a\":1}");
        let expected = hex::encode(m.finalize().into_bytes());
        assert_eq!(sign(SECRET, 1_700_000_000, br#"{"a":1}"#), expected);
        assert_eq!(expected.len(), 64);
        assert!(expected.chars().all(|c| !c.is_ascii_uppercase()));
    }

    #[test]
    fn verifies_and_rejects_each_kind() {
        let body = br#"{"eventId":"evt_1"}"#;
        let now = 1_700_000_000;
        let sig = sign(SECRET, now, body);
        let ts = now.to_string();
        assert_eq!(
            verify(SECRET, Some(&ts), Some(&sig), body, now, 300),
            Ok(now)
        );
        assert_eq!(
            verify(SECRET, Some(&ts), Some(&sig), b"{}", now, 300),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            verify("wss_other", Some(&ts), Some(&sig), body, now, 300),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            verify(SECRET, Some(&ts), Some(&sig.to_uppercase()), body, now, 300),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            verify(SECRET, Some(&ts), Some(&sig), body, now + 301, 300),
            Err(Rejection::Stale)
        );
        assert_eq!(
            verify(SECRET, Some(&ts), Some(&sig), body, now + 301, 0),
            Ok(now)
        );
        assert_eq!(
            verify(SECRET, Some(&ts), Some(&sig), body, now - 61, 300),
            Err(Rejection::FutureDated)
        );
        assert_eq!(
            verify(SECRET, None, Some(&sig), body, now, 300),
            Err(Rejection::MissingHeaders)
        );
        let ms = (now * 1000).to_string();
        assert_eq!(
            verify(SECRET, Some(&ms), Some(&sig), body, now, 300),
            Err(Rejection::BadSignature)
        );
    }
}
