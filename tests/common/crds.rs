//! Istio's and the Gateway API's CRD schemas as strict JSON Schemas: the tests' check that what
//! `meshc build` writes would be accepted by a cluster with those CRDs installed.
//!
//! Self-contained, so that a test can include it by path:
//!
//! ```ignore
//! #[path = "common/crds.rs"]
//! mod crds;
//! ```
//!
//! Each served version's `openAPIV3Schema` is made strict the way the API server's strict field
//! validation is: an object schema with `properties` and neither `additionalProperties` nor
//! `x-kubernetes-preserve-unknown-fields: true` rejects unknown fields. `nullable` admits null,
//! `x-kubernetes-int-or-string` admits an integer or a string, the other `x-kubernetes-*` keys
//! (CEL rules among them) are dropped. Before validating, structural defaults are applied to a
//! copy of the document, as the API server does (some `oneOf`s depend on them). `metadata` may be
//! any object; `apiVersion` and `kind` must be strings.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// The CRD files, relative to the crate's directory.
pub const CRD_FILES: [&str; 2] = [
    "tests/data/crds/istio-1.30.3-crd-all.gen.yaml",
    "tests/data/crds/gateway-api-v1.5.1.yaml",
];

/// (group, version, kind)
type Gvk = (String, String, String);

/// Every served version of every CRD in [`CRD_FILES`].
pub struct Crds {
    /// Every group a loaded CRD belongs to.
    groups: BTreeSet<String>,
    /// The served versions of each (group, kind).
    served: BTreeMap<(String, String), Vec<String>>,
    versions: BTreeMap<Gvk, Version>,
}

struct Version {
    /// The strict JSON Schema (with `default`s kept for defaulting).
    schema: Value,
    /// Compiled on first use.
    validator: OnceLock<Result<jsonschema::Validator, String>>,
}

impl fmt::Debug for Crds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crds")
            .field("groups", &self.groups)
            .field("versions", &self.versions.len())
            .finish_non_exhaustive()
    }
}

/// The CRDs, loaded once per process.
pub fn shared() -> &'static Crds {
    static CRDS: OnceLock<Crds> = OnceLock::new();
    CRDS.get_or_init(load)
}

