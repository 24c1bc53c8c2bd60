//! Stage 2: the JSON Schema of the topology format, and validation against it.
//!
//! The schema is generated from the serde types in [`crate::topology`] (schemars), checked in
//! as `schema/topology.schema.json` for editors (`# yaml-language-server: $schema=...`), and
//! printed by `meshc schema`. Every topology is validated against it with jsonschema before
//! the typed model is built, and every schema error is mapped back onto the YAML: the instance
//! path walks the spanned tree from [`crate::parse`], unknown keys are underlined themselves
//! (not their parent), and an unknown key close to a known one gets a "did you mean".

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use serde_json::Value as Json;

use crate::diagnostic::{Code, Diagnostic};
use crate::parse::{Node, Value};
use crate::source::Source;
use crate::span::{Path, Seg};
use crate::suggest::did_you_mean;
use crate::topology::Topology;

/// The topology JSON Schema, as pretty-printed JSON with a trailing newline.
pub fn schema_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let mut s = serde_json::to_string_pretty(schema_json()).unwrap_or_default();
        s.push('\n');
        s
    })
}

/// The topology JSON Schema as a JSON value.
pub fn schema_json() -> &'static Json {
    static SCHEMA: OnceLock<Json> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let schema = schemars::generate::SchemaSettings::draft2020_12()
            .into_generator()
            .into_root_schema_for::<Topology>();
        let mut json = schema.to_value();
        strip_null(&mut json);
        // Identity first, definitions last: the order a reader of the file expects.
        if let Json::Object(map) = &mut json {
            let mut ordered = serde_json::Map::new();
            for key in ["$schema", "title", "description"] {
                if let Some(v) = map.remove(key) {
                    ordered.insert(key.into(), v);
                }
            }
            let defs = map.remove("$defs");
            ordered.append(map);
            if let Some(d) = defs {
                ordered.insert("$defs".into(), d);
            }
            *map = ordered;
        }
        json
    })
}

/// Optional fields are written by omitting them, never as `null`: a bare `eastWestGateway:`
/// is almost always an unfinished edit, so the schema refuses it. schemars makes `Option<T>`
/// nullable; this removes that again.
fn strip_null(v: &mut Json) {
    match v {
        Json::Object(map) => {
            if let Some(Json::Array(any)) = map.get("anyOf")
                && any.len() == 2
            {
                let is_null = |s: &Json| s.get("type") == Some(&Json::String("null".into()));
                if let Some(other) = any.iter().find(|s| !is_null(s)).cloned()
                    && any.iter().any(is_null)
                {
                    map.remove("anyOf");
                    if let Json::Object(o) = other {
                        for (k, val) in o {
                            map.entry(k).or_insert(val);
                        }
                    }
                }
            }
            if let Some(Json::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let t = types.remove(0);
                    map.insert("type".into(), t);
                }
            }
            if let Some(Json::Array(e)) = map.get_mut("enum") {
                e.retain(|x| !x.is_null());
            }
            if map.get("default") == Some(&Json::Null) {
                map.remove("default");
            }
            for val in map.values_mut() {
                strip_null(val);
            }
        }
        Json::Array(items) => items.iter_mut().for_each(strip_null),
        _ => {}
    }
}

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::draft202012::new(schema_json())
            .unwrap_or_else(|e| unreachable!("the generated schema compiles: {e}"))
    })
}

/// The schema's verdict: diagnostics, and the paths of values that do not fit.
#[derive(Debug, Default)]
pub struct SchemaCheck {
    pub diagnostics: Vec<Diagnostic>,
    /// Values the schema rejected; removing them (so that defaults apply) often lets the typed
    /// model be built anyway, and the semantic rules run in the same pass.
    pub rejected: Vec<Path>,
}

/// Validates the document against the schema; one diagnostic per problem (one per value).
pub fn check(source: &Source, tree: &Node, doc: &Json) -> SchemaCheck {
    let mut out: Vec<Diagnostic> = Vec::new();
    let mut rejected = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for err in validator().iter_errors(doc) {
        let path = instance_path(&err);
        for d in describe(source, tree, &path, err.kind(), &err.to_string()) {
            // One diagnostic per value: `1.30` fails both `type` and `enum`; say it once.
            let key = match d.code {
                Code::InvalidValue => (d.path.clone(), d.code, String::new()),
                _ => (d.path.clone(), d.code, d.message.clone()),
            };
            if seen.insert(key) {
                if d.code == Code::InvalidValue {
                    rejected.push(path.clone());
                }
                out.push(d);
            }
        }
    }
    SchemaCheck {
        diagnostics: out,
        rejected,
    }
}

