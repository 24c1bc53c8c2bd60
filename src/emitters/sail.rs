//! `install/sail/`: the Sail Operator's objects (`sailoperator.io/v1`, OpenShift Service Mesh
//! 3), for meshes whose installers include `sail`.
//!
//! Every Sail object is cluster-scoped and built here as data (`render::data`): an `Istio`
//! whose `spec.values` carries what the Helm values of `istio/base` and `istio/istiod` carry
//! (the operator renders Istio's own charts with them, IstioOperator-style: `pilot.env`,
//! `spec.values.meshConfig`), an `IstioCNI` where the cluster runs istio-cni (ambient, and
//! every OpenShift cluster), a `ZTunnel` for ambient, and an `IstioRevisionTag` `default`
//! when the mesh names a revision, so that `istio-injection: enabled` keeps working.
//!
//! The shapes follow the operator's docs (`docs/deployment-models/multicluster.adoc`,
//! istio-ecosystem/sail-operator main): remotes get `profile: remote` with
//! `istiodRemote.injectionPath` and `global.remotePilotAddress`; ambient clusters get
//! `profile: ambient` on `Istio` and `IstioCNI`, a `ZTunnel` in namespace `ztunnel` with its
//! cluster name and network, and `pilot.trustedZtunnelNamespace: ztunnel`. The operator
//! applies its `openshift` profile itself on OpenShift (`cmd/main.go`, `DefaultProfile`), so
//! no platform value is written. The CRD's CEL rule wants `values.global.istioNamespace` equal
//! to `spec.namespace`: both are the system namespace.

use serde_json::{Map, Value, json};

use super::{ClusterCx, Files, Role};
use crate::istio::{SAIL_CNI_NAMESPACE, SAIL_ZTUNNEL_NAMESPACE, SYSTEM_NAMESPACE, sail_version};
use crate::render::RenderError;
use crate::topology::Installer;

const API_VERSION: &str = "sailoperator.io/v1";

/// A cluster-scoped Sail object with meshc's label.
fn object(kind: &str, name: &str, spec: Value) -> Value {
    let mut object = json!({
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {
            "name": name,
            "labels": { "app.kubernetes.io/managed-by": "meshc" },
        },
    });
    object["spec"] = spec;
    object
}

