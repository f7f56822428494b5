//! Helpers shared by the integration tests, by theme: `api` (start a mock, talk to it as a
//! client would), `capture` (receive webhook deliveries with a real HTTP receiver), `run`
//! (run a scenario in-process).
#![allow(dead_code, unused_imports)]

mod api;
mod capture;
mod run;

pub use api::*;
pub use capture::*;
pub use run::*;
