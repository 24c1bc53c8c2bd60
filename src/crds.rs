//! The CRD stage (`--istio-crds`): DestinationRules and `istioConfig` checked against the
//! openAPIV3Schemas of the CRDs they will be applied to, before anything is written.
//!
//! The topology holds Istio's `trafficPolicy`, `subsets` and every `istioConfig` spec verbatim,
//! so meshc's own schema cannot see a misspelt `consecutive5xxErrorz` or `tls.mode: MUTUAL_TLS`;
//! the API server would refuse them only at `kubectl apply`, long after review. The CRDs
//! themselves (Istio's `crd-all.gen.yaml`, a Gateway API bundle) are the authority, so this
//! module reads them and does what the API server does, offline:
//!
//! - each served version's `openAPIV3Schema` is made a strict JSON Schema the way strict field
//!   validation is: an object schema with `properties` and neither `additionalProperties` nor
//!   `x-kubernetes-preserve-unknown-fields: true` refuses unknown fields (not inside `allOf`,
//!   `anyOf`, `oneOf` or `not`, where the API server does not prune); `nullable` admits null;
//!   `x-kubernetes-int-or-string` admits an integer or a string;
//! - structural defaults are applied to a copy of the object first (some `oneOf`s depend on
//!   them), as the API server defaults before it validates;
//! - CEL rules (`x-kubernetes-validations`) are dropped: they cannot be evaluated offline, so
//!   what they forbid is still only found by the API server.
//!
//! The files are large (Istio's is about 870 KB, the Gateway API bundle 1.3 MB) and a topology
//! uses a handful of kinds, so a schema is made strict and compiled only when a resource of its
//! (group, version, kind) is first checked. Violations are mapped back onto the topology (the
//! DestinationRule's `/spec/trafficPolicy/...` is `/destinationRules/<i>/trafficPolicy/...`),
//! with unknown keys underlined themselves and a "did you mean" from the schema's properties.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::{Map, Value, json};

use crate::diagnostic::{Code, Diagnostic};
use crate::model::Model;
use crate::parse::{self, Node};
use crate::source::Source;
use crate::span::{Path, Seg};
use crate::suggest::did_you_mean;

/// Files larger than this are refused unread: the largest CRD bundles are a few megabytes.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// The API version meshc writes DestinationRules as.
pub const DESTINATION_RULE_API_VERSION: &str = "networking.istio.io/v1";

/// Deeper nesting than any real CRD; bounds the recursion of every walk below.
const MAX_DEPTH: usize = 200;

/// Stack for loading and checking: the YAML parser, the walks and the schema compiler recurse
/// once per nesting level, and debug builds use large frames.
const STACK_BYTES: usize = 64 * 1024 * 1024;

/// (group, version, kind)
type Gvk = (String, String, String);

/// Why the CRD files cannot be used: an environment error (exit 3), naming the file.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("{file}: cannot read the CRD file: {message}")]
    Unreadable { file: String, message: String },
    #[error("{file}: not a YAML file of CRDs: {message}")]
    NotYaml { file: String, message: String },
    #[error(
        "{file}: holds no CustomResourceDefinition (apiextensions.k8s.io/v1) with a served version and a schema"
    )]
    NoCrds { file: String },
    #[error("{file}: the schema of {api_version} {kind} cannot be used: {message}")]
    BadSchema {
        file: String,
        api_version: String,
        kind: String,
        message: String,
    },
}

/// The served versions of every CRD in the loaded files.
pub struct Crds {
    files: Vec<String>,
    /// Every group a loaded CRD belongs to.
    groups: BTreeSet<String>,
    /// The served versions of each (group, kind), in the order the CRD lists them.
    served: BTreeMap<(String, String), Vec<String>>,
    versions: BTreeMap<Gvk, Version>,
    /// Versions skipped while loading, and why (printed as notes).
    notes: Vec<String>,
}

struct Version {
    /// Index into `files`.
    file: usize,
    /// The `openAPIV3Schema` as the CRD has it.
    raw: Value,
    /// Made strict and compiled on first use.
    compiled: OnceLock<Result<Compiled, String>>,
}

struct Compiled {
    /// The strict schema (with `default`s kept, for defaulting and "did you mean").
    schema: Value,
    validator: jsonschema::Validator,
}

impl fmt::Debug for Crds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crds")
            .field("files", &self.files)
            .field("groups", &self.groups)
            .field("versions", &self.versions.len())
            .finish_non_exhaustive()
    }
}

/// One thing a schema refuses, at a path into the checked object.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// Where, in the object (`/spec/trafficPolicy/...`).
    pub path: Path,
    pub problem: Problem,
}

