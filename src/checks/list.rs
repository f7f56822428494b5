//! `list.*`: List Workflow Runs filtered by batchId shows that batch's runs only, in
//! pages of at most maxPageSize that are disjoint and add up to the whole batch, with a
//! token chain that ends; an out-of-range maxPageSize is refused with 400; without
//! maxPageSize or sortBy a page holds 10 runs, most recently updated first; and the
//! `status` and `workflowId` filters keep exactly the runs they name.

use super::{Provenance, Rule, Severity};

pub(crate) const DOC: &str =
    "https://docs.extend.ai/2026-02-09/api-reference/endpoints/workflow/list-workflow-runs";

pub const RULES: &[Rule] = &[
    Rule {
        id: "list.batch_filter",
        title: "Listing by batchId shows no run of another batch",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Documented,
        basis: "List Workflow Runs filters by batchId (docs, SDK 0.2.0)",
        versions: &[],
    },
    Rule {
        id: "list.pagination",
        title: "Pages are disjoint and together hold every run of the batch",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Documented,
        basis: "nextPageToken pages through the results",
        versions: &[],
    },
    Rule {
        id: "list.page_size",
        title: "No page holds more runs than maxPageSize",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Documented,
        basis: "maxPageSize bounds a page",
        versions: &[],
    },
    Rule {
        id: "list.page_size_range",
        title: "maxPageSize outside 1..1000 is refused (400 or 422)",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Inferred,
        basis: "the 2026 maxPageSize bounds are not documented; out of range is refused with 400 or 422",
        versions: &[],
    },
    Rule {
        id: "list.defaults",
        title: "Without maxPageSize and sortBy, a listing has pages of 10 runs, most recently updated first",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Documented,
        basis: "maxPageSize defaults to 10, sortBy to updatedAt and sortDir to desc (2024-12-23 docs, spec-2025; the 2026 defaults are assumed unchanged)",
        versions: &[],
    },
    Rule {
        id: "list.status_filter",
        title: "Listing a batch by status shows only runs in that status, and every run already settled in it",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Documented,
        basis: "List Workflow Runs filters by status (every version); a run settled in PROCESSED, FAILED, REJECTED or CANCELLED stays there, so a later listing by that status holds it",
        versions: &[],
    },
    Rule {
        id: "list.workflow_filter",
        title: "Listing a batch by its workflowId shows all its runs, each of that workflow; by a workflow that does not exist, none",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Documented,
        basis: "List Workflow Runs filters by workflowId (every version); whether an unknown workflowId is refused (4xx) or matches nothing (200, no runs) is not documented, so both pass",
        versions: &[],
    },
    Rule {
        id: "list.token_chain_ends",
        title: "The nextPageToken chain ends (no token repeats, no more pages than runs)",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Documented,
        basis: "the last page has no nextPageToken",
        versions: &[],
    },
];
