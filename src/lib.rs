//! batchproof: a load-testing and conformance harness for batch workflow-run APIs.
//!
//! Data flows one way: scenario → load engine → target → observations → checks and
//! metrics → report. The mock is only ever a *target*: the harness reaches it over HTTP,
//! exactly as it reaches the real API, so nothing it checks can be faked through shared
//! memory. `tests/layout.rs` fails when a cycle between these modules appears.
//!
//! # Layout, in the order data flows
//!
//! - `config`: durations, distributions and located YAML errors shared by scenarios and
//!   mock profiles.
//! - `scenario`: the scenario file, its validation (file:line:column) and its checked form.
//! - `api`: the contract as types and constants (requests, runs, events, errors, versions)
//!   shared by harness and mock, and the HTTP client.
//! - `load`: the load engine — schedules, body building, submission.
//! - `mock`: the stateful simulator of the API, a target reached only over HTTP.
//! - `webhook`: signing and verification, and the receiver of deliveries.
//! - `observe`: what a run saw — the ledger (one record per batch and input), polling,
//!   correlation, the accounting's invariants and the journal that survives a kill.
//! - `checks`: the rule catalogue — rules, findings, judging over plain data (a leaf).
//! - `probes`: the active conformance phase — audit, pagination walk, edge probes.
//! - `metrics`: HdrHistogram recorders, request counters, the per-second timeline.
//! - `report`: the report model and one file per format; compare and merge; the
//!   projection, the bulk-job forecast and the knee's result.
//! - `run`: a scenario run end to end, a forecast's sample of a job, the knee search (a
//!   run per step); `resume`: a killed run's journal, read back and finished.
//!
//! The command line (`src/cli.rs`, `src/commands/`) belongs to the binary: it alone parses
//! arguments, prints to the terminal, handles signals and chooses exit codes; this library
//! returns values and errors.

pub mod api;
pub mod checks;
pub mod config;
pub mod grade;
pub mod load;
pub mod metrics;
pub mod mock;
pub mod observe;
pub mod probes;
pub mod report;
pub mod resume;
pub mod run;
pub mod scenario;
pub mod webhook;