/// What is wrong, as far as a message needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// A field the schema does not have; `known` are the fields it has there.
    UnknownField { field: String, known: Vec<String> },
    /// A required field is missing.
    Required { field: String },
    /// The value has the wrong type; the types the schema wants.
    Type { expected: Vec<String> },
    /// The value is not one of the allowed ones.
    Enum { options: Vec<Value> },
    /// More than one of mutually exclusive fields is set.
    OneOf { fields: Vec<String> },
    /// Anything else (range, pattern, length, format, ...): the validator's message.
    Other { message: String },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.path)?;
        match &self.problem {
            Problem::UnknownField { field, .. } => write!(f, "unknown field `{field}`"),
            Problem::Required { field } => write!(f, "missing required field `{field}`"),
            Problem::Type { expected } => write!(f, "expected {}", expected.join(" or ")),
            Problem::Enum { options } => write!(
                f,
                "not one of {}",
                options
                    .iter()
                    .map(crate::schema::show_json)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Problem::OneOf { fields } => write!(
                f,
                "only one of {} may be set",
                fields
                    .iter()
                    .map(|x| format!("`{x}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Problem::Other { message } => f.write_str(message),
        }
    }
}

/// What the loaded CRDs say about one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// No loaded CRD has the object's group: it is not checked.
    Unknown,
    /// The group is loaded but has no such kind.
    NoKind { group: String },
    /// The kind exists but is not served at this version.
    NotServed { served: Vec<String> },
    /// Checked; every violation (none: the object is accepted).
    Checked(Vec<Violation>),
}

impl Crds {
    /// No CRDs (add files with [`Crds::add_file`]).
    pub fn new() -> Self {
        Crds {
            files: Vec::new(),
            groups: BTreeSet::new(),
            served: BTreeMap::new(),
            versions: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    /// Reads every file; a file that cannot be read, is not YAML or holds no usable CRD is an
    /// error naming it.
    pub fn load<P: AsRef<FsPath>>(files: &[P]) -> Result<Crds, CrdError> {
        let files: Vec<PathBuf> = files.iter().map(|p| p.as_ref().to_path_buf()).collect();
        on_big_stack(move || {
            let mut crds = Crds::new();
            for path in &files {
                let name = path.display().to_string();
                let text = read(path).map_err(|message| CrdError::Unreadable {
                    file: name.clone(),
                    message,
                })?;
                crds.add_file(&name, &text)?;
            }
            Ok(crds)
        })
    }

    /// Indexes the CRDs in one file's text; returns how many served versions it added.
    pub fn add_file(&mut self, name: &str, text: &str) -> Result<usize, CrdError> {
        let options = serde_saphyr::options! {
            budget: serde_saphyr::budget! {
                max_depth: MAX_DEPTH,
                max_nodes: 20_000_000,
                max_aliases: 10_000,
                max_total_scalar_bytes: 256 * 1024 * 1024,
            },
            with_snippet: false,
        };
        let docs: Vec<Value> =
            serde_saphyr::from_multiple_with_options(text, options).map_err(|e| {
                CrdError::NotYaml {
                    file: name.to_string(),
                    message: e.to_string().lines().next().unwrap_or_default().to_string(),
                }
            })?;
        let file = self.files.len();
        self.files.push(name.to_string());
        let mut n = 0;
        for doc in &docs {
            let is_crd = doc["apiVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("apiextensions.k8s.io/"))
                && doc["kind"] == "CustomResourceDefinition";
            if is_crd {
                n += self.add(file, doc);
            }
        }
        if n == 0 {
            return Err(CrdError::NoCrds {
                file: name.to_string(),
            });
        }
        Ok(n)
    }

    /// Indexes one CRD's served versions; returns how many.
    fn add(&mut self, file: usize, crd: &Value) -> usize {
        let spec = &crd["spec"];
        let name = crd["metadata"]["name"].as_str().unwrap_or("(unnamed)");
        let (Some(group), Some(kind)) = (spec["group"].as_str(), spec["names"]["kind"].as_str())
        else {
            self.notes.push(format!(
                "{}: CRD {name} has no spec.group or spec.names.kind: skipped",
                self.files[file]
            ));
            return 0;
        };
        let mut n = 0;
        for version in spec["versions"].as_array().into_iter().flatten() {
            if version["served"] != true {
                continue;
            }
            let Some(v) = version["name"].as_str() else {
                continue;
            };
            // apiextensions.k8s.io/v1beta1 had one schema for every version.
            let schema = version["schema"]["openAPIV3Schema"]
                .as_object()
                .or_else(|| spec["validation"]["openAPIV3Schema"].as_object());
            let Some(schema) = schema else {
                self.notes.push(format!(
                    "{}: {group}/{v} {kind} has no openAPIV3Schema: its resources are not checked",
                    self.files[file]
                ));
                continue;
            };
            self.groups.insert(group.to_owned());
            let versions = self
                .served
                .entry((group.to_owned(), kind.to_owned()))
                .or_default();
            if !versions.iter().any(|x| x == v) {
                versions.push(v.to_owned());
            }
            // A later file's copy of the same CRD replaces an earlier one.
            self.versions.insert(
                (group.to_owned(), v.to_owned(), kind.to_owned()),
                Version {
                    file,
                    raw: Value::Object(schema.clone()),
                    compiled: OnceLock::new(),
                },
            );
            n += 1;
        }
        n
    }

    /// What was skipped while loading (versions without a schema), one line each.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Whether a loaded CRD belongs to `api_version`'s group.
    pub fn knows_group(&self, api_version: &str) -> bool {
        self.groups.contains(split(api_version).0)
    }

    /// The served (group, version, kind)s, sorted.
    pub fn served(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.versions
            .keys()
            .map(|(g, v, k)| (g.as_str(), v.as_str(), k.as_str()))
    }

    /// The strict JSON Schema of a served (group, version, kind), compiled on first use.
    pub fn schema(
        &self,
        group: &str,
        version: &str,
        kind: &str,
    ) -> Result<Option<&Value>, CrdError> {
        let key = (group.to_owned(), version.to_owned(), kind.to_owned());
        match self.versions.get(&key) {
            None => Ok(None),
            Some(entry) => self.compiled(&key, entry).map(|c| Some(&c.schema)),
        }
    }

    fn compiled<'a>(&self, key: &Gvk, entry: &'a Version) -> Result<&'a Compiled, CrdError> {
        entry
            .compiled
            .get_or_init(|| {
                let schema = top_level(strict(&entry.raw, true, 0))?;
                let built = jsonschema::draft7::options()
                    .should_validate_formats(true)
                    .build(&schema);
                built
                    .map(|validator| Compiled { schema, validator })
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|message| CrdError::BadSchema {
                file: self.files[entry.file].clone(),
                api_version: format!("{}/{}", key.0, key.1),
                kind: key.2.clone(),
                message: message.clone(),
            })
    }

    /// Checks one Kubernetes object (`apiVersion`, `kind`, `metadata`, `spec`) against the
    /// CRD that serves it. The error is a schema that cannot be compiled.
    pub fn validate(&self, doc: &Value) -> Result<Verdict, CrdError> {
        on_big_stack(|| self.validate_here(doc))
    }

    /// [`Crds::validate`] on the calling thread, whose stack must be sized for [`MAX_DEPTH`].
    fn validate_here(&self, doc: &Value) -> Result<Verdict, CrdError> {
        let api_version = doc["apiVersion"].as_str().unwrap_or_default();
        let kind = doc["kind"].as_str().unwrap_or_default();
        let (group, version) = split(api_version);
        if !self.groups.contains(group) {
            return Ok(Verdict::Unknown);
        }
        let key = (group.to_owned(), version.to_owned(), kind.to_owned());
        let Some(entry) = self.versions.get(&key) else {
            return Ok(
                match self.served.get(&(group.to_owned(), kind.to_owned())) {
                    Some(versions) => Verdict::NotServed {
                        served: versions.clone(),
                    },
                    None => Verdict::NoKind {
                        group: group.to_owned(),
                    },
                },
            );
        };
        let compiled = self.compiled(&key, entry)?;
        let mut doc = doc.clone();
        apply_defaults(&compiled.schema, &mut doc, 0);
        let mut violations = Vec::new();
        for err in compiled.validator.iter_errors(&doc) {
            let path = crate::schema::instance_path(&err);
            let schema_here = compiled.schema.pointer(err.schema_path().as_str());
            violations.extend(problems(
                &compiled.schema,
                &path,
                err.kind(),
                schema_here,
                doc.pointer(err.instance_path().as_str()),
                &err.to_string(),
            ));
        }
        violations.dedup();
        Ok(Verdict::Checked(violations))
    }
}

impl Default for Crds {
    fn default() -> Self {
        Crds::new()
    }
}

/// Reads a file within [`MAX_FILE_BYTES`].
fn read(path: &FsPath) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.is_dir() {
        return Err("is a directory".to_string());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "{} bytes is more than the {} MiB a CRD bundle can be",
            meta.len(),
            MAX_FILE_BYTES / 1024 / 1024
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())
}

/// Runs `f` on a thread with a stack sized for [`MAX_DEPTH`] (or here, if none can be had).
fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let slot = std::sync::Mutex::new(Some(f));
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("meshc-crds".into())
            .stack_size(STACK_BYTES)
            .spawn_scoped(scope, || take(&slot).map(|f| f()));
        let done = match handle {
            Ok(h) => h
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => None,
        };
        done.unwrap_or_else(|| {
            let f = take(&slot).unwrap_or_else(|| unreachable!("the worker took the closure"));
            f()
        })
    })
}

