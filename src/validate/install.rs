//! Install: where the charts come from, the Solo license, and what each Istio minor can do.
//!
//! These rules exist because an install can "succeed" and still leave the mesh broken: Solo's
//! peering settings given to upstream's istiod chart are ignored without a word, and a feature
//! that a minor does not have yet is simply absent. Each version-dependent rule names the
//! version it depends on and links the release note or doc it comes from.

use crate::diagnostic::{Code, Reporter};
use crate::istio::{SAIL_PATCHES, sail_version};
use crate::model::Model;
use crate::path;
use crate::topology::{Dataplane, Distribution, GatewayForm, Installer};

/// Istio's release notes, cited by the version-dependent rules.
const NOTES_1_29: &str =
    "https://istio.io/latest/news/releases/1.29.x/announcing-1.29/change-notes/";
/// The Gateway API bundle each Istio minor is built and tested with (`sigs.k8s.io/gateway-api`
/// in istio/istio's go.mod at the release tag).
pub const GATEWAY_API_BUNDLES: &[(u32, &str)] = &[
    (26, "v1.3.0"),
    (27, "v1.3.0"),
    (28, "v1.4.0"),
    (29, "v1.4.0"),
    (30, "v1.5.1"),
    (31, "v1.6.0"),
];

/// The Gateway API bundle an Istio minor is tested with.
pub fn gateway_api_bundle(minor: u32) -> &'static str {
    GATEWAY_API_BUNDLES
        .iter()
        .rev()
        .find(|(m, _)| *m <= minor)
        .map_or("v1.3.0", |(_, b)| b)
}

/// Runs every install rule group.
pub fn run(m: &Model, r: &mut Reporter<'_>) {
    charts_and_license(m, r);
    ambient_maturity(m, r);
    gateway_api_routes(m, r);
    remote_credentials(m, r);
    sail_and_gateway_forms(m, r);
}

/// E084-E088: what the Sail Operator installs, and which east-west gateway form fits a mesh.
///
/// The Sail Operator installs upstream's (or Red Hat's) images from its own copy of Istio's
/// charts: Solo's distribution, its license and `-solo` charts are not among them (E084). Its
/// `Istio` CRD serves a list of versions (`spec.version` enum): meshc pins the newest patch of
/// the mesh's minor, and a minor with no release there yet floats on `vX.Y-latest` (W087).
/// Ambient east-west gateways are Gateway API objects of class `istio-east-west` (or Solo's
/// `istio-eastwest`): there is no chart form for them (E085). A Gateway API east-west gateway
/// exposes istiod through `TLSRoute`s, which istiod reads without the alpha flag from 1.30
/// (istio/istio 1.30.3 `pkg/config/schema/collections/collections.gen.go`,
/// `pilotStableGatewayAPI`; 1.29 needs `PILOT_ENABLE_ALPHA_GATEWAY_API` and `v1alpha2`) (E086).
/// istiod deploys Gateways only in its own cluster (`pilot/pkg/bootstrap/configcontroller.go`,
/// the deployment controller on `s.kubeClient`), so a remote cannot have one (E088).
fn sail_and_gateway_forms(m: &Model, r: &mut Reporter<'_>) {
    let t = &m.topology;
    for (mi, mesh) in t.meshes.iter().enumerate() {
        let Some(si) = mesh
            .istio
            .installers
            .iter()
            .position(|i| *i == Installer::Sail)
        else {
            continue;
        };
        let at = path!("meshes", mi, "istio", "installers", si);
        if mesh.istio.distribution == Distribution::Solo {
            r.report(Code::SailWithSolo, &at, format!("mesh `{}` is on Solo's distribution, which the Sail Operator does not install", mesh.name))
                .label("installs upstream's images")
                .help("install Solo's distribution with `helm` (or Solo's `istioctl`); the Sail Operator (OpenShift Service Mesh 3) renders its own copy of upstream Istio's charts, without Solo's images, license or peering");
        }
        let minor = mesh.istio.version.minor();
        if !SAIL_PATCHES.iter().any(|(m, _)| *m == minor) {
            r.report(Code::SailFloatingVersion, &at, format!("the Sail Operator's CRDs list no release of Istio {}: `spec.version` is `{}`", mesh.istio.version, sail_version(minor)))
                .label("follows the operator's newest patch")
                .help(format!("`{}` follows each patch the operator ships, with no change in Git to review; target a minor the operator releases (pinned: {}) until it lists a 1.{minor} release", sail_version(minor), SAIL_PATCHES.iter().map(|(m, p)| format!("v1.{m}.{p}")).collect::<Vec<_>>().join(", ")));
        }
    }
    for (ci, c) in t.clusters.iter().enumerate() {
        let Some(form) = c.east_west_gateway.as_ref().and_then(|g| g.form) else {
            continue;
        };
        let Some(mi) = m.clusters[ci].mesh else {
            continue;
        };
        let mesh = &t.meshes[mi];
        let at = path!("clusters", ci, "eastWestGateway", "form");
        match form {
            GatewayForm::Chart if mesh.dataplane == Dataplane::Ambient => {
                r.report(Code::ChartGatewayOnAmbient, &at, format!("cluster `{}` is in ambient mesh `{}`, whose east-west gateway is a Gateway API Gateway", c.name, mesh.name))
                    .label("no chart form in ambient")
                    .help("remove `form` (or write `form: gateway-api`): ambient meshes carry HBONE through a Gateway of class `istio-east-west` (Solo: `istio-eastwest`) that istiod deploys; the chart gateway passes sidecars' mTLS on 15443, which ztunnel does not speak");
            }
            GatewayForm::GatewayApi
                if mesh.dataplane == Dataplane::Sidecar && !m.clusters[ci].is_primary =>
            {
                r.report(Code::GatewayApiOnRemote, &at, format!("cluster `{}` is a remote: no istiod runs there to deploy a Gateway API gateway", c.name))
                    .label("nothing deploys it")
                    .help("remove `form` on remotes (the chart gateway, configured by the primary's cross-network Gateway): istiod deploys the Deployment and Service of a Gateway only in the cluster it runs in (istio/istio 1.30.3 pilot/pkg/bootstrap/configcontroller.go), and reads Istio configuration only from its config cluster");
            }
            GatewayForm::GatewayApi if m.serves_remotes(ci) && mesh.istio.version.minor() < 30 => {
                r.report(Code::GatewayApiIstiodExposure, &at, format!("cluster `{}` serves remotes through a Gateway API east-west gateway, but Istio {} reads TLSRoute only as an alpha API", c.name, mesh.istio.version))
                    .label("TLSRoute needs Istio 1.30+")
                    .help("use `form: chart` on this primary, or move the mesh to Istio 1.30 or later: remotes reach istiod through TLSRoutes on 15012/15017, which istiod before 1.30 ignores unless PILOT_ENABLE_ALPHA_GATEWAY_API is set");
            }
            _ => {}
        }
    }
}