/// Removes the rejected values from a copy of the document, where they are mapping values
/// (list items are kept so that every later path still points at the same item).
pub fn without_rejected(doc: &Json, rejected: &[Path]) -> Json {
    let mut doc = doc.clone();
    for path in rejected {
        let Some((Seg::Key(last), parent)) = path.0.split_last() else {
            continue;
        };
        let pointer = Path(parent.to_vec()).to_string();
        let pointer = if pointer == "/" {
            String::new()
        } else {
            pointer
        };
        if let Some(Json::Object(map)) = doc.pointer_mut(&pointer) {
            map.remove(last);
        }
    }
    doc
}

/// Turns one schema error into diagnostics (one per unknown key for `additionalProperties`).
fn describe(
    source: &Source,
    tree: &Node,
    path: &Path,
    kind: &ValidationErrorKind,
    fallback: &str,
) -> Vec<Diagnostic> {
    let here = tree.get(path).map(|(n, _)| n);
    let what = object_name(path);
    match kind {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let known = known_fields(path);
            unexpected
                .iter()
                .map(|key| {
                    let p = path.key(key);
                    let span = tree.key_span_of(&p);
                    let help = match did_you_mean(key, known.iter().map(String::as_str)) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if known.is_empty() => "remove it".to_string(),
                        None => format!("remove it; {what} has: {}", known.join(", ")),
                    };
                    Diagnostic::error(
                        Code::UnknownField,
                        format!("unknown field `{key}` in {what}"),
                    )
                    .at(span, "unknown field")
                    .with_help(help)
                    .with_path(p.to_string())
                })
                .collect()
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            let span = tree.span_of(path);
            let desc = schema_at(&path.key(name))
                .and_then(|s| s.get("description"))
                .and_then(Json::as_str)
                .map(|d| format!(" ({})", first_sentence(d)))
                .unwrap_or_default();
            vec![
                Diagnostic::error(
                    Code::MissingField,
                    format!("missing required field `{name}` in {what}"),
                )
                .at(span, format!("`{name}` is missing here"))
                .with_help(format!("add `{name}:`{desc}"))
                .with_path(path.to_string()),
            ]
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => type_word(&t.to_string()).to_string(),
                TypeKind::Multiple(ts) => ts
                    .iter()
                    .map(|t| type_word(&t.to_string()).to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            let (found, raw) = found(source, here);
            let mut help = format!("write {expected} here");
            if expected == "a string"
                && matches!(
                    here.map(|n| &n.value),
                    Some(Value::Int(_) | Value::UInt(_) | Value::Float(_) | Value::Bool(_))
                )
            {
                help = format!("YAML reads the unquoted `{raw}` as {found}: quote it, `\"{raw}\"`");
            }
            vec![invalid(
                tree,
                path,
                format!("expected {expected}, found {found}"),
                help,
            )]
        }
        ValidationErrorKind::Enum { options } => {
            let opts: Vec<String> = options
                .as_array()
                .map(|a| a.iter().map(show_json).collect())
                .unwrap_or_default();
            let (found, raw) = found(source, here);
            let bare: Vec<&str> = options
                .as_array()
                .map(|a| a.iter().filter_map(Json::as_str).collect())
                .unwrap_or_default();
            let help = match here.map(|n| &n.value) {
                Some(Value::Str(s)) => {
                    did_you_mean(s, bare.iter().copied()).map(|s| format!("did you mean `{s}`?"))
                }
                Some(Value::Int(_) | Value::UInt(_) | Value::Float(_)) if !bare.is_empty() => Some(
                    format!("YAML reads the unquoted `{raw}` as {found}: quote it, `\"{raw}\"`"),
                ),
                _ => None,
            }
            .unwrap_or_else(|| format!("use one of: {}", opts.join(", ")));
            vec![invalid(
                tree,
                path,
                format!("`{raw}` is not one of {}", opts.join(", ")),
                help,
            )]
        }
        ValidationErrorKind::Minimum { limit } => vec![invalid(
            tree,
            path,
            format!("must be at least {limit}"),
            format!("use a value of {limit} or more"),
        )],
        ValidationErrorKind::Maximum { limit } => vec![invalid(
            tree,
            path,
            format!("must be at most {limit}"),
            format!("use a value of {limit} or less"),
        )],
        ValidationErrorKind::MinItems { limit } => vec![invalid(
            tree,
            path,
            format!(
                "{what} needs at least {limit} entr{}",
                if *limit == 1 { "y" } else { "ies" }
            ),
            "add an entry".to_string(),
        )],
        ValidationErrorKind::UniqueItems => vec![invalid(
            tree,
            path,
            format!("the entries of {what} must be unique"),
            "remove the repeated entry".to_string(),
        )],
        _ => vec![invalid(
            tree,
            path,
            fallback.to_string(),
            "see docs/topology.md for the field's format".to_string(),
        )],
    }
}