fn take<F>(slot: &std::sync::Mutex<Option<F>>) -> Option<F> {
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

/// `group/version` → (group, version); the core group is "".
fn split(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// The violations one validator error stands for (one per unknown field).
fn problems(
    root: &Value,
    path: &Path,
    kind: &ValidationErrorKind,
    schema_here: Option<&Value>,
    instance: Option<&Value>,
    fallback: &str,
) -> Vec<Violation> {
    let one = |problem| {
        vec![Violation {
            path: path.clone(),
            problem,
        }]
    };
    match kind {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let known: Vec<String> = schema_at(root, path)
                .and_then(|s| s.get("properties"))
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            unexpected
                .iter()
                .map(|field| Violation {
                    path: path.key(field),
                    problem: Problem::UnknownField {
                        field: field.clone(),
                        known: known.clone(),
                    },
                })
                .collect()
        }
        ValidationErrorKind::Required { property } => one(Problem::Required {
            field: property.as_str().unwrap_or_default().to_string(),
        }),
        ValidationErrorKind::Type { kind } => one(Problem::Type {
            expected: match kind {
                TypeKind::Single(t) => vec![t.to_string()],
                TypeKind::Multiple(ts) => ts.iter().map(|t| t.to_string()).collect(),
            },
        }),
        ValidationErrorKind::Enum { options } => one(Problem::Enum {
            options: options.as_array().cloned().unwrap_or_default(),
        }),
        ValidationErrorKind::OneOfMultipleValid { .. } => {
            // Istio writes "at most one of" as oneOf branches that each require one field.
            let set: Vec<String> = schema_here
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|b| b.get("required").and_then(Value::as_array))
                .flatten()
                .filter_map(Value::as_str)
                .filter(|f| instance.and_then(|i| i.get(f)).is_some())
                .map(str::to_string)
                .collect();
            if set.len() > 1 {
                one(Problem::OneOf { fields: set })
            } else {
                one(Problem::Other {
                    message: "matches more than one of the alternatives the schema allows"
                        .to_string(),
                })
            }
        }
        ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::AnyOf { .. } => {
            one(Problem::Other {
                message: "matches none of the alternatives the schema allows".to_string(),
            })
        }
        ValidationErrorKind::Minimum { limit } => one(Problem::Other {
            message: format!("must be at least {limit}"),
        }),
        ValidationErrorKind::Maximum { limit } => one(Problem::Other {
            message: format!("must be at most {limit}"),
        }),
        ValidationErrorKind::MinLength { limit } => one(Problem::Other {
            message: format!("must be at least {limit} characters long"),
        }),
        ValidationErrorKind::MaxLength { limit } => one(Problem::Other {
            message: format!("must be at most {limit} characters long"),
        }),
        ValidationErrorKind::MinItems { limit } => one(Problem::Other {
            message: format!("needs at least {limit} entries"),
        }),
        ValidationErrorKind::MaxItems { limit } => one(Problem::Other {
            message: format!("may have at most {limit} entries"),
        }),
        ValidationErrorKind::Pattern { pattern } => one(Problem::Other {
            message: format!("does not match the pattern `{pattern}`"),
        }),
        ValidationErrorKind::Format { format } => one(Problem::Other {
            message: format!("is not a valid {format}"),
        }),
        _ => one(Problem::Other {
            message: fallback.to_string(),
        }),
    }
}

