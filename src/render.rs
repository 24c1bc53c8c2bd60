//! The render stage: minijinja templates in, YAML documents out, each parsed again before it is
//! kept.
//!
//! Templates live in `templates/` and are embedded in the binary; `--templates DIR` may override
//! any of them by file name. Every template is named `*.yaml.j2`, so minijinja escapes each
//! `{{ value }}` as a JSON scalar (valid YAML): no topology value can add a key, a document or
//! a line. Undefined variables are errors. A rendered file that does not parse as YAML, or
//! whose documents are not Kubernetes objects, is a bug in a template and stops the build
//! rather than reaching a cluster. Errors never quote the rendered text, which may hold keys.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

/// The templates meshc ships, by name (their path under `templates/`).
const EMBEDDED: &[(&str, &str)] = &[
    ("README.md.j2", include_str!("../templates/README.md.j2")),
    ("index.md.j2", include_str!("../templates/index.md.j2")),
    (
        "rotation.md.j2",
        include_str!("../templates/rotation.md.j2"),
    ),
    (
        "cacerts.yaml.j2",
        include_str!("../templates/cacerts.yaml.j2"),
    ),
    (
        "cacerts-external.yaml.j2",
        include_str!("../templates/cacerts-external.yaml.j2"),
    ),
    (
        "expose-istiod.yaml.j2",
        include_str!("../templates/expose-istiod.yaml.j2"),
    ),
    (
        "eastwest-gateway.yaml.j2",
        include_str!("../templates/eastwest-gateway.yaml.j2"),
    ),
    (
        "gateway-api.yaml.j2",
        include_str!("../templates/gateway-api.yaml.j2"),
    ),
    (
        "peer-gateways.yaml.j2",
        include_str!("../templates/peer-gateways.yaml.j2"),
    ),
    (
        "expose-services.yaml.j2",
        include_str!("../templates/expose-services.yaml.j2"),
    ),
    (
        "istio-object.yaml.j2",
        include_str!("../templates/istio-object.yaml.j2"),
    ),
    (
        "kustomization.yaml.j2",
        include_str!("../templates/kustomization.yaml.j2"),
    ),
    (
        "namespaces.yaml.j2",
        include_str!("../templates/namespaces.yaml.j2"),
    ),
    (
        "reader-token.yaml.j2",
        include_str!("../templates/reader-token.yaml.j2"),
    ),
    (
        "remote-kubeconfig.yaml.j2",
        include_str!("../templates/remote-kubeconfig.yaml.j2"),
    ),
    (
        "remote-kubeconfigs.yaml.j2",
        include_str!("../templates/remote-kubeconfigs.yaml.j2"),
    ),
    (
        "remote-secrets.yaml.j2",
        include_str!("../templates/remote-secrets.yaml.j2"),
    ),
    (
        "services.yaml.j2",
        include_str!("../templates/services.yaml.j2"),
    ),
    (
        "install/helm/base.values.yaml.j2",
        include_str!("../templates/install/helm/base.values.yaml.j2"),
    ),
    (
        "install/helm/cni.values.yaml.j2",
        include_str!("../templates/install/helm/cni.values.yaml.j2"),
    ),
    (
        "install/helm/eastwestgateway.values.yaml.j2",
        include_str!("../templates/install/helm/eastwestgateway.values.yaml.j2"),
    ),
    (
        "install/helm/ingressgateway.values.yaml.j2",
        include_str!("../templates/install/helm/ingressgateway.values.yaml.j2"),
    ),
    (
        "install/helm/istiod.values.yaml.j2",
        include_str!("../templates/install/helm/istiod.values.yaml.j2"),
    ),
    (
        "install/helm/ztunnel.values.yaml.j2",
        include_str!("../templates/install/helm/ztunnel.values.yaml.j2"),
    ),
    (
        "install/istioctl/controlplane.yaml.j2",
        include_str!("../templates/install/istioctl/controlplane.yaml.j2"),
    ),
    (
        "install/istioctl/eastwest.yaml.j2",
        include_str!("../templates/install/istioctl/eastwest.yaml.j2"),
    ),
];

