//! Every IstioOperator file meshc writes (`install/istioctl/*.yaml`), decoded as istioctl 1.30.3
//! decodes it: a field istioctl would refuse, or read and then drop, fails the test.
//!
//! # How istioctl 1.30.3 reads an IstioOperator file
//!
//! Paths are in github.com/istio/istio at tag `1.30.3` unless said otherwise.
//!
//! `istioctl install -f` and `istioctl manifest generate -f` call `render.GenerateManifest`
//! (`operator/cmd/mesh/install.go:161`), which merges the profile and the files
//! (`operator/pkg/render/manifest.go:249`, `MergeInputs`, YAML read by sigs.k8s.io/yaml into
//! a map), copies `spec.meshConfig` into `spec.values.meshConfig` (`manifest.go:349`,
//! `translateIstioOperatorToHelm`) and validates the result (`manifest.go:52`,
//! `validateIstioOperator`; `--force` turns its errors into warnings). The validation,
//! `ParseAndValidateIstioOperator` (`operator/pkg/apis/validation/validation.go:50`), decodes
//! in four places, each with its own strictness:
//!
//! 1. **The whole document**, with Go's `encoding/json` and `DisallowUnknownFields`
//!    (`validation.go:51-56`) into `apis.IstioOperator` (`operator/pkg/apis/types.go`):
//!    `apiVersion`, `kind`, `metadata` (a Kubernetes `ObjectMeta`) and `spec`, with
//!    `spec.components` and the Kubernetes types under `k8s` (`ServiceSpec`, `EnvVar`,
//!    `Affinity`, ...) all strict. An unknown field fails the install with
//!    `could not unmarshal: json: unknown field "x"`. As everywhere in `encoding/json`, a
//!    key matches its field exactly or, failing that, case-insensitively. Not looked into:
//!    `spec.values` and `spec.meshConfig` (`json.RawMessage`, `types.go:94,102`),
//!    `spec.unvalidatedValues`, `spec.tag`, a component's `tag` and an overlay patch's
//!    `value` (`any`).
//! 2. **`spec.values`**: `validateValues` (`validation.go:151-154`) reads it with
//!    `sigs.k8s.io/yaml.Unmarshal` into `apis.Values`, whose `UnmarshalJSON`
//!    (`operator/pkg/apis/value_types_json.go:82-88`) is github.com/golang/protobuf v1.5.4's
//!    `jsonpb.Unmarshaler{}`: unknown fields are errors (`jsonpb/decode.go:381-384` there,
//!    `unknown field "x" in istio.operator.v1alpha1.Values`). A key is a field's proto name or
//!    its JSON name (`decode.go:322-335`; `istio_cni` and `istioCni`, `istio_ingressgateway`
//!    and `istio-ingressgateway`), case-sensitively. The message is
//!    `values_types.proto`, compiled into `operator/pkg/apis/values_types.pb.go`. Fields of
//!    type `google.protobuf.Struct` or `Value` take anything: `values.ztunnel`,
//!    `values.meshConfig`, `values.gatewayClasses`, `values.pilot.env`, ...; the istioctl
//!    error reads `could not unmarshal: error unmarshaling JSON: while decoding JSON: ...`
//!    (sigs.k8s.io/yaml v1.6.0 `yaml.go:69-96`).
//! 3. **Some `Struct`s of `values` again, as Kubernetes types**: `runKube` and `runKubeList`
//!    (`validation.go:193-236`) re-decode `cni.affinity`, `pilot.tolerations`,
//!    `global.proxy.lifecycle` and the rest of that list with `yaml.UnmarshalStrict`
//!    (`validation.go:238-248`): unknown fields are errors,
//!    `invalid schema for pilot.affinity: ...`.
//! 4. **`meshConfig`** (`spec.meshConfig`, and `spec.values.meshConfig` where it is copied):
//!    `validateMeshConfig` (`validation.go:250`) calls `mesh.ApplyMeshConfigDefaults`
//!    (`pkg/config/mesh/mesh.go:203`, `protomarshal.ApplyYAML`), whose `ApplyJSON`
//!    (`pkg/util/protomarshal/protomarshal.go:175-185`) retries a failed strict decode with
//!    `AllowUnknownFields = true`: an unknown field of `istio.mesh.v1alpha1.MeshConfig`
//!    (github.com/istio/api at the commit of istio's go.mod) is dropped without a word
//!    (a debug log), while a known field of the wrong type still fails the install
//!    (`failed to convert to proto.`).
//!
//! `spec.unvalidatedValues` is merged into the values after validation
//! (`manifest.go:56-58`) and never checked. istioctl stops at the first error of a decode; this
//! test reports every field.
//!
//! The fields and types come from `tests/data/istioctl-1.30.3-schema.json`, written by
//! `tools/istioctl_schema.py` from those sources (Go types parsed from their files, protos from
//! the descriptors compiled into the `.pb.go` files, the `runKube` list from `validation.go`);
//! the tests need nothing outside the repository.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine as _;
use serde_json::{Map, Value};