/// The (strict) subschema at an instance path, through `properties`, `additionalProperties`
/// and `items`.
fn schema_at<'a>(root: &'a Value, path: &Path) -> Option<&'a Value> {
    let mut s = root;
    for seg in &path.0 {
        s = match seg {
            Seg::Key(k) => s
                .get("properties")
                .and_then(|p| p.get(k))
                .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))?,
            Seg::Index(_) => s.get("items")?,
        };
    }
    Some(s)
}

/// An openAPIV3Schema as a strict JSON Schema. `structural`: not inside `allOf`, `anyOf`,
/// `oneOf` or `not`, where the API server does not prune and unknown fields are not decided.
/// Nesting beyond [`MAX_DEPTH`] is cut off (accepted), which no real CRD reaches.
fn strict(schema: &Value, structural: bool, depth: usize) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    if depth > MAX_DEPTH {
        return json!({});
    }
    let d = depth + 1;
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
                        .map(|(k, v)| (k.clone(), strict(v, structural, d)))
                        .collect(),
                ),
                other => other.clone(),
            },
            "items" | "additionalProperties" => match value {
                Value::Array(items) => {
                    Value::Array(items.iter().map(|v| strict(v, structural, d)).collect())
                }
                other => strict(other, structural, d),
            },
            "not" => strict(value, false, d),
            "allOf" | "anyOf" | "oneOf" => match value {
                Value::Array(items) => {
                    Value::Array(items.iter().map(|v| strict(v, false, d)).collect())
                }
                other => other.clone(),
            },
            // References cannot point anywhere in a CRD schema; drop any, rather than let
            // the validator try to resolve them.
            "$ref" | "$schema" | "$id" => continue,
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
        && map.get("properties").is_some_and(Value::is_object)
        && !map.contains_key("additionalProperties")
        && !flag("x-kubernetes-preserve-unknown-fields")
    {
        out.insert("additionalProperties".to_owned(), Value::Bool(false));
    }
    Value::Object(out)
}