/// The names of the built-in templates (for `--templates` and the docs).
pub fn template_names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|(name, _)| *name)
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum RenderError {
    #[error("template {name}: {reason}")]
    Template { name: String, reason: String },
    #[error("template {name} rendered a document that is not valid YAML: {reason}")]
    Yaml { name: String, reason: String },
    #[error("template {name} rendered a document without {field}")]
    NotAnObject { name: String, field: &'static str },
    #[error("two outputs would be written to {path}")]
    Duplicate { path: String },
    #[error("cannot read the override template {path}: {reason}")]
    Override { path: PathBuf, reason: String },
    #[error("--templates {path}: {reason}")]
    OverrideDir { path: PathBuf, reason: String },
}

/// Checks a `--templates` directory before anything is rendered: a missing path or a file is
/// an error (a silently ignored override is a wrong output that looks right); returns the
/// files in it that replace no built-in template (misnamed, most likely), by relative path.
pub fn unmatched_overrides(dir: &Path) -> Result<Vec<String>, RenderError> {
    let fail = |reason: String| RenderError::OverrideDir {
        path: dir.to_path_buf(),
        reason,
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(fail("is not a directory".to_string())),
        Err(e) => return Err(fail(format!("cannot be read: {e}"))),
    }
    let known: HashSet<&str> = template_names().collect();
    let mut unmatched = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        let entries = std::fs::read_dir(&at).map_err(|e| fail(format!("{}: {e}", at.display())))?;
        for entry in entries {
            let entry = entry.map_err(|e| fail(format!("{}: {e}", at.display())))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| fail(e.to_string()))?;
            if kind.is_dir() {
                pending.push(path);
                continue;
            }
            let rel = path.strip_prefix(dir).unwrap_or(&path);
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            if !known.contains(name.as_str()) && !name.starts_with('.') {
                unmatched.push(name);
            }
        }
    }
    unmatched.sort();
    Ok(unmatched)
}

/// From how many new documents a file's check is spread over every core.
const PARALLEL_DOCUMENTS: usize = 256;

/// What a template is rendered with, as the template's value.
pub trait Context {
    fn value(&self) -> Value;
}

/// Rust data: serialized into template values each time.
impl<T: Serialize + ?Sized> Context for T {
    fn value(&self) -> Value {
        Value::from(Serde(self))
    }
}

/// The template environment.
#[derive(Debug)]
pub struct Renderer {
    env: Environment<'static>,
    /// Digests of the documents already parsed and found to be objects: many files hold the
    /// same document (a peer's remote secret on every primary, a Namespace on every cluster
    /// of a network), and bytes checked once need no second parse.
    checked: Mutex<HashSet<[u8; 32]>>,
}