const SCHEMA: &str = "tests/data/istioctl-1.30.3-schema.json";

/// What meshc writes today that istioctl 1.30.3 refuses or drops, one line each:
/// `PATH: rejected` or `PATH: ignored`, as [`Finding::key`] prints it. A line here that no
/// build shows any more fails the test too, so that the list only shrinks.
const KNOWN_PROBLEMS: &[&str] = &[
    // Solo's peering switch (`platforms.peering.enabled`), written on the primaries of a Solo
    // ambient mesh with peering: not a field of upstream's Values, so upstream istioctl stops
    // with `unknown field "platforms" in istio.operator.v1alpha1.Values`. Solo's own istioctl
    // build is not checked here.
    "spec.values.platforms: rejected",
];

// ---------------------------------------------------------------------------------------------
// The decoder

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// istioctl stops with an error (unless `--force`).
    Rejected,
    /// istioctl reads on without the field.
    Ignored,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Rejected => "rejected",
            Verdict::Ignored => "ignored",
        })
    }
}

#[derive(Debug, Clone)]
struct Finding {
    /// Where, from the document's root: `spec.values.platforms`.
    path: String,
    verdict: Verdict,
    /// What istioctl says, as near as its wording can be rebuilt.
    message: String,
}

impl Finding {
    fn key(&self) -> String {
        format!("{}: {}", self.path, self.verdict)
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.path, self.verdict, self.message)
    }
}

/// Which decoder reads a subtree: Go's `encoding/json` or golang/protobuf's `jsonpb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoder {
    Go,
    Jsonpb { strict: bool },
}

struct Schema {
    doc: Value,
}

fn schema() -> &'static Schema {
    static SCHEMA_DOC: OnceLock<Schema> = OnceLock::new();
    SCHEMA_DOC.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(SCHEMA);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{SCHEMA}: {e}"));
        Schema {
            doc: serde_json::from_str(&text).unwrap_or_else(|e| panic!("{SCHEMA}: {e}")),
        }
    })
}

impl Schema {
    fn root(&self, name: &str) -> &str {
        self.doc["roots"][name].as_str().expect("root")
    }

    fn ty(&self, name: &str) -> &Value {
        let t = &self.doc["types"][name];
        assert!(t.is_object(), "{SCHEMA}: no type {name}");
        t
    }

    fn enum_values(&self, name: &str) -> Vec<&str> {
        self.doc["enums"][name]
            .as_array()
            .unwrap_or_else(|| panic!("{SCHEMA}: no enum {name}"))
            .iter()
            .filter_map(Value::as_str)
            .collect()
    }

    /// The `runKube` re-decodes, by proto field path under `values`.
    fn kubernetes_check(&self, proto_path: &[String]) -> Option<&Value> {
        self.doc["kubernetesChecks"]
            .as_array()
            .expect("kubernetesChecks")
            .iter()
            .find(|c| {
                c["path"].as_array().is_some_and(|p| {
                    p.iter()
                        .map(Value::as_str)
                        .eq(proto_path.iter().map(|s| Some(s.as_str())))
                })
            })
    }
}

