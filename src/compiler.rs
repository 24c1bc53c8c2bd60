//! The pipeline, top to bottom: read → parse → schema → typed topology → model → rules.
//!
//! Each stage takes the previous stage's value and returns a new one plus diagnostics; no
//! stage stops the pipeline for a problem a later stage can still look past. The only early
//! exits are a file that cannot be parsed at all (nothing to check) and a document that does
//! not fit the types (no model to check rules on); in the latter case the schema has already
//! said exactly what is wrong.

use std::path::Path;

use crate::diagnostic::{self, Code, Diagnostic, Reporter};
use crate::model::{self, Model};
use crate::parse;
use crate::schema;
use crate::source::{ReadError, Source};
use crate::topology::Topology;
use crate::validate;

/// The outcome of checking a topology.
#[derive(Debug)]
pub struct Checked {
    pub source: Source,
    /// The spanned tree, when the file parsed (later stages place their diagnostics with it).
    pub tree: Option<parse::Node>,
    /// The resolved model, when the document fits the format (even with rule violations).
    pub model: Option<Model>,
    /// Every diagnostic, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        diagnostic::counts(&self.diagnostics).0 > 0
    }
}

/// Why a topology could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// An environment problem: the file is missing or unreadable (exit 3).
    #[error("{0}")]
    Unreadable(#[source] ReadError),
}

/// Adds what the CRDs refuse (`--istio-crds`, [`crate::crds`]) to a checked topology's
/// diagnostics, in order. A topology without a model has nothing to check.
pub fn check_crds(
    checked: &mut Checked,
    crds: &crate::crds::Crds,
) -> Result<(), crate::crds::CrdError> {
    let (Some(model), Some(tree)) = (&checked.model, &checked.tree) else {
        return Ok(());
    };
    let found = crate::crds::check(model, tree, &checked.source, crds, &checked.diagnostics)?;
    checked.diagnostics.extend(found);
    diagnostic::sort(&mut checked.diagnostics);
    checked.diagnostics.dedup();
    Ok(())
}

/// Reads and checks a topology file. Files that are too large or not UTF-8 are diagnostics
/// (the topology is invalid); files that cannot be read are a [`LoadError`].
pub fn check_file(path: &Path) -> Result<Checked, LoadError> {
    match Source::read(path) {
        Ok(source) => Ok(check(source)),
        Err(e @ ReadError::Io { .. }) => Err(LoadError::Unreadable(e)),
        Err(e) => {
            let code = match e {
                ReadError::TooLarge { .. } => Code::InputLimit,
                _ => Code::YamlSyntax,
            };
            let help = match e {
                ReadError::TooLarge { .. } => {
                    "a topology is a few hundred kilobytes even for thousands of clusters: check that this is the right file"
                }
                _ => "save the file as UTF-8",
            };
            let source = Source::new(path.display().to_string(), path, String::new());
            Ok(Checked {
                source,
                tree: None,
                model: None,
                diagnostics: vec![Diagnostic::error(code, e.to_string()).with_help(help)],
            })
        }
    }
}

/// Stack for the checking thread: the parser, the schema validator and serde recurse once per
/// nesting level, and debug builds use large frames; 64 levels need far less than this.
const STACK_BYTES: usize = 64 * 1024 * 1024;

/// Checks a topology already in memory.
///
/// The stages run on a thread of their own with a stack sized for the nesting limit, so that
/// the deepest document the parser accepts cannot overflow the caller's stack (test threads
/// have 2 MiB).
pub fn check(source: Source) -> Checked {
    // The source goes to the worker through a slot, so that it is still here if no thread
    // can be had and the check has to run on this one.
    let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(source)));
    let take = |slot: &std::sync::Mutex<Option<Source>>| {
        slot.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    };
    let theirs = std::sync::Arc::clone(&slot);
    let worker = std::thread::Builder::new()
        .name("meshc-check".into())
        .stack_size(STACK_BYTES)
        .spawn(move || take(&theirs).map(check_here));
    let checked = match worker {
        Ok(handle) => handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        Err(_) => None,
    };
    checked.unwrap_or_else(|| {
        let source = take(&slot).unwrap_or_else(|| unreachable!("the worker took the source"));
        check_here(source)
    })
}

fn check_here(source: Source) -> Checked {
    let tree = match parse::parse(&source) {
        Ok(tree) => tree,
        Err(d) => {
            return Checked {
                source,
                tree: None,
                model: None,
                diagnostics: vec![d],
            };
        }
    };
    let json = tree.to_json();
    let verdict = schema::check(&source, &tree, &json);
    let mut diagnostics = verdict.diagnostics;
    let json = if verdict.rejected.is_empty() {
        json
    } else {
        schema::without_rejected(&json, &verdict.rejected)
    };
    let model = match serde_json::from_value::<Topology>(json) {
        Ok(topology) => {
            let mut reporter = Reporter::new(&tree);
            let model = model::resolve(topology, &mut reporter);
            validate::run(&model, &mut reporter);
            diagnostics.extend(reporter.into_diagnostics());
            Some(model)
        }
        Err(e) => {
            if diagnostics.is_empty() {
                diagnostics.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        format!("the topology does not fit the format: {e}"),
                    )
                    .at(tree.span, "in this document")
                    .with_help("compare with docs/topology.md"),
                );
            }
            None
        }
    };
    diagnostic::sort(&mut diagnostics);
    diagnostics.dedup();
    Checked {
        source,
        tree: Some(tree),
        model,
        diagnostics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Code;
    use crate::source::Source;

    #[test]
    fn a_destination_rule_version_the_crds_do_not_serve_is_shown_at_its_name() {
        // CRDs from before Istio 1.22, which served DestinationRule as v1beta1 and v1alpha3.
        let old = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: destinationrules.networking.istio.io }
spec:
  group: networking.istio.io
  names: { kind: DestinationRule, plural: destinationrules }
  versions:
    - { name: v1alpha3, served: true, schema: { openAPIV3Schema: { type: object } } }
    - { name: v1beta1, served: true, schema: { openAPIV3Schema: { type: object } } }
";
        let mut crds = crate::crds::Crds::new();
        crds.add_file("old.yaml", old).expect("loads");
        let text = "apiVersion: meshc/v1alpha1
kind: Topology
meshes: [{ name: mesh1 }]
networks: [{ name: network1 }]
clusters: [{ name: cluster1, network: network1, controlPlane: primary }]
services: [{ name: web, namespace: shop, ports: [{ name: http, port: 8080 }] }]
destinationRules:
  - name: web
    host: web
";
        let mut checked = check(Source::new("t.yaml", "t.yaml", text.into()));
        assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
        check_crds(&mut checked, &crds).expect("compiles");
        let d = &checked.diagnostics;
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, Code::CrdNotServed);
        assert_eq!(d[0].line_col(&checked.source), (8, 11));
        assert!(
            d[0].message.contains("served: v1alpha3, v1beta1"),
            "{}",
            d[0].message
        );
    }
}