/// Reads and indexes [`CRD_FILES`]; panics if one is missing or not YAML.
pub fn load() -> Crds {
    let mut crds = Crds {
        groups: BTreeSet::new(),
        served: BTreeMap::new(),
        versions: BTreeMap::new(),
    };
    for rel in CRD_FILES {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut n = 0;
        for doc in &docs {
            if doc["apiVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("apiextensions.k8s.io/"))
                && doc["kind"] == "CustomResourceDefinition"
            {
                n += crds.add(doc);
            }
        }
        assert!(n > 0, "{}: no served CRD versions", path.display());
    }
    crds
}

impl Crds {
    /// Indexes one CRD's served versions; returns how many.
    fn add(&mut self, crd: &Value) -> usize {
        let spec = &crd["spec"];
        let (Some(group), Some(kind)) = (spec["group"].as_str(), spec["names"]["kind"].as_str())
        else {
            panic!(
                "CRD without spec.group or spec.names.kind: {}",
                crd["metadata"]["name"]
            );
        };
        self.groups.insert(group.to_owned());
        let mut n = 0;
        for version in spec["versions"].as_array().into_iter().flatten() {
            if version["served"] != true {
                continue;
            }
            let name = version["name"].as_str().expect("version name");
            let schema = &version["schema"]["openAPIV3Schema"];
            assert!(
                schema.is_object(),
                "{group}/{name} {kind}: no openAPIV3Schema"
            );
            self.served
                .entry((group.to_owned(), kind.to_owned()))
                .or_default()
                .push(name.to_owned());
            self.versions.insert(
                (group.to_owned(), name.to_owned(), kind.to_owned()),
                Version {
                    schema: top_level(strict(schema, true)),
                    validator: OnceLock::new(),
                },
            );
            n += 1;
        }
        n
    }

    /// Whether `api_version`'s group is the group of any loaded CRD.
    pub fn is_known(&self, api_version: &str, _kind: &str) -> bool {
        self.groups.contains(split(api_version).0)
    }

    /// The served (group, version, kind)s, sorted.
    pub fn served(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.versions
            .keys()
            .map(|(g, v, k)| (g.as_str(), v.as_str(), k.as_str()))
    }

    /// The strict JSON Schema for a (group, version, kind), if served.
    pub fn schema(&self, group: &str, version: &str, kind: &str) -> Option<&Value> {
        self.versions
            .get(&(group.to_owned(), version.to_owned(), kind.to_owned()))
            .map(|v| &v.schema)
    }

    /// Validates one Kubernetes document against its CRD; every error as `path: message`.
    pub fn validate(&self, doc: &Value) -> Result<(), Vec<String>> {
        let (Some(api_version), Some(kind)) = (doc["apiVersion"].as_str(), doc["kind"].as_str())
        else {
            return Err(vec!["/: apiVersion and kind must be strings".to_owned()]);
        };
        let (group, version) = split(api_version);
        if !self.groups.contains(group) {
            return Err(vec![format!(
                "/: no CRD for group `{group}` ({api_version} {kind})"
            )]);
        }
        let key = (group.to_owned(), version.to_owned(), kind.to_owned());
        let Some(entry) = self.versions.get(&key) else {
            let served = self.served.get(&(group.to_owned(), kind.to_owned()));
            return Err(vec![match served {
                Some(versions) => format!(
                    "/: {api_version} {kind} is not served (served versions: {})",
                    versions.join(", ")
                ),
                None => format!("/: group `{group}` has no kind `{kind}`"),
            }]);
        };
        let validator = entry
            .validator
            .get_or_init(|| {
                jsonschema::draft7::options()
                    .should_validate_formats(true)
                    .build(&entry.schema)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .unwrap_or_else(|e| panic!("{api_version} {kind}: schema does not compile: {e}"));
        let mut doc = doc.clone();
        apply_defaults(&entry.schema, &mut doc);
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| {
                let path = e.instance_path().as_str();
                let path = if path.is_empty() { "/" } else { path };
                format!("{path}: {e}")
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// `group/version` → (group, version); the core group is "".
fn split(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// An openAPIV3Schema as a strict JSON Schema. `structural`: not inside `allOf`, `anyOf`,
/// `oneOf` or `not`, where the API server does not prune and unknown fields are not decided.
fn strict(schema: &Value, structural: bool) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let flag = |key: &str| map.get(key) == Some(&Value::Bool(true));
    let mut out = Map::new();
    for (key, value) in map {
        let value = match key.as_str() {
            "description" | "nullable" => continue,
            k if k.starts_with("x-kubernetes-") => continue,
            "properties" | "patternProperties" | "definitions" => match value {
                Value::Object(props) => Value::Object(
                    props
                        .iter()
                        .map(|(k, v)| (k.clone(), strict(v, structural)))
                        .collect(),
                ),
                other => other.clone(),
            },
            "items" | "additionalProperties" => match value {
                Value::Array(items) => {
                    Value::Array(items.iter().map(|v| strict(v, structural)).collect())
                }
                other => strict(other, structural),
            },
            "not" => strict(value, false),
            "allOf" | "anyOf" | "oneOf" => match value {
                Value::Array(items) => {
                    Value::Array(items.iter().map(|v| strict(v, false)).collect())
                }
                other => other.clone(),
            },
            _ => value.clone(),
        };
        out.insert(key.clone(), value);
    }
    if flag("x-kubernetes-int-or-string") {
        out.insert("type".to_owned(), json!(["integer", "string"]));
    }
    if flag("nullable") {
        match out.get_mut("type") {
            Some(Value::String(t)) => {
                let t = std::mem::take(t);
                out.insert("type".to_owned(), json!([t, "null"]));
            }
            Some(Value::Array(types)) if !types.contains(&json!("null")) => {
                types.push(json!("null"));
            }
            _ => {}
        }
        if let Some(Value::Array(values)) = out.get_mut("enum")
            && !values.contains(&Value::Null)
        {
            values.push(Value::Null);
        }
    }
    if structural
        && map.contains_key("properties")
        && !map.contains_key("additionalProperties")
        && !flag("x-kubernetes-preserve-unknown-fields")
    {
        out.insert("additionalProperties".to_owned(), Value::Bool(false));
    }
    Value::Object(out)
}

/// The top level: what Kubernetes adds to every object, whatever the CRD describes.
fn top_level(mut schema: Value) -> Value {
    let map = schema.as_object_mut().expect("object schema");
    map.insert("type".to_owned(), json!("object"));
    let props = map
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("properties");
    props.insert("apiVersion".to_owned(), json!({ "type": "string" }));
    props.insert("kind".to_owned(), json!({ "type": "string" }));
    props.insert("metadata".to_owned(), json!({ "type": "object" }));
    let required = map
        .entry("required")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .expect("required");
    for key in ["apiVersion", "kind"] {
        if !required.contains(&json!(key)) {
            required.push(json!(key));
        }
    }
    if !map.contains_key("additionalProperties") {
        map.insert("additionalProperties".to_owned(), Value::Bool(false));
    }
    schema
}

/// Structural defaulting, as the API server does before validating: a missing property whose
/// schema has a `default` gets it; through `properties`, `additionalProperties` and `items`.
fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(fields) => {
            let props = schema.get("properties").and_then(Value::as_object);
            if let Some(props) = props {
                for (name, sub) in props {
                    if !fields.contains_key(name)
                        && let Some(default) = sub.get("default")
                    {
                        fields.insert(name.clone(), default.clone());
                    }
                }
            }
            let additional = schema.get("additionalProperties").filter(|s| s.is_object());
            for (name, field) in fields.iter_mut() {
                let sub = props.and_then(|p| p.get(name)).or(additional);
                if let Some(sub) = sub {
                    apply_defaults(sub, field);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items").filter(|s| s.is_object()) {
                for item in items {
                    apply_defaults(sub, item);
                }
            }
        }
        _ => {}
    }
}