/// Decodes one IstioOperator document the four ways istioctl does.
fn decode(doc: &Value) -> Vec<Finding> {
    let s = schema();
    let mut w = Walk {
        s,
        findings: Vec::new(),
        prefix: "could not unmarshal: ".to_string(),
    };
    w.check(
        doc,
        &Value::from(s.root("istioOperator")),
        "",
        Decoder::Go,
        None,
    );

    let spec = &doc["spec"];
    if !spec["values"].is_null() {
        w.prefix =
            "could not unmarshal: error unmarshaling JSON: while decoding JSON: ".to_string();
        w.check(
            &spec["values"],
            &Value::from(s.root("values")),
            "spec.values",
            Decoder::Jsonpb { strict: true },
            Some(&[]),
        );
    }
    for (value, path) in [
        (&spec["meshConfig"], "spec.meshConfig"),
        (&spec["values"]["meshConfig"], "spec.values.meshConfig"),
    ] {
        if !value.is_null() {
            w.prefix = "failed to convert to proto.: ".to_string();
            w.check(
                value,
                &Value::from(s.root("meshConfig")),
                path,
                Decoder::Jsonpb { strict: false },
                None,
            );
        }
    }
    w.findings
}

struct Walk<'a> {
    s: &'a Schema,
    findings: Vec<Finding>,
    /// What istioctl puts before the decoder's own words.
    prefix: String,
}

impl Walk<'_> {
    fn reject(&mut self, path: &str, message: &str) {
        self.findings.push(Finding {
            path: path.to_string(),
            verdict: Verdict::Rejected,
            message: format!("{}{message}", self.prefix),
        });
    }

    /// `proto_path`: the proto field names from `values` down, while under `values`, for the
    /// `runKube` re-decodes.
    fn check(
        &mut self,
        v: &Value,
        ty: &Value,
        path: &str,
        dec: Decoder,
        proto_path: Option<&[String]>,
    ) {
        if v.is_null() {
            // Both decoders leave a field at its zero value for a JSON null.
            return;
        }
        if let Some(item) = ty.get("list") {
            let Some(items) = v.as_array() else {
                return self.reject(path, &format!("cannot unmarshal {} into a list", kind(v)));
            };
            for (i, item_value) in items.iter().enumerate() {
                self.check(item_value, item, &format!("{path}[{i}]"), dec, proto_path);
            }
            return;
        }
        if let Some(value) = ty.get("map") {
            let Some(entries) = v.as_object() else {
                return self.reject(path, &format!("cannot unmarshal {} into a map", kind(v)));
            };
            let key = ty.get("key").and_then(Value::as_str).unwrap_or("string");
            for (k, entry) in entries {
                if key != "string"
                    && scalar(
                        key,
                        &Value::from(k.as_str()),
                        Decoder::Jsonpb { strict: true },
                    )
                    .is_err()
                {
                    self.reject(&child(path, k), &format!("bad map key {k:?} for {key}"));
                }
                self.check(entry, value, &child(path, k), dec, None);
            }
            return;
        }
        let name = ty.as_str().expect("a type is a name, a list or a map");
        if name.starts_with("go:") || name.starts_with("pb:") {
            self.object(v, name, path, dec, proto_path);
        } else if let Some(e) = name.strip_prefix("enum:") {
            let ok = match v {
                Value::String(s) => self.s.enum_values(e).contains(&s.as_str()),
                Value::Number(n) => n.is_i64(),
                _ => false,
            };
            if !ok {
                self.reject(path, &format!("unknown value {v} for enum {e}"));
            }
        } else if let Err(e) = scalar(name, v, dec) {
            self.reject(path, &e);
        }
    }

    fn object(
        &mut self,
        v: &Value,
        name: &str,
        path: &str,
        dec: Decoder,
        proto_path: Option<&[String]>,
    ) {
        let Some(obj) = v.as_object() else {
            return self.reject(
                path,
                &format!(
                    "cannot unmarshal {} into Go value of type {}",
                    kind(v),
                    short(name)
                ),
            );
        };
        let ty = self.s.ty(name);
        if ty["decoder"] == "go" {
            let fields = ty["fields"].as_object().expect("fields");
            for (k, value) in obj {
                // encoding/json: the exact name, else the first field equal without case.
                let field = fields.get(k).or_else(|| {
                    fields
                        .iter()
                        .find(|(f, _)| f.eq_ignore_ascii_case(k))
                        .map(|(_, t)| t)
                });
                match field {
                    Some(t) => self.check(value, t, &child(path, k), Decoder::Go, None),
                    None => self.reject(&child(path, k), &format!("json: unknown field {k:?}")),
                }
            }
            return;
        }
        let Decoder::Jsonpb { strict } = dec else {
            panic!("{name} read by encoding/json");
        };
        let fields = ty["fields"].as_array().expect("fields");
        let full = name.trim_start_matches("pb:");
        for (k, value) in obj {
            // jsonpb: the proto name or the JSON name, exactly.
            let field = fields
                .iter()
                .find(|f| f["name"] == k.as_str() || f["json"] == k.as_str());
            let Some(field) = field else {
                let message = format!("unknown field {k:?} in {full}");
                if strict {
                    self.reject(&child(path, k), &message);
                } else {
                    self.findings.push(Finding {
                        path: child(path, k),
                        verdict: Verdict::Ignored,
                        message: format!(
                            "{message}: dropped, protomarshal.ApplyJSON decodes again with AllowUnknownFields"
                        ),
                    });
                }
                continue;
            };
            let field_name = field["name"].as_str().expect("name").to_string();
            let sub_path = proto_path.map(|p| {
                let mut p = p.to_vec();
                p.push(field_name);
                p
            });
            let here = child(path, k);
            self.check(value, &field["type"], &here, dec, sub_path.as_deref());
            if let Some(check) = sub_path.as_deref().and_then(|p| self.s.kubernetes_check(p)) {
                self.kubernetes(value, check, &here);
            }
        }
    }

    /// `runKube` / `runKubeList`: the `Struct`s at this path decoded again into a Kubernetes
    /// type by `yaml.UnmarshalStrict`.
    fn kubernetes(&mut self, v: &Value, check: &Value, path: &str) {
        let saved = std::mem::replace(
            &mut self.prefix,
            format!(
                "invalid schema for {}: error unmarshaling JSON: while decoding JSON: ",
                check["hint"].as_str().expect("hint")
            ),
        );
        let ty = check["type"].clone();
        match (check["list"].as_bool(), v.as_array()) {
            (Some(true), Some(items)) => {
                for (i, item) in items.iter().enumerate() {
                    self.check(item, &ty, &format!("{path}[{i}]"), Decoder::Go, None);
                }
            }
            (Some(true), None) => {}
            _ => self.check(v, &ty, path, Decoder::Go, None),
        }
        self.prefix = saved;
    }
}