/// The top level: what Kubernetes adds to every object, whatever the CRD describes. A top
/// level that is not an object schema is refused (the API server would not have taken the CRD).
fn top_level(schema: Value) -> Result<Value, String> {
    let Value::Object(mut map) = schema else {
        return Err("openAPIV3Schema is not a schema object".to_string());
    };
    match map.get("type") {
        None => {}
        Some(Value::String(t)) if t == "object" => {}
        Some(other) => return Err(format!("openAPIV3Schema has type {other}, not \"object\"")),
    }
    map.insert("type".to_owned(), json!("object"));
    let props = map.entry("properties").or_insert_with(|| json!({}));
    let Some(props) = props.as_object_mut() else {
        return Err("openAPIV3Schema.properties is not a mapping".to_string());
    };
    props.insert("apiVersion".to_owned(), json!({ "type": "string" }));
    props.insert("kind".to_owned(), json!({ "type": "string" }));
    props.insert("metadata".to_owned(), json!({ "type": "object" }));
    let required = map.entry("required").or_insert_with(|| json!([]));
    let Some(required) = required.as_array_mut() else {
        return Err("openAPIV3Schema.required is not a list".to_string());
    };
    for key in ["apiVersion", "kind"] {
        if !required.contains(&json!(key)) {
            required.push(json!(key));
        }
    }
    map.entry("additionalProperties")
        .or_insert(Value::Bool(false));
    Ok(Value::Object(map))
}