impl Renderer {
    /// The embedded templates, each replaced by `overrides/<name>` where that file exists.
    pub fn new(overrides: Option<&Path>) -> Result<Renderer, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Block tags take their whole line, and files end with their newline, as YAML expects.
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| template_error("(syntax)", &e))?;
        env.set_syntax(syntax);
        let texts = YamlTexts::default();
        env.add_filter("yaml", move |value: &Value, indent: usize| {
            texts.get(value, indent)
        });
        env.add_filter("comment", comment_filter);
        for (name, embedded) in EMBEDDED {
            let source = match overrides.map(|dir| dir.join(name)) {
                Some(path) if path.exists() => {
                    std::fs::read_to_string(&path).map_err(|e| RenderError::Override {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?
                }
                _ => (*embedded).to_string(),
            };
            env.add_template_owned(*name, source)
                .map_err(|e| template_error(name, &e))?;
        }
        Ok(Renderer {
            env,
            checked: Mutex::default(),
        })
    }

    /// Renders Kubernetes objects: every document must parse and carry `apiVersion`, `kind`
    /// and `metadata.name`.
    pub fn objects(&self, name: &str, context: &impl Context) -> Result<String, RenderError> {
        let text = self.render(name, context)?;
        self.check_objects(name, &text)?;
        Ok(text)
    }

    /// The self-check of rendered objects, document by document: a document whose bytes were
    /// checked before (in this file or another) is not read again.
    fn check_objects(&self, name: &str, text: &str) -> Result<(), RenderError> {
        let pieces: Vec<(&str, [u8; 32])> = crate::yaml::segments(text)
            .map(|piece| (piece, sha256(piece.as_bytes())))
            .collect();
        let unchecked: Vec<usize> = {
            let checked = self.checked();
            (0..pieces.len())
                .filter(|&i| !checked.contains(&pieces[i].1))
                .collect()
        };
        // One document's heads, or `Err` when it does not parse alone (then the whole text
        // says why, or is fine).
        let read = |&i: &usize| crate::yaml::heads(pieces[i].0).map_err(drop);
        // A file of many new documents (a mesh's `services.yaml`) is read on every core.
        let heads = crate::parallel::map_many(&unchecked, PARALLEL_DOCUMENTS, read);
        match heads {
            Err(()) => return check_heads(name, text),
            Ok(heads) => check_heads_of(name, heads.into_iter().flatten())?,
        }
        let mut checked = self.checked();
        checked.extend(unchecked.into_iter().map(|i| pieces[i].1));
        Ok(())
    }

    fn checked(&self) -> MutexGuard<'_, HashSet<[u8; 32]>> {
        self.checked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Renders an installer input (Helm values, a kubeconfig): one YAML mapping.
    pub fn values(&self, name: &str, context: &impl Context) -> Result<String, RenderError> {
        let text = self.render(name, context)?;
        let mapping = crate::yaml::is_mapping(&text).map_err(|e| RenderError::Yaml {
            name: name.to_string(),
            reason: yaml_reason(&e),
        })?;
        if !mapping {
            return Err(RenderError::NotAnObject {
                name: name.to_string(),
                field: "a top-level mapping",
            });
        }
        Ok(text)
    }

    /// Renders a text file (a README): no structure to check.
    pub fn text(&self, name: &str, context: &impl Context) -> Result<String, RenderError> {
        self.render(name, context)
    }

    fn render(&self, name: &str, context: &impl Context) -> Result<String, RenderError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(context.value()))
            .map_err(|e| template_error(name, &e))
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut digest = [0u8; 32];
    digest.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref());
    digest
}

/// The self-check of a whole rendered text.
fn check_heads(name: &str, text: &str) -> Result<(), RenderError> {
    let heads = crate::yaml::heads(text).map_err(|e| RenderError::Yaml {
        name: name.to_string(),
        reason: yaml_reason(&e),
    })?;
    check_heads_of(name, heads)
}

/// The first object of `heads` that lacks one of the fields, as the error.
fn check_heads_of(
    name: &str,
    heads: impl IntoIterator<Item = crate::yaml::Head>,
) -> Result<(), RenderError> {
    match heads.into_iter().find_map(crate::yaml::Head::missing) {
        Some(field) => Err(RenderError::NotAnObject {
            name: name.to_string(),
            field,
        }),
        None => Ok(()),
    }
}

fn template_error(name: &str, e: &minijinja::Error) -> RenderError {
    let mut reason = e.kind().to_string();
    if let Some(detail) = e.detail() {
        reason.push_str(": ");
        reason.push_str(&redact(detail));
    }
    if let Some(line) = e.line() {
        reason = format!("{reason} (line {line})");
    }
    RenderError::Template {
        name: name.to_string(),
        reason,
    }
}