/// Whether a JSON value decodes into a scalar type: Go's rules, or jsonpb's (which also reads
/// numbers in quotes).
fn scalar(name: &str, v: &Value, dec: Decoder) -> Result<(), String> {
    let pb = matches!(dec, Decoder::Jsonpb { .. });
    let unquoted = |v: &Value| -> Option<Value> {
        match v {
            Value::String(s) if pb => serde_json::from_str::<Value>(s)
                .ok()
                .filter(Value::is_number),
            other => Some(other.clone()),
        }
    };
    let integer = |lo: i128, hi: i128| -> bool {
        unquoted(v)
            .as_ref()
            .and_then(|n| {
                n.as_i64()
                    .map(i128::from)
                    .or_else(|| n.as_u64().map(i128::from))
            })
            .is_some_and(|n| (lo..=hi).contains(&n))
    };
    let ok = match name {
        "any" => true,
        "string" | "time" | "timestamp" => v.is_string(),
        "bool" => v.is_boolean(),
        "int8" => integer(i8::MIN.into(), i8::MAX.into()),
        "int16" => integer(i16::MIN.into(), i16::MAX.into()),
        "int32" => integer(i32::MIN.into(), i32::MAX.into()),
        "int64" => integer(i64::MIN.into(), i64::MAX.into()),
        "uint8" => integer(0, u8::MAX.into()),
        "uint16" => integer(0, u16::MAX.into()),
        "uint32" => integer(0, u32::MAX.into()),
        "uint64" => integer(0, u64::MAX.into()),
        "float" | "double" => {
            unquoted(v).is_some_and(|n| n.is_number())
                || (pb && ["NaN", "Infinity", "-Infinity"].iter().any(|s| v == *s))
        }
        "bytes" => v
            .as_str()
            .is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok()),
        "quantity" => v.is_string() || v.is_number(),
        // intstr.IntOrString and the operator's IntOrString: a string, or an int32.
        "intOrString" => v.is_string() || v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        "duration" => v.as_str().is_some_and(go_duration),
        "struct" | "pbAny" => v.is_object(),
        "listValue" => v.is_array(),
        other => panic!("{SCHEMA}: unknown scalar type {other}"),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("cannot unmarshal {} {v} into {name}", kind(v)))
    }
}

