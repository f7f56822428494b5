//! Error bodies, per version: `{code, message, retryable, requestId}` from 2026-02-09 on,
//! `{success: false, error}` before it. The mock renders them; the checks compare against
//! them.

use serde_json::{Value, json};

/// Error codes from the 2026 error-handling docs, with the HTTP status each maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    Unauthorized,
    UsageBlocked,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimitExceeded,
    InternalError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::UsageBlocked => "USAGE_BLOCKED",
            // Not in the stored docs table (it was cut off); the name follows its pattern.
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            // The docs name no code for 413; INVALID_REQUEST is the closest documented one.
            ErrorCode::PayloadTooLarge => "INVALID_REQUEST",
            ErrorCode::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
            ErrorCode::InternalError => "INTERNAL_ERROR",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::UsageBlocked => 402,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RateLimitExceeded => 429,
            ErrorCode::InternalError => 500,
        }
    }

    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::RateLimitExceeded | ErrorCode::InternalError
        )
    }
}

/// Which of the two documented error-body shapes a version uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{code, message, retryable, requestId}` (2026-02-09).
    Coded,
    /// `{success: false, error: "message"}` (2025-04-21 and 2024-12-23).
    Legacy,
}

impl ErrorShape {
    pub fn for_version(version: super::ApiVersion) -> ErrorShape {
        if version.is_legacy() {
            ErrorShape::Legacy
        } else {
            ErrorShape::Coded
        }
    }

    pub fn body(self, code: ErrorCode, message: &str, request_id: &str) -> Value {
        match self {
            ErrorShape::Coded => json!({
                "code": code.as_str(),
                "message": message,
                "retryable": code.retryable(),
                "requestId": request_id,
            }),
            ErrorShape::Legacy => json!({ "success": false, "error": message }),
        }
    }

    /// Checks an error answer of status `status`: this shape, or a documented variant of
    /// it. The 2025 SDK types a 429 body as `{error: "message"}` without `success`, so
    /// the legacy shape accepts that on 429.
    pub fn check_answer(self, status: u16, body: &Value) -> Result<(), String> {
        let strict = self.check(body);
        if strict.is_err()
            && self == ErrorShape::Legacy
            && status == 429
            && body.get("error").is_some_and(Value::is_string)
            && body.get("success").is_none_or(|s| s == &Value::Bool(false))
        {
            return Ok(());
        }
        strict
    }

    /// Checks that `body` has this shape; returns what is wrong, if anything.
    pub fn check(self, body: &Value) -> Result<(), String> {
        let Some(obj) = body.as_object() else {
            return Err(format!("error body is not a JSON object: {body}"));
        };
        match self {
            ErrorShape::Coded => {
                for key in ["code", "message"] {
                    if !obj.get(key).is_some_and(Value::is_string) {
                        return Err(format!("`{key}` missing or not a string"));
                    }
                }
                if !obj.get("retryable").is_some_and(Value::is_boolean) {
                    return Err("`retryable` missing or not a boolean".into());
                }
                Ok(())
            }
            ErrorShape::Legacy => {
                if obj.get("success") != Some(&Value::Bool(false)) {
                    return Err("`success` is not false".into());
                }
                if !obj.get("error").is_some_and(Value::is_string) {
                    return Err("`error` missing or not a string".into());
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn legacy_bodies_accept_the_documented_429_variant_only_on_429() {
        let bare = json!({"error": "Too many requests"});
        assert!(ErrorShape::Legacy.check_answer(429, &bare).is_ok());
        assert!(ErrorShape::Legacy.check_answer(400, &bare).is_err());
        assert!(ErrorShape::Coded.check_answer(429, &bare).is_err());
        let classic = json!({"success": false, "error": "bad"});
        assert!(ErrorShape::Legacy.check_answer(400, &classic).is_ok());
        assert!(
            ErrorShape::Legacy
                .check_answer(429, &json!({"error": 7}))
                .is_err()
        );
    }
}