/// W082, E083: how primaries get at the clusters they watch, without long-lived tokens.
///
/// istiod refuses a kubeconfig exec plugin unless `PILOT_INSECURE_MULTICLUSTER_KUBECONFIG_OPTIONS`
/// names `exec` (istio/istio 1.30.3 `pkg/kube/util.go` `NewUntrustedRestConfig`,
/// `pilot/pkg/features/pilot.go`); meshc sets it, but istiod runs the command in its own
/// container, whose image has no cloud CLI: W082. `PILOT_MULTICLUSTER_KUBECONFIG_PATH` arrived
/// in 1.30 (`pilot/pkg/features/pilot.go`, absent from 1.29.x) and reads kubeconfig files
/// instead of Secrets, so a token an ExternalSecret resolves has nowhere to go: E083.
fn remote_credentials(m: &Model, r: &mut Reporter<'_>) {
    let t = &m.topology;
    for (ci, c) in t.clusters.iter().enumerate() {
        if let Some(exec) = c.exec_plugin() {
            r.report_key(Code::ExecPluginInIstiod, &path!("clusters", ci, "remoteSecret", "exec"), format!("the primaries watching `{}` run `{}` inside istiod", c.name, exec.command))
                .label("run by istiod, not by you")
                .help(format!("istiod's image carries no cloud CLI: build an istiod image with `{}` on its PATH (or mount it) and give the primaries that identity (IRSA, Workload Identity); meshc sets PILOT_INSECURE_MULTICLUSTER_KUBECONFIG_OPTIONS=exec on them, without which istiod refuses the plugin", exec.command));
        }
    }
    for (mi, mesh) in t.meshes.iter().enumerate() {
        if mesh.istio.kubeconfig_secret.is_none() {
            continue;
        }
        let at = path!("meshes", mi, "istio", "kubeconfigSecret");
        if mesh.istio.version.minor() < 30 {
            r.report_key(Code::KubeconfigSecretUnsupported, &at, format!("mesh `{}` targets Istio {}, whose istiod reads other clusters only from remote secrets", mesh.name, mesh.istio.version))
                .label("needs Istio 1.30")
                .help("PILOT_MULTICLUSTER_KUBECONFIG_PATH arrived in Istio 1.30 (https://istio.io/latest/news/releases/1.30.x/announcing-1.30/change-notes/): set `istio.version` to \"1.30\" or later, or remove `kubeconfigSecret`");
        }
        for &c in &m.meshes[mi].clusters {
            if t.clusters[c]
                .remote_secret
                .as_ref()
                .is_some_and(|s| s.external_secret.is_some())
            {
                let span = r.span(&path!("clusters", c, "remoteSecret", "externalSecret"));
                r.report_key(Code::KubeconfigSecretUnsupported, &at, format!("cluster `{}` takes its token from a secret store, which a kubeconfig file cannot", t.clusters[c].name))
                    .label("kubeconfig files, not remote secrets")
                    .also(span, "token resolved in the cluster")
                    .help("give that cluster `remoteSecret.tokenFile` or `remoteSecret.exec`, or remove `kubeconfigSecret` to keep remote secrets");
            }
        }
    }
}