/// Structural defaulting, as the API server does before validating: a missing property whose
/// schema has a `default` gets it; through `properties`, `additionalProperties` and `items`.
fn apply_defaults(schema: &Value, value: &mut Value, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
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
                    apply_defaults(sub, field, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items").filter(|s| s.is_object()) {
                for item in items {
                    apply_defaults(sub, item, depth + 1);
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// The topology's resources, checked and mapped back onto the YAML.

/// Which topology entry an object was made from.
#[derive(Debug, Clone, Copy)]
enum Entry {
    DestinationRule(usize),
    IstioConfig(usize),
}

impl Entry {
    /// The topology path of an object path: `/spec/...` of a DestinationRule is the rule's
    /// own fields, of an `istioConfig` entry its `spec`.
    fn topology_path(self, object: &Path) -> Path {
        match self {
            Entry::DestinationRule(i) => match object.0.as_slice() {
                [Seg::Key(spec), rest @ ..] if spec == "spec" => {
                    let mut p = crate::path!("destinationRules", i);
                    p.0.extend(rest.iter().cloned());
                    p
                }
                [Seg::Key(meta), ..] if meta == "metadata" => {
                    crate::path!("destinationRules", i, "name")
                }
                _ => crate::path!("destinationRules", i),
            },
            Entry::IstioConfig(i) => {
                let mut p = crate::path!("istioConfig", i);
                p.0.extend(object.0.iter().cloned());
                p
            }
        }
    }
}

/// Checks every DestinationRule (as meshc writes it) and every `istioConfig` resource against
/// the loaded CRDs. Objects whose group no loaded CRD has are not checked; `istioConfig`
/// entries already reported as not Istio resources (E025, in `reported`) are skipped.
pub fn check(
    model: &Model,
    tree: &Node,
    source: &Source,
    crds: &Crds,
    reported: &[Diagnostic],
) -> Result<Vec<Diagnostic>, CrdError> {
    on_big_stack(|| check_here(model, tree, source, crds, reported))
}

fn check_here(
    model: &Model,
    tree: &Node,
    source: &Source,
    crds: &Crds,
    reported: &[Diagnostic],
) -> Result<Vec<Diagnostic>, CrdError> {
    let t = &model.topology;
    // istioConfig entries E025 has reported: it has said what is wrong with their kind.
    let not_istio: BTreeSet<usize> = reported
        .iter()
        .filter(|d| d.code == Code::NotIstioResource)
        .filter_map(|d| {
            let rest = d.path.as_deref()?.strip_prefix("/istioConfig/")?;
            rest.split('/').next()?.parse().ok()
        })
        .collect();
    let mut out = Vec::new();
    let (group, version) = split(DESTINATION_RULE_API_VERSION);
    for (i, dr) in t.destination_rules.iter().enumerate() {
        let doc = json!({
            "apiVersion": DESTINATION_RULE_API_VERSION,
            "kind": "DestinationRule",
            "metadata": {
                "name": dr.name,
                "namespace": model.destination_rules[i].namespace,
            },
            "spec": crate::istio::destination_rule_spec(dr),
        });
        let entry = Entry::DestinationRule(i);
        match crds.validate_here(&doc)? {
            Verdict::Unknown => {}
            Verdict::Checked(violations) => {
                out.extend(
                    violations
                        .iter()
                        .map(|v| diagnostic(tree, source, entry, "DestinationRule", v)),
                );
            }
            Verdict::NoKind { .. } | Verdict::NotServed { .. } => {
                let served = crds
                    .served
                    .get(&(group.to_owned(), "DestinationRule".to_owned()))
                    .map_or_else(|| "none".to_string(), |v| v.join(", "));
                out.push(
                    Diagnostic::error(
                        Code::CrdNotServed,
                        format!(
                            "meshc writes DestinationRules as `{DESTINATION_RULE_API_VERSION}`, which the CRDs do not serve (served: {served})"
                        ),
                    )
                    .at(tree.span_of(&crate::path!("destinationRules", i, "name")), "not served")
                    .with_help(format!(
                        "pass the CRDs of the Istio version the mesh targets (`{group}/{version}` is served since Istio 1.22)"
                    ))
                    .with_path(crate::path!("destinationRules", i).to_string()),
                );
            }
        }
    }
    for (i, res) in t.istio_config.iter().enumerate() {
        if not_istio.contains(&i) {
            continue;
        }
        let mut metadata = json!({
            "name": res.metadata.name,
            "namespace": res.metadata.namespace,
        });
        if !res.metadata.labels.is_empty() {
            metadata["labels"] = json!(res.metadata.labels);
        }
        if !res.metadata.annotations.is_empty() {
            metadata["annotations"] = json!(res.metadata.annotations);
        }
        let doc = json!({
            "apiVersion": res.api_version,
            "kind": res.kind,
            "metadata": metadata,
            "spec": res.spec,
        });
        let entry = Entry::IstioConfig(i);
        match crds.validate_here(&doc)? {
            Verdict::Unknown => {}
            Verdict::Checked(violations) => {
                out.extend(
                    violations
                        .iter()
                        .map(|v| diagnostic(tree, source, entry, &res.kind, v)),
                );
            }
            Verdict::NotServed { served } => {
                let (group, _) = split(&res.api_version);
                out.push(
                    Diagnostic::error(
                        Code::CrdNotServed,
                        format!(
                            "the CRDs do not serve {} as `{}` (served: {})",
                            res.kind,
                            res.api_version,
                            served.join(", ")
                        ),
                    )
                    .at(
                        tree.span_of(&crate::path!("istioConfig", i, "apiVersion")),
                        "not served",
                    )
                    .with_help(format!(
                        "use {}, or pass the CRDs of the version that serves it",
                        served
                            .iter()
                            .map(|v| format!("`{group}/{v}`"))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ))
                    .with_path(crate::path!("istioConfig", i, "apiVersion").to_string()),
                );
            }
            Verdict::NoKind { group } => {
                let kinds: Vec<&str> = crds
                    .served
                    .keys()
                    .filter(|(g, _)| *g == group)
                    .map(|(_, k)| k.as_str())
                    .collect();
                let help = match did_you_mean(&res.kind, kinds.iter().copied()) {
                    Some(k) => format!("did you mean `{k}`?"),
                    None => format!("the `{group}` CRDs have: {}", kinds.join(", ")),
                };
                out.push(
                    Diagnostic::error(
                        Code::CrdNotServed,
                        format!("the CRDs of `{group}` define no kind `{}`", res.kind),
                    )
                    .at(
                        tree.span_of(&crate::path!("istioConfig", i, "kind")),
                        "no such kind",
                    )
                    .with_help(help)
                    .with_path(crate::path!("istioConfig", i, "kind").to_string()),
                );
            }
        }
    }
    Ok(out)
}

/// One violation as a diagnostic at its place in the topology.
fn diagnostic(tree: &Node, source: &Source, entry: Entry, kind: &str, v: &Violation) -> Diagnostic {
    let at = entry.topology_path(&v.path);
    let what = match v.path.0.as_slice() {
        [] | [_] => format!("the {kind}"),
        [.., Seg::Key(k), Seg::Index(i)] => format!("`{k}` entry #{}", i + 1),
        [.., Seg::Key(k)] => format!("`{k}`"),
        [.., Seg::Index(i)] => format!("entry #{}", i + 1),
    };
    let here = tree.get(&at).map(|(n, _)| n);
    let (found, raw) = match here {
        Some(n) => (n.kind_name(), source.slice(n.span.offset, n.span.len)),
        None => ("nothing", ""),
    };
    let invalid = |message: String, help: String| {
        Diagnostic::error(Code::CrdInvalidValue, message)
            .at(tree.span_of(&at), format!("refused by the {kind} CRD"))
            .with_help(help)
            .with_path(at.to_string())
    };
    match &v.problem {
        Problem::UnknownField { field, known } => {
            let parent = Path(v.path.0[..v.path.0.len().saturating_sub(1)].to_vec());
            let owner = match parent.0.as_slice() {
                [] | [_] => format!("the {kind} spec"),
                [.., Seg::Key(k), Seg::Index(i)] => format!("`{k}` entry #{}", i + 1),
                [.., Seg::Key(k)] => format!("`{k}`"),
                [.., Seg::Index(i)] => format!("entry #{}", i + 1),
            };
            let help = match did_you_mean(field, known.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None if known.is_empty() => "remove it".to_string(),
                None if known.len() > 16 => {
                    format!("remove it; {owner} has: {}, ...", known[..16].join(", "))
                }
                None => format!("remove it; {owner} has: {}", known.join(", ")),
            };
            let message = if parent.0.len() <= 1 {
                format!("unknown field `{field}` in {owner}")
            } else {
                format!("unknown field `{field}` in {owner} ({kind} CRD)")
            };
            Diagnostic::error(Code::CrdUnknownField, message)
                .at(tree.key_span_of(&at), "unknown field")
                .with_help(help)
                .with_path(at.to_string())
        }
        Problem::Required { field } => invalid(
            format!("missing required field `{field}` in {what}"),
            format!("add `{field}:`"),
        ),
        Problem::Type { expected } => {
            let words: Vec<&str> = expected
                .iter()
                .map(|t| crate::schema::type_word(t))
                .collect();
            let expected = words.join(" or ");
            let mut help = format!("write {expected} here");
            let unquoted = raw.trim_matches(|c| c == '"' || c == '\'');
            if found == "a string"
                && (expected.contains("integer") || expected.contains("number"))
                && unquoted.parse::<f64>().is_ok()
            {
                help = format!("remove the quotes: `{unquoted}`");
            } else if expected == "a string" && found != "a mapping" && found != "a list" {
                help = format!("YAML reads the unquoted `{raw}` as {found}: quote it, `\"{raw}\"`");
            }
            invalid(format!("{what}: expected {expected}, found {found}"), help)
        }
        Problem::Enum { options } => {
            let opts: Vec<String> = options.iter().map(crate::schema::show_json).collect();
            let bare: Vec<&str> = options.iter().filter_map(Value::as_str).collect();
            let help = here
                .and_then(|n| match &n.value {
                    parse::Value::Str(s) => did_you_mean(s, bare.iter().copied()),
                    _ => None,
                })
                .map_or_else(
                    || format!("use one of: {}", opts.join(", ")),
                    |s| format!("did you mean `{s}`?"),
                );
            invalid(
                format!("{what}: `{raw}` is not one of {}", opts.join(", ")),
                help,
            )
        }
        Problem::OneOf { fields } => {
            let list = fields
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ");
            invalid(
                format!("{what} sets {list}: only one of them may be set"),
                format!("keep one of {list}"),
            )
        }
        Problem::Other { message } => invalid(
            format!("{what} {message}"),
            format!("see the {kind} reference on istio.io (or the CRD's openAPIV3Schema)"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One CRD of group `example.io`, kind `Widget`, served as v1 with `schema` (YAML, indented
    /// for `openAPIV3Schema:`), and v2 not served.
    fn widget(schema: &str) -> Crds {
        let text = format!(
            "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{ name: widgets.example.io }}
spec:
  group: example.io
  names: {{ kind: Widget, plural: widgets }}
  scope: Namespaced
  versions:
    - name: v2
      served: false
      schema: {{ openAPIV3Schema: {{ type: object }} }}
    - name: v1
      served: true
      schema:
        openAPIV3Schema:
{schema}"
        );
        let mut crds = Crds::new();
        crds.add_file("widget.yaml", &text).expect("loads");
        crds
    }

    /// Sorted (the validator's order is not the document's); by value, to read like `json!`.
    #[allow(clippy::needless_pass_by_value)]
    fn violations(crds: &Crds, spec: Value) -> Vec<String> {
        let mut found = checked(crds, &spec);
        found.sort();
        found
    }

    fn checked(crds: &Crds, spec: &Value) -> Vec<String> {
        let doc = json!({
            "apiVersion": "example.io/v1", "kind": "Widget", "metadata": { "name": "w" }, "spec": spec
        });
        match crds.validate(&doc).expect("compiles") {
            Verdict::Checked(v) => v.iter().map(ToString::to_string).collect(),
            other => panic!("{other:?}"),
        }
    }

    const SPEC: &str = "          type: object
          properties:
            spec:
              type: object
              properties:
                size: { type: integer, nullable: true }
                port: { x-kubernetes-int-or-string: true }
                free: { type: object, x-kubernetes-preserve-unknown-fields: true, properties: { a: { type: string } } }
                labels: { type: object, additionalProperties: { type: string } }
                mode: { type: string, enum: [A, B], default: A }
                tls:
                  type: object
                  properties: { mode: { type: string } }
                  x-kubernetes-validations: [{ rule: 'self.mode != \"\"', message: never evaluated }]
";

    #[test]
    fn strict_field_validation_as_the_api_server_does_it() {
        let crds = widget(SPEC);
        assert_eq!(violations(&crds, json!({})), Vec::<String>::new());
        assert_eq!(
            violations(
                &crds,
                json!({ "size": null, "port": "http", "free": { "any": 1 },
                "labels": { "x": "y" }, "tls": { "mode": "" } })
            ),
            Vec::<String>::new(),
            "nullable, int-or-string, preserve-unknown-fields, maps; CEL not evaluated"
        );
        assert_eq!(
            violations(&crds, json!({ "port": 80 })),
            Vec::<String>::new()
        );
        assert_eq!(
            violations(
                &crds,
                json!({ "sise": 1, "tls": { "mode": "x", "extra": true } })
            ),
            [
                "/spec/sise: unknown field `sise`",
                "/spec/tls/extra: unknown field `extra`"
            ]
        );
        assert_eq!(
            violations(&crds, json!({ "port": true, "labels": { "x": 1 } })),
            [
                "/spec/labels/x: expected string",
                "/spec/port: expected integer or string"
            ]
        );
    }

    #[test]
    fn defaults_are_applied_before_validating() {
        // A default the enum refuses shows that defaulting happened first.
        let crds = widget(&SPEC.replace("default: A", "default: C"));
        assert_eq!(
            violations(&crds, json!({})),
            ["/spec/mode: not one of `A`, `B`"]
        );
        assert_eq!(
            violations(&crds, json!({ "mode": "B" })),
            Vec::<String>::new()
        );
    }

    #[test]
    fn unknown_fields_know_the_fields_of_their_object() {
        let crds = widget(SPEC);
        let doc = json!({ "apiVersion": "example.io/v1", "kind": "Widget", "spec": { "sise": 1 } });
        let Ok(Verdict::Checked(v)) = crds.validate(&doc) else {
            panic!("checked");
        };
        let Problem::UnknownField { known, .. } = &v[0].problem else {
            panic!("{v:?}");
        };
        assert!(known.iter().any(|k| k == "size"), "{known:?}");
    }

    #[test]
    fn versions_kinds_and_groups_that_are_not_served() {
        let crds = widget(SPEC);
        let verdict = |api_version: &str, kind: &str| {
            crds.validate(&json!({ "apiVersion": api_version, "kind": kind, "spec": {} }))
                .expect("compiles")
        };
        assert_eq!(
            verdict("example.io/v2", "Widget"),
            Verdict::NotServed {
                served: vec!["v1".to_string()]
            }
        );
        assert_eq!(
            verdict("example.io/v1", "Gadget"),
            Verdict::NoKind {
                group: "example.io".to_string()
            }
        );
        assert_eq!(verdict("other.io/v1", "Widget"), Verdict::Unknown);
    }
}
