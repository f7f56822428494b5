//! What a refused request is, before it becomes an HTTP answer: the error code and a
//! message naming the field (`Reject`), and for the validation failures whose status the
//! documentation leaves open, which one it is (`Invalid`) and the status the profile gives
//! it (`ValidationStatus`). Validation and the profile both use these; neither owns them.

use serde::{Deserialize, Serialize};

use crate::api::error::ErrorCode;

/// A rejected request: the code (and so the status) and a message naming the field.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub code: ErrorCode,
    pub message: String,
}

/// The validation failures whose HTTP status the documentation leaves open (400 or 422);
/// the profile's `validation_status` chooses each one's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not JSON, or JSON of the wrong types (the body, `inputs`, `metadata`).
    Malformed,
    TooManyInputs,
    NoInputs,
    BadFile,
    MissingWorkflow,
    MetadataTooLarge,
    PageSize,
    UnknownVersion,
}

/// A refused request and which kind of validation failure it is, if one of those.
#[derive(Debug)]
pub struct Refusal {
    pub reject: Reject,
    pub kind: Option<Invalid>,
}

impl From<Reject> for Refusal {
    fn from(reject: Reject) -> Refusal {
        Refusal { reject, kind: None }
    }
}

pub(super) trait Classify<T> {
    fn kind(self, kind: Invalid) -> Result<T, Refusal>;
}

impl<T> Classify<T> for Result<T, Reject> {
    fn kind(self, kind: Invalid) -> Result<T, Refusal> {
        self.map_err(|reject| Refusal {
            reject,
            kind: Some(kind),
        })
    }
}

pub(super) fn invalid(message: impl Into<String>) -> Reject {
    Reject {
        code: ErrorCode::InvalidRequest,
        message: message.into(),
    }
}

pub(super) fn not_found(message: impl Into<String>) -> Reject {
    Reject {
        code: ErrorCode::NotFound,
        message: message.into(),
    }
}

/// Which status each validation failure gets. The SDKs map both 400 and 422 (docs/contract.md
/// §2, §9); which one the real API sends for each failure is not documented, so each is a
/// choice, 400 by default (the status the documented error code INVALID_REQUEST maps to),
/// and a client's 422 path can be exercised by choosing 422.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationStatus {
    /// A body that is not JSON, or JSON of the wrong types.
    pub malformed: u16,
    /// More than 1,000 inputs in a batch.
    pub too_many_inputs: u16,
    /// A batch with no inputs.
    pub no_inputs: u16,
    /// An input without a document, or a malformed file union.
    pub bad_file: u16,
    /// No workflow reference, or an empty one.
    pub missing_workflow: u16,
    /// Metadata over 10 KB.
    pub metadata_too_large: u16,
    /// `maxPageSize` outside 1..1000.
    pub page_size: u16,
    /// An unknown `x-extend-api-version`.
    pub unknown_version: u16,
}

impl Default for ValidationStatus {
    fn default() -> Self {
        ValidationStatus {
            malformed: 400,
            too_many_inputs: 400,
            no_inputs: 400,
            bad_file: 400,
            missing_workflow: 400,
            metadata_too_large: 400,
            page_size: 400,
            unknown_version: 400,
        }
    }
}

impl ValidationStatus {
    pub(crate) fn of(&self, kind: Invalid) -> u16 {
        use Invalid::*;
        match kind {
            Malformed => self.malformed,
            TooManyInputs => self.too_many_inputs,
            NoInputs => self.no_inputs,
            BadFile => self.bad_file,
            MissingWorkflow => self.missing_workflow,
            MetadataTooLarge => self.metadata_too_large,
            PageSize => self.page_size,
            UnknownVersion => self.unknown_version,
        }
    }

    pub(super) fn all(&self) -> [(&'static str, u16); 8] {
        [
            ("malformed", self.malformed),
            ("too_many_inputs", self.too_many_inputs),
            ("no_inputs", self.no_inputs),
            ("bad_file", self.bad_file),
            ("missing_workflow", self.missing_workflow),
            ("metadata_too_large", self.metadata_too_large),
            ("page_size", self.page_size),
            ("unknown_version", self.unknown_version),
        ]
    }
}