/// E043, E044, E045, E046: a Solo mesh names its chart repository, an exact `-solo` version
/// and its license; a license belongs to Solo's distribution and comes from one place.
///
/// Upstream's istiod chart ignores `platforms.peering.enabled`, so a Solo mesh installed from
/// upstream's repository installs without any multicluster at all; Solo's charts live in a
/// per-customer OCI repository and need a license.
fn charts_and_license(m: &Model, r: &mut Reporter<'_>) {
    for (mi, mesh) in m.topology.meshes.iter().enumerate() {
        let istio = &mesh.istio;
        let solo = istio.distribution == Distribution::Solo;
        if let Some(charts) = &istio.charts {
            let repo = &charts.repository;
            let valid = (repo.starts_with("oci://") || repo.starts_with("https://"))
                && !repo.ends_with('/')
                && !repo.contains(char::is_whitespace);
            if !valid {
                r.report(Code::InvalidChartRepository, &path!("meshes", mi, "istio", "charts", "repository"), format!("`{repo}` is not a chart repository meshc can name in an install command"))
                    .label("not oci:// or https://")
                    .help("give the repository as `oci://host/path` (each chart is `<repository>/<chart>`) or an `https://` chart repository, without a trailing `/`");
            }
        }
        if solo {
            match &istio.charts {
                None => {
                    r.report_key(Code::SoloWithoutCharts, &path!("meshes", mi, "istio", "distribution"), format!("mesh `{}` is on Solo's distribution but names no chart repository", mesh.name))
                        .label("installed from upstream's charts otherwise")
                        .help("add `istio.charts: {repository: oci://<Solo's repository for your account>, version: <x.y.z>-solo}`: upstream's istiod chart ignores Solo's settings (`platforms.peering`), so the install would succeed without multicluster");
                }
                Some(charts) if charts.version.is_none() => {
                    r.report_key(Code::SoloWithoutCharts, &path!("meshes", mi, "istio", "charts"), format!("mesh `{}` names Solo's chart repository but no chart version", mesh.name))
                        .label("no `version`")
                        .help(format!("add `version: {}.<patch>-solo`: Solo's chart versions carry a `-solo` suffix, which Helm's `~{}.0` constraint never matches", istio.version, istio.version));
                }
                Some(_) => {}
            }
            if istio.license.is_none() {
                r.report_key(Code::SoloWithoutLicense, &path!("meshes", mi, "istio", "distribution"), format!("mesh `{}` is on Solo's distribution but names no license", mesh.name))
                    .label("no `istio.license`")
                    .help("add `istio.license: {secretRef: {name: <secret>, key: <key>}}` (a Secret in istio-system, made out of band) or `{file: <path>}`: Solo's istiod chart needs the license, and meshc never writes it into the output");
            }
        }
        if let Some(license) = &istio.license {
            let at = path!("meshes", mi, "istio", "license");
            if solo {
                match (&license.secret_ref, &license.file) {
                    (Some(_), Some(_)) => {
                        let file = r.span(&path!("meshes", mi, "istio", "license", "file"));
                        r.report_key(Code::LicenseMisplaced, &path!("meshes", mi, "istio", "license", "secretRef"), format!("mesh `{}` gives its license twice", mesh.name))
                            .label("from a Secret")
                            .also(file, "and from a file")
                            .help("keep one: `secretRef` (a Secret in istio-system, read at install time) or `file` (passed with `helm --set-file`)");
                    }
                    (None, None) => {
                        r.report_key(
                            Code::LicenseMisplaced,
                            &at,
                            format!("mesh `{}` has a license with no source", mesh.name),
                        )
                        .label("neither `secretRef` nor `file`")
                        .help("give `secretRef: {name: <secret>, key: <key>}` or `file: <path>`");
                    }
                    _ => {}
                }
            } else {
                r.report_key(Code::LicenseMisplaced, &at, format!("mesh `{}` names a license, but upstream Istio takes none", mesh.name))
                    .label("license on the upstream distribution")
                    .help("remove `istio.license`, or set `distribution: solo` if the mesh runs Solo's build");
            }
        }
    }
}