/// The `yaml` filter's texts by value, each made once per build: every primary's
/// `remote-secrets.yaml` holds the same kubeconfigs (20 primaries × 199 peers at 200
/// clusters), and writing them out again was a tenth of rendering. A value is known by its
/// JSON text and the indentation asked for. JSON keeps the distinctions its YAML makes (an
/// integer from a float, the order of keys) for strings, booleans, finite numbers and lists
/// and string-keyed maps of these; any other value (a none, bytes, a number key, a float that
/// is not finite) is written each time.
#[derive(Debug, Default)]
struct YamlTexts(Mutex<HashMap<(usize, String), Value>>);

impl YamlTexts {
    fn get(&self, value: &Value, indent: usize) -> Result<Value, minijinja::Error> {
        let json = match serde_json::to_string(value) {
            Ok(json) if known_by_json(value, 0) => json,
            _ => return yaml_filter(value, indent),
        };
        let key = (indent, json);
        let lock = || self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(text) = lock().get(&key) {
            return Ok(text.clone());
        }
        let text = yaml_filter(value, indent)?;
        lock().insert(key, text.clone());
        Ok(text)
    }
}

/// Whether `value`'s JSON text tells it from every other value (see [`YamlTexts`]).
fn known_by_json(value: &Value, depth: usize) -> bool {
    use minijinja::value::ValueKind;
    let known = |v: &Value| known_by_json(v, depth + 1);
    depth < 64
        && match value.kind() {
            ValueKind::String | ValueKind::Bool => true,
            ValueKind::Number => f64::try_from(value.clone()).is_ok_and(f64::is_finite),
            ValueKind::Seq => value
                .try_iter()
                .is_ok_and(|mut items| items.all(|v| known(&v))),
            ValueKind::Map => value.try_iter().is_ok_and(|mut keys| {
                keys.all(|k| {
                    k.kind() == ValueKind::String && value.get_item(&k).is_ok_and(|v| known(&v))
                })
            }),
            _ => false,
        }
}

