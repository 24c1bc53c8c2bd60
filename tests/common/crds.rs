//! The repository's copies of Istio's and the Gateway API's CRDs, loaded once per test process
//! with the library's checker (`meshc::crds`, the code behind `--istio-crds`), so that the
//! tests' check of what `meshc build` writes is the one users run.
//!
//! Self-contained, so that a test can include it by path:
//!
//! ```ignore
//! #[path = "common/crds.rs"]
//! mod crds;
//! ```
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use meshc::crds::{Crds, Verdict};
use serde_json::Value;

/// The CRD files, relative to the crate's directory.
pub const ISTIO: &str = "tests/data/crds/istio-1.30.3-crd-all.gen.yaml";
pub const GATEWAY_API: &str = "tests/data/crds/gateway-api-v1.5.1.yaml";
pub const CRD_FILES: [&str; 2] = [ISTIO, GATEWAY_API];

/// A CRD file's absolute path.
pub fn file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Both files, loaded once per process.
pub fn shared() -> &'static Crds {
    static CRDS: OnceLock<Crds> = OnceLock::new();
    CRDS.get_or_init(|| {
        let files: Vec<PathBuf> = CRD_FILES.iter().map(|f| file(f)).collect();
        Crds::load(&files).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// Validates one Kubernetes document against its CRD; every problem as `path: message`.
pub fn validate(crds: &Crds, doc: &Value) -> Result<(), Vec<String>> {
    let (Some(api_version), Some(kind)) = (doc["apiVersion"].as_str(), doc["kind"].as_str()) else {
        return Err(vec!["/: apiVersion and kind must be strings".to_owned()]);
    };
    let verdict = crds.validate(doc).unwrap_or_else(|e| panic!("{e}"));
    let errors = match verdict {
        Verdict::Unknown => vec![format!("/: no CRD for `{api_version}` {kind}")],
        Verdict::NoKind { group } => vec![format!("/: group `{group}` has no kind `{kind}`")],
        Verdict::NotServed { served } => vec![format!(
            "/: {api_version} {kind} is not served (served versions: {})",
            served.join(", ")
        )],
        Verdict::Checked(violations) => violations.iter().map(ToString::to_string).collect(),
    };
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
