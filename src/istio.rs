//! Istio's vocabulary: the names, namespaces and resource shapes meshc writes and the rules
//! check against.
//!
//! The planner, the emitters, the rules and the CRD check all speak of the same Istio objects
//! (the system namespace, the reader token, the `cacerts` keys, the DestinationRule spec).
//! Keeping those words here, below every stage, means no stage reaches into another's module
//! for a constant, and a name Istio fixes is written down once. Facts come from
//! `reference/istio-facts.md` and Istio's source at the release tag, cited where they are used.

use serde_json::{Value, json};

use crate::topology::DestinationRule;

/// The namespace of the control plane; `cacerts` lives here.
pub const SYSTEM_NAMESPACE: &str = "istio-system";

/// Where Solo's east-west Gateway and the `istio-remote` Gateways of its peers live (the
/// namespace of Solo's `istioctl multicluster expose --namespace istio-gateways`).
pub const SOLO_GATEWAY_NAMESPACE: &str = "istio-gateways";

/// The east-west Gateway of Solo's distribution (`istioctl multicluster expose`).
pub const SOLO_EAST_WEST_NAME: &str = "istio-eastwest";

/// Where the Sail Operator installs istio-cni (`IstioCNI.spec.namespace` in its docs); the
/// namespace must exist before the object is applied.
pub const SAIL_CNI_NAMESPACE: &str = "istio-cni";

/// Where the Sail Operator installs ztunnel (`ZTunnel.spec.namespace` in its docs).
pub const SAIL_ZTUNNEL_NAMESPACE: &str = "ztunnel";

/// The newest patch of each Istio minor the Sail Operator serves (the `spec.version` enum of
/// its `Istio` CRD, `shared/sail/sailoperator.io_istios.yaml`). A minor with no release yet
/// (1.31 has only betas there) follows the operator's `vX.Y-latest` alias.
pub const SAIL_PATCHES: &[(u32, u32)] = &[(26, 8), (27, 9), (28, 10), (29, 6), (30, 3)];

/// `spec.version` of the Sail objects for an Istio minor: its newest patch, or the
/// operator's `-latest` alias when the operator ships no release of that minor yet.
pub fn sail_version(minor: u32) -> String {
    SAIL_PATCHES.iter().find(|(m, _)| *m == minor).map_or_else(
        || format!("v1.{minor}-latest"),
        |(m, p)| format!("v1.{m}.{p}"),
    )
}

/// istiod's webhook port, which the east-west gateway passes through for remotes
/// (`expose-istiod`); the charts' `istiod` Service maps 443 to it, the gateway does not.
pub const WEBHOOK_PORT: u16 = 15017;

/// The four keys of the `cacerts` Secret, in the order istiod documents them.
pub const CACERTS_KEYS: [&str; 4] = [
    "ca-cert.pem",
    "ca-key.pem",
    "cert-chain.pem",
    "root-cert.pem",
];

/// The ServiceAccount istiod on other clusters uses to watch this one.
pub const READER_SERVICE_ACCOUNT: &str = "istio-reader-service-account";
/// The token Secret `istioctl create-remote-secret` would create (and reuses when present).
pub const READER_TOKEN_SECRET: &str = "istio-reader-service-account-istio-remote-secret-token";

/// `externalStore` is `NAME` (a ClusterSecretStore) or `SecretStore/NAME` /
/// `ClusterSecretStore/NAME`.
pub fn secret_store_ref(external_store: &str) -> (&str, &str) {
    match external_store.split_once('/') {
        Some((kind, name)) => (kind, name),
        None => ("ClusterSecretStore", external_store),
    }
}

/// The key under which the external store holds a cluster's CA material.
pub fn external_key(cluster: &str) -> String {
    format!("istio-cacerts-{cluster}")
}

/// The `spec` of the DestinationRule meshc writes for a topology entry: `host`,
/// `trafficPolicy`, `subsets`, `exportTo` and `workloadSelector`, verbatim. One place, so that
/// what `--istio-crds` checks is what is written.
pub fn destination_rule_spec(dr: &DestinationRule) -> Value {
    let mut spec = serde_json::Map::new();
    spec.insert("host".into(), json!(dr.host));
    if let Some(tp) = &dr.traffic_policy {
        spec.insert(
            "trafficPolicy".into(),
            serde_json::to_value(tp).unwrap_or_default(),
        );
    }
    if !dr.subsets.is_empty() {
        spec.insert(
            "subsets".into(),
            serde_json::to_value(&dr.subsets).unwrap_or_default(),
        );
    }
    if let Some(e) = &dr.export_to {
        spec.insert("exportTo".into(), json!(e));
    }
    if let Some(w) = &dr.workload_selector {
        spec.insert(
            "workloadSelector".into(),
            serde_json::to_value(w).unwrap_or_default(),
        );
    }
    Value::Object(spec)
}