/// `{{ value | yaml(n) }}`: the value as block YAML, every line indented by `n` spaces, for
/// verbatim Istio specs and multi-line strings that must stay readable in review. The text
/// comes from a YAML serializer (serde-saphyr), which quotes and escapes as YAML requires, so
/// it is as safe as the JSON escaping of plain `{{ value }}` and may be marked safe.
fn yaml_filter(value: &Value, indent: usize) -> Result<Value, minijinja::Error> {
    let text = serde_saphyr::to_string(value).map_err(|e| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("cannot write the value as YAML: {}", redact(&e.to_string())),
        )
    })?;
    let pad = " ".repeat(indent);
    let body = text
        .trim_end_matches('\n')
        .lines()
        .map(|line| {
            if line.is_empty() {
                String::new()
            } else {
                format!("{pad}{line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Value::from_safe_string(body))
}

/// `# {{ text|comment }}`: the text as the rest of a YAML comment line. A line break would
/// end the comment and start YAML, so every one becomes a space; nothing else in a comment
/// is read, so the text needs no other escaping.
/// Serializes Kubernetes objects meshc builds as data rather than from a template: the one
/// path for them, so that quoting, indentation and document separators are the YAML
/// library's and never a template's. `header` becomes comment lines before the first
/// document (the install command, what the file is for). Lists are indented under their key,
/// as in the templated files; a string with a newline is written quoted with `\n`.
pub fn data(
    name: &str,
    header: &str,
    objects: &[serde_json::Value],
) -> Result<String, RenderError> {
    check_heads_of(name, objects.iter().map(crate::yaml::Head::of_value))?;
    // Long strings (URLs) stay on their line, as kubectl and the templated files write them.
    let options = serde_saphyr::ser_options! {
        compact_list_indent: false,
        prefer_block_scalars: false,
    };
    let body = serde_saphyr::to_string_multiple_with_options(objects, options).map_err(|e| {
        RenderError::Yaml {
            name: name.to_string(),
            reason: e.to_string(),
        }
    })?;
    let mut text = String::with_capacity(header.len() + body.len() + 16);
    for line in header.lines() {
        text.push('#');
        if !line.is_empty() {
            text.push(' ');
            text.push_str(line);
        }
        text.push('\n');
    }
    text.push_str(&body);
    Ok(text)
}

fn comment_filter(text: &str) -> Value {
    Value::from_safe_string(text.replace(['\n', '\r'], " "))
}

/// A template error's detail may quote a value (`include ca_key` names the template by the
/// key's base64): every long base64-like run is replaced.
fn redact(detail: &str) -> String {
    let mut out = String::with_capacity(detail.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 24 {
            out.push_str("<redacted>");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in detail.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_') {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// The parser's position only: its message may quote the document.
fn yaml_reason(e: &serde_saphyr::Error) -> String {
    match e.location() {
        Some(loc) => format!("line {}, column {}", loc.line(), loc.column()),
        None => "no position".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cannot_inject_yaml() {
        let r = Renderer::new(None).expect("templates");
        let evil = "x\nkind: Evil\n---\napiVersion: v1";
        let text = r
            .objects(
                "cacerts.yaml.j2",
                &serde_json::json!({
                    "namespace": evil, "ca_cert": "a", "ca_key": "b",
                    "cert_chain": "c", "root_cert": "d"
                }),
            )
            .expect("renders");
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).expect("yaml");
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["kind"], "Secret");
        assert_eq!(docs[0]["metadata"]["namespace"], evil);
    }

    #[test]
    fn errors_never_quote_a_value() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("cacerts.yaml.j2"), "{% include ca_key %}\n")
            .expect("override");
        let r = Renderer::new(Some(dir.path())).expect("templates");
        let secret = "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JR0hBZ0VBTUJNR0J5cUdTTTQ5";
        let err = r
            .objects(
                "cacerts.yaml.j2",
                &serde_json::json!({
                    "namespace": "istio-system", "ca_cert": "a", "ca_key": secret,
                    "cert_chain": "c", "root_cert": "d"
                }),
            )
            .expect_err("no such template");
        let text = err.to_string();
        assert!(!text.contains(&secret[..20]), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }

    #[test]
    fn a_comment_cannot_end_its_line() {
        let mut env = Environment::new();
        env.add_filter("comment", comment_filter);
        env.add_template("t.yaml", "# {{ c|comment }}\nkey: 1\n")
            .expect("template");
        let text = env
            .get_template("t.yaml")
            .and_then(|t| t.render(minijinja::context! { c => "a\nkind: Evil\r\nb" }))
            .expect("renders");
        // (This bare environment drops the trailing newline; the renderer keeps it.)
        assert_eq!(text, "# a kind: Evil  b\nkey: 1");
    }

    #[test]
    fn the_yaml_filter_writes_what_each_value_is() {
        let texts = YamlTexts::default();
        let write = |v: Value| {
            texts
                .get(&v, 2)
                .expect("written")
                .as_str()
                .map(str::to_string)
        };
        // Equal as template values, written differently: never one text for both.
        assert_eq!(write(Value::from(1)), Some("  1".to_string()));
        assert_eq!(write(Value::from(1.0)), Some("  1.0".to_string()));
        assert_eq!(write(Value::from(f64::NAN)), Some("  .nan".to_string()));
        assert_eq!(write(Value::from(())), Some("  null".to_string()));
        assert_eq!(write(Value::from(1)), Some("  1".to_string()));
        // A number key and a string key have one JSON text, and two YAML texts.
        let number_key = Value::from(Serde(std::collections::BTreeMap::from([(1, "a")])));
        let string_key = Value::from(Serde(std::collections::BTreeMap::from([("1", "a")])));
        assert_eq!(write(number_key), Some("  1: a".to_string()));
        assert_eq!(write(string_key), Some("  \"1\": a".to_string()));
    }

    #[test]
    fn a_missing_variable_is_an_error() {
        let r = Renderer::new(None).expect("templates");
        let err = r
            .objects("cacerts.yaml.j2", &serde_json::json!({}))
            .expect_err("strict");
        assert!(err.to_string().contains("cacerts.yaml.j2"), "{err}");
    }
}