fn invalid(tree: &Node, path: &Path, message: String, help: String) -> Diagnostic {
    Diagnostic::error(Code::InvalidValue, message)
        .at(tree.span_of(path), "invalid value")
        .with_help(help)
        .with_path(path.to_string())
}

/// What a node is, for messages, and the text the user wrote for it.
fn found<'s>(source: &'s Source, node: Option<&Node>) -> (&'static str, &'s str) {
    match node {
        Some(n) => {
            let raw = source.slice(n.span.offset, n.span.len);
            (n.kind_name(), raw)
        }
        None => ("nothing", ""),
    }
}

/// Where in the document a schema error is, as a [`Path`].
pub(crate) fn instance_path(err: &jsonschema::ValidationError<'_>) -> Path {
    Path(
        err.instance_path()
            .iter()
            .map(|s| match s {
                LocationSegment::Property(p) => Seg::Key(p.into_owned()),
                LocationSegment::Index(i) => Seg::Index(i),
            })
            .collect(),
    )
}

/// The type of a JSON Schema in words, for a message.
pub(crate) fn type_word(t: &str) -> &str {
    match t {
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "a boolean (true or false)",
        "object" => "a mapping",
        "array" => "a list",
        "null" => "null",
        other => other,
    }
}

/// A value as a message quotes it: strings in backticks.
pub(crate) fn show_json(v: &Json) -> String {
    match v {
        Json::String(s) => format!("`{s}`"),
        other => other.to_string(),
    }
}

fn first_sentence(s: &str) -> &str {
    let s = s.split("\n\n").next().unwrap_or(s);
    s.split(". ").next().unwrap_or(s).trim_end_matches('.')
}

/// A readable name for the object at `path`: `cluster #2`, `mesh #1`, `the topology`, or the
/// field name for nested objects.
fn object_name(path: &Path) -> String {
    let singular = |section: &str| match section {
        "meshes" => "mesh".to_string(),
        "networks" => "network".to_string(),
        "localities" => "locality".to_string(),
        "clusters" => "cluster".to_string(),
        "services" => "service".to_string(),
        "destinationRules" => "destinationRule".to_string(),
        "istioConfig" => "istioConfig entry".to_string(),
        "ingressGateways" => "ingress gateway".to_string(),
        "ports" => "port".to_string(),
        "subsets" => "subset".to_string(),
        other => other.to_string(),
    };
    match path.0.as_slice() {
        [] => "the topology".to_string(),
        [.., Seg::Key(section), Seg::Index(i)] => format!("{} #{}", singular(section), i + 1),
        [.., Seg::Key(k)] => format!("`{k}`"),
        [.., Seg::Index(i)] => format!("entry #{}", i + 1),
    }
}

/// The field names the schema allows at an object path.
fn known_fields(path: &Path) -> Vec<String> {
    schema_at(path)
        .and_then(|s| s.get("properties"))
        .and_then(Json::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// The subschema that applies at an instance path (following local `$ref`s).
fn schema_at(path: &Path) -> Option<&'static Json> {
    let root = schema_json();
    let mut s = deref(root, root)?;
    for seg in &path.0 {
        s = match seg {
            Seg::Key(k) => s
                .get("properties")
                .and_then(|p| p.get(k))
                .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))?,
            Seg::Index(_) => s.get("items")?,
        };
        s = deref(root, s)?;
    }
    Some(s)
}

fn deref<'a>(root: &'a Json, s: &'a Json) -> Option<&'a Json> {
    let mut s = s;
    for _ in 0..16 {
        match s.get("$ref").and_then(Json::as_str) {
            Some(r) => s = root.pointer(r.strip_prefix('#')?)?,
            None => return Some(s),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_has_no_nullable_fields_and_compiles() {
        let text = schema_text();
        assert!(
            !text.contains("\"null\""),
            "nullable types left in the schema"
        );
        let _ = validator();
        assert!(known_fields(&crate::path!("clusters", 0)).contains(&"network".to_string()));
        assert!(
            known_fields(&crate::path!("clusters", 0, "eastWestGateway"))
                .contains(&"address".to_string())
        );
    }
}
