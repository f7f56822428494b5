//! Webhooks: signing and verification shared by the mock's sender and the harness's
//! receiver, so both sides of a delivery agree by construction, and a test checks them
//! against the official SDK's verifier.

pub mod receiver;
pub mod signing;