/// Inserts `value` at the path of keys under `map`, creating the maps on the way.
fn set(map: &mut Map<String, Value>, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut here = map;
    for key in parents {
        let next = here
            .entry((*key).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        let Value::Object(inner) = next else { return };
        here = inner;
    }
    here.insert((*last).to_string(), value);
}

/// The `Istio` object's `spec.values`: the Helm values of `istio/base` and `istio/istiod`
/// for this cluster, in the IstioOperator layout the operator takes.
fn istio_values(cx: &ClusterCx<'_>) -> Map<String, Value> {
    let c = cx.common;
    let mut v = Map::new();
    set(
        &mut v,
        &["global", "istioNamespace"],
        json!(SYSTEM_NAMESPACE),
    );
    if c.remote {
        // As in the Helm values: the remote profile renders no istiod, mesh or injector
        // ConfigMap to read a mesh ID, cluster name or network from.
        if let Some(address) = &c.remote_pilot_address {
            set(&mut v, &["global", "remotePilotAddress"], json!(address));
        }
        match &c.injection_url {
            Some(url) => set(&mut v, &["istiodRemote", "injectionURL"], json!(url)),
            None => set(
                &mut v,
                &["istiodRemote", "injectionPath"],
                json!(c.injection_path),
            ),
        }
    } else {
        set(&mut v, &["global", "meshID"], json!(c.mesh));
        set(
            &mut v,
            &["global", "multiCluster", "clusterName"],
            json!(c.cluster),
        );
        set(&mut v, &["global", "network"], json!(c.network));
    }
    if let Some(enabled) = c.enable_reader_rbac {
        set(&mut v, &["global", "enableReaderRBAC"], json!(enabled));
    }
    if let Some(url) = &c.validation_url {
        set(&mut v, &["base", "validationURL"], json!(url));
    }
    if !c.remote {
        // EXTERNAL_ISTIOD on a primary that serves remotes comes with the env, as in the
        // operator's multi-network docs; the chart reads `global.externalIstiod` only when the
        // env does not set it (istiod chart `templates/deployment.yaml`), so it is not written.
        if !c.iop_pilot_env.is_empty() {
            set(&mut v, &["pilot", "env"], json!(c.iop_pilot_env));
        }
        if let Some(secret) = &c.kubeconfig_secret {
            set(
                &mut v,
                &["pilot", "volumes"],
                json!([{ "name": "multicluster-kubeconfigs", "secret": { "secretName": secret } }]),
            );
            set(
                &mut v,
                &["pilot", "volumeMounts"],
                json!([{ "name": "multicluster-kubeconfigs", "mountPath": c.kubeconfig_dir, "readOnly": true }]),
            );
        }
        if c.ambient {
            set(
                &mut v,
                &["pilot", "trustedZtunnelNamespace"],
                json!(SAIL_ZTUNNEL_NAMESPACE),
            );
        }
        set(
            &mut v,
            &["meshConfig", "trustDomain"],
            json!(c.trust_domain),
        );
        if !c.trust_domain_aliases.is_empty() {
            set(
                &mut v,
                &["meshConfig", "trustDomainAliases"],
                json!(c.trust_domain_aliases),
            );
        }
        for (key, value) in &c.proxy_metadata {
            set(
                &mut v,
                &["meshConfig", "defaultConfig", "proxyMetadata", key],
                json!(value),
            );
        }
    }
    v
}

/// The name of the `Istio` object (and so of its revision): `default`, or the mesh's revision.
pub fn istio_name(revision: &str) -> &str {
    if revision.is_empty() {
        "default"
    } else {
        revision
    }
}

/// Adds the Sail objects of one cluster, in the order they are applied.
pub fn emit(cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError> {
    let c = cx.common;
    let p = cx.plan;
    let version = sail_version(cx.model.topology.meshes[p.mesh].istio.version.minor());
    let name = istio_name(&c.revision);
    let mut add = |file: &str, what: &str, object: Value, command: String| {
        let rel = format!("install/sail/{file}.yaml");
        let command = command.replace("{rel}", &rel);
        files.data(
            &rel,
            &format!("{command}\n\n{what}"),
            &[object],
            Role::Install {
                installer: Installer::Sail,
                command,
                release: None,
            },
            false,
        )
    };
    if p.cni {
        let mut spec = json!({ "version": version, "namespace": SAIL_CNI_NAMESPACE });
        if c.ambient {
            spec["profile"] = json!("ambient");
        }
        add(
            "istiocni",
            "istio-cni, which OpenShift requires for sidecars and ambient requires everywhere.",
            object("IstioCNI", "default", spec),
            "kubectl apply -f {rel}".to_string(),
        )?;
    }
    if c.ambient {
        // targetRef: the operator copies the Istio's global values, meshConfig and revision
        // into ztunnel's (the ZTunnel CRD's description), so it follows a revisioned istiod.
        let spec = json!({
            "version": version,
            "namespace": SAIL_ZTUNNEL_NAMESPACE,
            "targetRef": { "kind": "Istio", "name": name },
            "values": { "ztunnel": { "multiCluster": { "clusterName": c.cluster }, "network": c.network } },
        });
        add(
            "ztunnel",
            "ztunnel, with the cluster name and network it reports to istiod, following the Istio\nobject's revision and mesh settings.",
            object("ZTunnel", "default", spec),
            "kubectl apply -f {rel}".to_string(),
        )?;
    }
    let mut spec = json!({ "version": version, "namespace": SYSTEM_NAMESPACE });
    if let Some(profile) = c.profile {
        spec["profile"] = json!(profile);
    }
    spec["values"] = Value::Object(istio_values(cx));
    // A remote has no istiod whose readiness to wait for.
    let wait = if c.remote {
        String::new()
    } else {
        format!(" && kubectl wait --for=condition=Ready istios/{name} --timeout=5m")
    };
    add(
        "istio",
        "The control plane: the operator renders Istio's base and istiod charts with these values.",
        object("Istio", name, spec),
        format!("kubectl apply -f {{rel}}{wait}"),
    )?;
    if !c.revision.is_empty() {
        add(
            "istiorevisiontag",
            "Points the `default` tag at this revision, so namespaces labelled\n`istio-injection: enabled` are injected by it.",
            object(
                "IstioRevisionTag",
                "default",
                json!({ "targetRef": { "kind": "Istio", "name": name } }),
            ),
            "kubectl apply -f {rel}".to_string(),
        )?;
    }
    Ok(())
}