/// Go's `time.ParseDuration`: `0`, or signed decimal numbers each with a unit.
fn go_duration(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..digits];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return false;
        }
        rest = &rest[digits..];
        let Some(unit) = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"]
            .iter()
            .filter(|u| rest.starts_with(**u))
            .max_by_key(|u| u.len())
        else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    true
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `go:k8s.io/api/core/v1.ServiceSpec` as Go prints it: `v1.ServiceSpec`.
fn short(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn child(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (path.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{key:?}]"),
    }
}

// ---------------------------------------------------------------------------------------------
// What meshc writes

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A topology with the files beside it, copied into a temporary directory so that it can be
/// changed there.
struct Case {
    name: String,
    dir: tempfile::TempDir,
}

impl Case {
    /// `source`: the directory the topology's relative paths (tokens, CA files) are read from;
    /// `topology`: the topology's text.
    fn new(name: &str, source: &Path, topology: &str) -> Case {
        let dir = tempfile::tempdir().expect("tempdir");
        for rel in common::files_under(source) {
            let to = dir.path().join(&rel);
            std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
            std::fs::copy(source.join(&rel), to).expect("copy");
        }
        std::fs::write(dir.path().join("topology.yaml"), topology).expect("write");
        Case {
            name: name.to_string(),
            dir,
        }
    }

    /// `meshc build`; every IstioOperator file written, by path under `out/`.
    fn build(&self) -> BTreeMap<String, Value> {
        let out = assert_cmd::Command::cargo_bin("meshc")
            .expect("binary")
            .current_dir(self.dir.path())
            .args(["build", "topology.yaml", "-o", "out", "--pki", "pki"])
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            self.name,
            common::stderr(&out)
        );
        let root = self.dir.path().join("out");
        common::files_under(&root)
            .into_iter()
            .filter(|f| {
                f.contains("/install/istioctl/")
                    && Path::new(f).extension().is_some_and(|e| e == "yaml")
            })
            .map(|f| {
                let text = std::fs::read_to_string(root.join(&f)).expect("read");
                let doc: Value = serde_saphyr::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {f}: {e}", self.name));
                (f, doc)
            })
            .collect()
    }
}

/// The same topology with `installers: [helm, istioctl]` on every mesh.
fn with_istioctl(topology: &str) -> String {
    let mut t: Value = serde_saphyr::from_str(topology).expect("topology parses");
    for mesh in t["meshes"].as_array_mut().expect("meshes") {
        let mesh = mesh.as_object_mut().expect("a mesh is a mapping");
        let istio = mesh
            .entry("istio")
            .or_insert_with(|| Value::Object(Map::new()));
        istio["installers"] = serde_json::json!(["helm", "istioctl"]);
    }
    serde_saphyr::to_string(&t).expect("serializes")
}

