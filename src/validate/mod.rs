//! Stage 4: the semantic rules, one file per family (docs/rules.md lists every code).
//!
//! Rules read the resolved [`Model`] and report through a [`Reporter`]; none of them stops
//! the others, so one run reports every problem. A rule that depends on a reference the
//! resolver could not resolve simply skips that object: the resolver already said why.

mod callers;
mod destination_rules;
mod gitops;
mod install;
mod locality;
mod names;
mod networking;
mod reachability;
mod structure;
mod trust;

pub use install::gateway_api_bundle;
pub use locality::{Locality, parse_locality};
pub use names::{dns1035_label, dns1123_label};

use crate::diagnostic::Reporter;
use crate::model::Model;

/// Runs every rule family over the model.
pub fn run(model: &Model, r: &mut Reporter<'_>) {
    names::run(model, r);
    structure::run(model, r);
    trust::run(model, r);
    networking::run(model, r);
    networking::services(model, r);
    install::run(model, r);
    destination_rules::run(model, r);
    callers::run(model, r);
    reachability::run(model, r);
    gitops::run(model, r);
}
