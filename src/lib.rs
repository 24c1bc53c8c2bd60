//! meshc compiles one declarative multi-cluster Istio topology into per-cluster manifests.
//!
//! The library is the whole compiler; `main.rs` only calls [`cli::run`]. The pipeline is in
//! [`compiler`], one module per stage: [`source`] → [`parse`] → [`schema`] → [`topology`] →
//! [`model`] → [`validate`]. See ARCHITECTURE.md for the invariants.

pub mod cli;
pub mod compile;
pub mod compiler;
pub mod crds;
pub mod diagnostic;
pub mod diff;
pub mod emit;
pub mod emitters;
pub mod explain;
mod files;
pub mod graph;
pub mod init;
pub mod inputs;
pub mod interrupt;
pub mod istio;
pub mod model;
pub mod noop;
pub mod output;
mod parallel;
pub mod parse;
pub mod pki;
pub mod plan;
pub mod progress;
pub mod render;
pub mod rotate_root;
pub mod schema;
pub mod source;
pub mod span;
mod suggest;
pub mod topology;
pub mod validate;
pub mod yaml;
