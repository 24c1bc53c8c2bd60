//! Trust: settings of the mesh CA that can be checked without the PKI store, and trust
//! domains that would make cross-cluster identities fail to verify.

use crate::diagnostic::{Code, Reporter};
use crate::model::Model;
use crate::path;
use crate::topology::{Distribution, SecretsMode};
use crate::validate::names::dns1123_subdomain;

pub fn run(m: &Model, r: &mut Reporter<'_>) {
    let t = &m.topology;
    for (mi, mesh) in t.meshes.iter().enumerate() {
        if mesh.ca.secrets == SecretsMode::External
            && mesh.ca.external_store.as_deref().is_none_or(str::is_empty)
        {
            r.report(
                Code::ExternalStoreMissing,
                &path!("meshes", mi, "ca", "secrets"),
                format!(
                    "mesh `{}` keeps its CA secrets in an external store but names none",
                    mesh.name
                ),
            )
            .label("`external` needs a store")
            .help("add `externalStore: <SecretStore or ClusterSecretStore name>` under `ca:`");
        }
        if let Some(store) = mesh.ca.external_store.as_deref().filter(|s| !s.is_empty()) {
            check_store_ref(r, mi, store);
        }

        // Upstream Istio validates peer trust domains: clusters of one mesh with different
        // trust domains reject each other's workloads [istio/istio#39204].
        if mesh.istio.distribution != Distribution::Upstream {
            continue;
        }
        let clusters = &m.meshes[mi].clusters;
        let mut domains: Vec<&str> = clusters.iter().map(|&c| m.trust_domain(c)).collect();
        domains.sort_unstable();
        domains.dedup();
        if domains.len() < 2 {
            continue;
        }
        // The clusters disagree: point at every override that makes them.
        for &c in clusters {
            let td = m.trust_domain(c);
            if t.clusters[c]
                .trust_domain
                .as_deref()
                .is_some_and(|s| !s.is_empty())
            {
                let others: Vec<&str> = domains.iter().copied().filter(|d| *d != td).collect();
                r.report(Code::TrustDomainMismatch, &path!("clusters", c, "trustDomain"), format!("cluster `{}` has trust domain `{td}`; other clusters of mesh `{}` have {}", t.clusters[c].name, mesh.name, others.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", ")))
                    .label("differs from other clusters of the mesh")
                    .help("upstream Istio rejects workloads of another trust domain unless every cluster lists it in `meshConfig.trustDomainAliases`: remove the override unless the clusters must be told apart");
            }
        }
    }
}

/// `externalStore` is `NAME` (a ClusterSecretStore) or `SecretStore/NAME` /
/// `ClusterSecretStore/NAME`; the name is a Kubernetes object name.
fn check_store_ref(r: &mut Reporter<'_>, mi: usize, store: &str) {
    let p = path!("meshes", mi, "ca", "externalStore");
    let (kind, name) = crate::istio::secret_store_ref(store);
    if !matches!(kind, "SecretStore" | "ClusterSecretStore") {
        r.report(
            Code::InvalidValue,
            &p,
            format!("`{kind}` is not a kind of External Secrets store"),
        )
        .label("expected `SecretStore/` or `ClusterSecretStore/`")
        .help("write `NAME` (a ClusterSecretStore), `ClusterSecretStore/NAME` or `SecretStore/NAME` (a store in istio-system)");
    } else if let Some(why) = dns1123_subdomain(name) {
        r.report(
            Code::InvalidName,
            &p,
            format!("`{name}` is not a valid store name: {why}"),
        )
        .label("not a Kubernetes object name")
        .help("store names are lower-case DNS subdomains, e.g. `vault-backend`");
    }
}
