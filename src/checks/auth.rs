//! `auth.*`: requests without a token, or with one the target does not know, are
//! refused with 401 (their bodies count for `error.shape`).

use super::{Provenance, Rule, Severity};

pub(crate) const DOC: &str = "https://docs.extend.ai/api-reference/authentication";

pub const RULES: &[Rule] = &[
    Rule {
        id: "auth.missing_token",
        title: "A request without an Authorization header is refused with 401",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Documented,
        basis: "401 UNAUTHORIZED for a missing or malformed key (error codes table)",
        versions: &[],
    },
    Rule {
        id: "auth.invalid_token",
        title: "A request with an unknown API key is refused with 401",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Documented,
        basis: "401 UNAUTHORIZED for an invalid key (error codes table)",
        versions: &[],
    },
];