/// W047, W048: upstream ambient multicluster before 1.29 is alpha, and two clusters on one
/// network are "untested, and may be broken" (Istio's ambient multicluster docs): warnings,
/// since Istio does not refuse them.
fn ambient_maturity(m: &Model, r: &mut Reporter<'_>) {
    let t = &m.topology;
    for (mi, mesh) in t.meshes.iter().enumerate() {
        let info = &m.meshes[mi];
        if mesh.dataplane != Dataplane::Ambient
            || mesh.istio.distribution != Distribution::Upstream
            || info.clusters.len() < 2
            || info.duplicate
        {
            continue;
        }
        let minor = mesh.istio.version.minor();
        if (27..29).contains(&minor) {
            r.report(Code::AmbientMulticlusterAlpha, &path!("meshes", mi, "istio", "version"), format!("ambient multicluster is alpha in Istio {}; mesh `{}` spans {} clusters", mesh.istio.version, mesh.name, info.clusters.len()))
                .label("alpha before 1.29")
                .help(format!("Istio 1.29 promoted multi-network ambient multicluster to beta ({NOTES_1_29}): target \"1.29\" or later for production"));
        }
        let mut seen: Vec<(usize, usize)> = Vec::new();
        for &c in &info.clusters {
            let Some(n) = m.clusters[c].network else {
                continue;
            };
            if let Some(&(_, other)) = seen.iter().find(|(net, _)| *net == n) {
                let span = r.span(&path!("clusters", other, "network"));
                r.report(Code::AmbientSharedNetwork, &path!("clusters", c, "network"), format!("clusters `{}` and `{}` share network `{}` in ambient mesh `{}`", t.clusters[other].name, t.clusters[c].name, t.networks[n].name, mesh.name))
                    .label("second cluster on this network")
                    .also(span, "first cluster on it")
                    .help("Istio's ambient multicluster docs: \"multicluster single-network configurations are untested, and may be broken\"; put each cluster on its own network unless you have tested this one (https://istio.io/latest/docs/ambient/install/multicluster/)");
            } else {
                seen.push((n, c));
            }
        }
    }
}

/// W049: a Gateway API route kind whose served version needs a newer CRD bundle than an
/// Istio minor's predecessors were tested with: `TLSRoute` is read at `v1` from Istio 1.30
/// (Gateway API v1.5.0 made it standard), `TCPRoute` at `v1` from 1.31 (v1.6.0).
fn gateway_api_routes(m: &Model, r: &mut Reporter<'_>) {
    const ROUTES: &[(&str, u32, &str)] = &[("TLSRoute", 30, "v1.5.0"), ("TCPRoute", 31, "v1.6.0")];
    let t = &m.topology;
    for (i, res) in t.istio_config.iter().enumerate() {
        let group = res.api_version.split('/').next().unwrap_or_default();
        if group != "gateway.networking.k8s.io" {
            continue;
        }
        let Some(&(kind, since, bundle)) = ROUTES.iter().find(|(k, _, _)| *k == res.kind) else {
            continue;
        };
        let Some(mi) = m.istio_config[i].mesh else {
            continue;
        };
        let version = t.meshes[mi].istio.version;
        if version.minor() >= since {
            r.report(Code::GatewayApiBundle, &path!("istioConfig", i, "kind"), format!("Istio {version} reads {kind} from the Gateway API bundle {bundle} or later"))
                .label(format!("needs Gateway API CRDs {bundle}+"))
                .help(format!("install the Gateway API CRDs {} (the bundle Istio {version} is tested with) or at least {bundle} in every cluster this resource goes to: with an older bundle Istio 1.{since}+ does not see {kind}s", gateway_api_bundle(version.minor())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::gateway_api_bundle;

    #[test]
    fn every_minor_names_its_bundle() {
        assert_eq!(gateway_api_bundle(26), "v1.3.0");
        assert_eq!(gateway_api_bundle(30), "v1.5.1");
        assert_eq!(gateway_api_bundle(31), "v1.6.0");
    }
}
