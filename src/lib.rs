//! meshc compiles one declarative multi-cluster Istio topology into per-cluster manifests.
//!
//! The library is the whole compiler; `main.rs` only calls [`cli::run`]. The pipeline is in
//! [`compiler`], one module per stage: [`source`] → [`parse`] → [`schema`] → [`topology`] →
//! [`model`] → [`validate`]. See ARCHITECTURE.md for the invariants.

pub mod cli;
pub mod compiler;
pub mod diagnostic;
mod files;
pub mod model;
pub mod parse;
pub mod pki;
pub mod schema;
pub mod source;
mod suggest;
pub mod topology;
pub mod validate;
