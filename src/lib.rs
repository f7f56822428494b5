//! batchproof: a load-testing and conformance harness for batch workflow-run APIs.
//!
//! Data flows one way: scenario → load engine → target → observations → checks and
//! metrics → report. The mock is only ever a *target*: the harness reaches it over HTTP,
//! exactly as it reaches the real API, so nothing it checks can be faked through shared
//! memory.

pub mod api;
pub mod checks;
pub mod cli;
pub mod config;
pub mod files;
pub mod load;
pub mod metrics;
pub mod mock;
pub mod observe;
pub mod report;
pub mod resume;
pub mod run;
pub mod scenario;
pub mod webhook;