/// Every example and test topology as written, and again with istioctl among its installers,
/// and the rule fixtures that install with istioctl.
fn cases() -> Vec<Case> {
    let mut sources: Vec<(String, PathBuf, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(repo("examples"))
        .expect("examples/")
        .flatten()
    {
        let dir = entry.path();
        if dir.join("topology.yaml").exists() {
            let name = format!("examples/{}", entry.file_name().to_string_lossy());
            sources.push((name, dir.clone(), dir.join("topology.yaml")));
        }
    }
    for dir in ["tests/data/topologies", "tests/rules"] {
        for entry in std::fs::read_dir(repo(dir)).expect("list").flatten() {
            let file = entry.path();
            let name = file
                .file_name()
                .expect("name")
                .to_string_lossy()
                .to_string();
            let keep = if dir == "tests/rules" {
                // The passing fixtures that install with istioctl build without an error.
                name.ends_with(".pass.yaml")
                    && std::fs::read_to_string(&file).is_ok_and(|t| t.contains("istioctl"))
            } else {
                file.extension().is_some_and(|e| e == "yaml")
            };
            if keep {
                sources.push((format!("{dir}/{name}"), repo(dir), file));
            }
        }
    }
    sources.sort();
    let mut cases = Vec::new();
    for (name, dir, file) in sources {
        let text = std::fs::read_to_string(&file).expect("read");
        cases.push(Case::new(&name, &dir, &text));
        cases.push(Case::new(
            &format!("{name} (istioctl)"),
            &dir,
            &with_istioctl(&text),
        ));
    }
    cases
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn every_istio_operator_meshc_writes_decodes_as_istioctl_1_30_3_decodes_it() {
    let mut problems: Vec<String> = Vec::new();
    let mut seen_known: BTreeSet<&str> = BTreeSet::new();
    let mut files = 0;
    // The shapes the builds must have covered, so that a narrower set of cases is noticed.
    let mut shapes: BTreeSet<String> = BTreeSet::new();
    for case in cases() {
        for (file, doc) in case.build() {
            files += 1;
            assert_eq!(doc["kind"], "IstioOperator", "{}: {file}", case.name);
            assert_eq!(doc["apiVersion"], "install.istio.io/v1alpha1");
            let spec = &doc["spec"];
            shapes.insert(format!(
                "profile {}",
                spec["profile"].as_str().unwrap_or("")
            ));
            for (key, value) in [
                ("platform", &spec["values"]["global"]["platform"]),
                (
                    "remotePilotAddress",
                    &spec["values"]["global"]["remotePilotAddress"],
                ),
                ("ztunnel", &spec["values"]["ztunnel"]),
                ("cni", &spec["components"]["cni"]),
                ("revision", &spec["revision"]),
                (
                    "trustDomainAliases",
                    &spec["meshConfig"]["trustDomainAliases"],
                ),
                (
                    "gateway env",
                    &spec["components"]["ingressGateways"][0]["k8s"]["env"],
                ),
            ] {
                if !value.is_null() && value != "" {
                    let detail = value.as_str().map(|s| format!(" {s}")).unwrap_or_default();
                    shapes.insert(format!(
                        "{key}{}",
                        if key == "platform" {
                            detail
                        } else {
                            String::new()
                        }
                    ));
                }
            }
            for finding in decode(&doc) {
                let key = finding.key();
                if let Some(known) = KNOWN_PROBLEMS.iter().find(|k| **k == key) {
                    seen_known.insert(known);
                } else {
                    problems.push(format!("{}: {file}: {finding}", case.name));
                }
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(
        problems.is_empty(),
        "fields istioctl 1.30.3 refuses or drops:\n{}",
        problems.join("\n")
    );
    let stale: Vec<&&str> = KNOWN_PROBLEMS
        .iter()
        .filter(|k| !seen_known.contains(**k))
        .collect();
    assert!(stale.is_empty(), "KNOWN_PROBLEMS no build shows: {stale:?}");
    assert!(files >= 30, "only {files} IstioOperator files");
    for shape in [
        "profile default",
        "profile remote",
        "profile ambient",
        "profile empty",
        "platform openshift",
        "platform gke",
        "remotePilotAddress",
        "ztunnel",
        "cni",
        "revision",
        "trustDomainAliases",
        "gateway env",
    ] {
        assert!(
            shapes.contains(shape),
            "no IstioOperator with {shape}: {shapes:?}"
        );
    }
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("YAML")
}

/// Findings as `PATH: VERDICT`.
fn keys(doc: &str) -> Vec<String> {
    decode(&yaml(doc)).iter().map(Finding::key).collect()
}

const HEAD: &str = "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nmetadata:\n  name: x\n  namespace: istio-system\n";

#[test]
fn solo_peering_key_is_rejected_at_its_path() {
    let doc = format!(
        "{HEAD}spec:\n  profile: ambient\n  values:\n    global:\n      network: network1\n    platforms:\n      peering:\n        enabled: true\n"
    );
    let findings = decode(&yaml(&doc));
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(f.path, "spec.values.platforms");
    assert_eq!(f.verdict, Verdict::Rejected);
    assert_eq!(
        f.message,
        "could not unmarshal: error unmarshaling JSON: while decoding JSON: \
         unknown field \"platforms\" in istio.operator.v1alpha1.Values"
    );
    assert_eq!(
        f.to_string(),
        format!("spec.values.platforms: rejected: {}", f.message)
    );
}

#[test]
fn the_whole_document_is_read_by_encoding_json_without_unknown_fields() {
    // Unknown fields anywhere in the Go types: the spec, components, Kubernetes types.
    let doc = format!(
        "{HEAD}  labels: {{a: b}}\nstatus: {{}}\nspec:\n  profiles: default\n  components:\n    pilot:\n      enabled: true\n      k8s:\n        replicas: 2\n    ingressGateways:\n      - name: gw\n        labels: {{a: b}}\n        k8s:\n          service:\n            ports:\n              - {{name: tls, port: 15443, targetPort: 15443, appProtocl: tls}}\n          env:\n            - {{name: A, value: b, valueFrom: {{fieldRef: {{fieldPath: x, path: y}}}}}}\n"
    );
    assert_eq!(
        keys(&doc),
        [
            "status: rejected",
            "spec.profiles: rejected",
            "spec.components.pilot.k8s.replicas: rejected",
            "spec.components.ingressGateways[0].labels: rejected",
            "spec.components.ingressGateways[0].k8s.service.ports[0].appProtocl: rejected",
            "spec.components.ingressGateways[0].k8s.env[0].valueFrom.fieldRef.path: rejected",
        ]
    );
    let f = decode(&yaml(&doc));
    assert_eq!(
        f[0].message,
        "could not unmarshal: json: unknown field \"status\""
    );

    // encoding/json matches a field without case; the untyped fields take anything.
    let doc = format!(
        "{HEAD}Spec:\n  Profile: default\n  tag: {{any: thing}}\n  unvalidatedValues: {{platforms: {{peering: {{enabled: true}}}}}}\n  components:\n    ingressGateways:\n      - {{name: gw, K8S: {{overlays: [{{kind: Service, name: gw, patches: [{{path: spec.x, value: {{a: 1}}}}]}}]}}}}\n"
    );
    assert_eq!(keys(&doc), Vec::<String>::new());
}

#[test]
fn values_are_read_by_jsonpb_by_proto_or_json_name_exactly() {
    let doc = format!(
        "{HEAD}spec:\n  values:\n    istio_cni: {{enabled: true}}\n    istioCni: {{enabled: true}}\n    gateways:\n      istio-ingressgateway: {{injectionTemplate: gateway}}\n      istio_egressgateway: {{autoscaleEnabled: false}}\n    global:\n      Network: n1\n      meshID: mesh1\n      multiCluster: {{clusterName: c1, clustername: c1}}\n    pilot:\n      env: {{ANY_VARIABLE: \"true\"}}\n      replicaCount: \"2\"\n    ztunnel: {{anything: [at, all]}}\n    gatewayClasses: {{istio-remote: {{service: {{type: ClusterIP}}}}}}\n"
    );
    assert_eq!(
        keys(&doc),
        [
            "spec.values.global.Network: rejected",
            "spec.values.global.multiCluster.clustername: rejected",
        ]
    );
    let f = decode(&yaml(&doc));
    assert!(
        f[1].message.ends_with(
            "unknown field \"clustername\" in istio.operator.v1alpha1.MultiClusterConfig"
        )
    );
}

#[test]
fn reader_rbac_switch_is_a_1_30_field_and_its_service_account_is_not() {
    // `global.enableReaderRBAC` is field 78 of GlobalConfig in 1.30's values_types.proto;
    // `global.readerServiceAccount` (field 79) first appears in 1.31.
    let doc = format!(
        "{HEAD}spec:\n  values:\n    global:\n      enableReaderRBAC: false\n      readerServiceAccount: {{name: reader, namespace: istio-system}}\n"
    );
    assert_eq!(
        keys(&doc),
        ["spec.values.global.readerServiceAccount: rejected"]
    );
}

#[test]
fn values_that_istioctl_reads_again_as_kubernetes_types_are_strict() {
    let doc = format!(
        "{HEAD}spec:\n  values:\n    pilot:\n      affinity: {{nodeAfinity: {{}}}}\n      tolerations: [{{key: a, operator: Exists, efect: NoSchedule}}]\n      volumes: [{{name: v, emptyDir: {{}}}}]\n    cni:\n      seccompProfile: {{type: RuntimeDefault}}\n    global:\n      proxy:\n        lifecycle: {{preStop: {{sleep: {{seconds: 5}}}}}}\n"
    );
    assert_eq!(
        keys(&doc),
        [
            "spec.values.pilot.affinity.nodeAfinity: rejected",
            "spec.values.pilot.tolerations[0].efect: rejected",
        ]
    );
    let f = decode(&yaml(&doc));
    assert_eq!(
        f[0].message,
        "invalid schema for pilot.affinity: error unmarshaling JSON: while decoding JSON: \
         json: unknown field \"nodeAfinity\""
    );
}

#[test]
fn mesh_config_drops_unknown_fields_and_refuses_wrong_types() {
    let doc = format!(
        "{HEAD}spec:\n  meshConfig:\n    trustDomain: cluster.local\n    trust_domain_aliases: [a.local]\n    trustDomains: [b.local]\n    connectTimeout: 10s\n    defaultConfig:\n      proxyMetadata: {{ISTIO_META_DNS_CAPTURE: \"true\"}}\n      holdApplicationUntilProxyStarts: true\n      proxyMetadataa: {{}}\n    outboundTrafficPolicy: {{mode: REGISTRY_ONLY}}\n  values:\n    meshConfig:\n      enableAutoMtls: \"yes\"\n      accessLogFile: /dev/stdout\n"
    );
    assert_eq!(
        keys(&doc),
        [
            "spec.meshConfig.trustDomains: ignored",
            "spec.meshConfig.defaultConfig.proxyMetadataa: ignored",
            "spec.values.meshConfig.enableAutoMtls: rejected",
        ]
    );
    let f = decode(&yaml(&doc));
    assert!(
        f[0].message.starts_with(
            "unknown field \"trustDomains\" in istio.mesh.v1alpha1.MeshConfig: dropped"
        ),
        "{f:#?}"
    );
    assert_eq!(
        keys(&format!(
            "{HEAD}spec:\n  meshConfig:\n    connectTimeout: 10\n    outboundTrafficPolicy: {{mode: REGISTRY}}\n"
        )),
        [
            "spec.meshConfig.connectTimeout: rejected",
            "spec.meshConfig.outboundTrafficPolicy.mode: rejected",
        ]
    );
}

#[test]
fn scalars_follow_each_decoder() {
    // encoding/json: no quoted numbers, no strings for booleans.
    assert_eq!(
        keys(&format!(
            "{HEAD}spec:\n  components:\n    pilot:\n      enabled: \"true\"\n      k8s:\n        replicaCount: \"2\"\n        resources: {{requests: {{cpu: 100m, memory: 1}}}}\n        service: {{ports: [{{port: 80, targetPort: http}}]}}\n"
        )),
        [
            "spec.components.pilot.enabled: rejected",
            "spec.components.pilot.k8s.replicaCount: rejected",
        ]
    );
    // jsonpb: quoted integers are read, strings are not booleans, enums by name.
    assert_eq!(
        keys(&format!(
            "{HEAD}spec:\n  values:\n    global:\n      meshID: 1\n      proxy: {{tracer: zipkin, statusPort: \"15020\", privileged: \"false\", concurrency: 2}}\n"
        )),
        [
            "spec.values.global.meshID: rejected",
            "spec.values.global.proxy.privileged: rejected",
            // Not a field of the values' ProxyConfig (it is meshConfig.defaultConfig's).
            "spec.values.global.proxy.concurrency: rejected",
        ]
    );
    for (d, ok) in [
        ("10s", true),
        ("1h2m0.5s", true),
        ("0", true),
        ("-1.5ms", true),
        ("10", false),
        ("s", false),
        ("", false),
        ("1d", false),
    ] {
        assert_eq!(go_duration(d), ok, "{d}");
    }
}
