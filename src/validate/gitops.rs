//! GitOps: what Argo CD and Flux need to apply the output as it is written.
//!
//! A GitOps controller applies what the repository holds, with no one to run a command in
//! between: an installer it cannot run (istioctl), a cluster it cannot reach (no destination),
//! or a license it cannot read leaves a mesh half installed with every object "synced".

use crate::diagnostic::{Code, Reporter};
use crate::model::Model;
use crate::path;
use crate::topology::Installer;

/// Runs the GitOps rules (nothing without a `gitops:` section).
pub fn run(m: &Model, r: &mut Reporter<'_>) {
    let t = &m.topology;
    let Some(g) = &t.gitops else {
        return;
    };
    if g.argocd.is_none() && g.flux.is_none() {
        r.report(Code::GitopsWithoutController, &path!("gitops"), "`gitops` names no controller: nothing is written for it")
            .label("neither argocd nor flux")
            .help("add `argocd: {}` (ApplicationSets in out/argocd/) and/or `flux: {}` (Flux objects in out/flux/), or remove `gitops`");
    }
    let url = g.repository.as_str();
    let git_url = ["https://", "http://", "ssh://", "git@", "file://"]
        .iter()
        .any(|p| url.starts_with(p) && url.len() > p.len())
        && !url.chars().any(char::is_whitespace);
    if !git_url {
        r.report(Code::GitopsBadLocation, &path!("gitops", "repository"), format!("`{url}` is not a Git repository URL"))
            .label("not a Git URL")
            .help("give the URL the controllers clone: `https://git.example.com/org/repo.git`, `ssh://git@host/org/repo.git` or `git@host:org/repo.git`");
    }
    let p = g.path.trim_end_matches('/');
    if p.is_empty() || p.starts_with('/') || p.split('/').any(|s| s == ".." || s.is_empty()) {
        r.report(Code::GitopsBadLocation, &path!("gitops", "path"), format!("`{p}` is not a path inside the repository"))
            .label("relative, without `..`")
            .help("the directory `meshc build -o` writes, relative to the repository's root, e.g. `out` or `clusters/prod/out`");
    }
    for (mi, mesh) in t.meshes.iter().enumerate() {
        let installers = &mesh.istio.installers;
        if !installers.is_empty() && installers.iter().all(|i| *i == Installer::Istioctl) {
            r.report(Code::GitopsInstaller, &path!("meshes", mi, "istio", "installers"), format!("mesh `{}` is installed only with istioctl, which no GitOps controller runs", mesh.name))
                .label("istioctl only")
                .help("add `helm` to `installers` (Argo CD and Flux install Istio's charts with the same values), or `sail` on OpenShift");
        }
        if let Some(license) = &mesh.istio.license {
            let at = path!("meshes", mi, "istio", "license");
            if license.file.is_some() {
                r.report(Code::GitopsLicense, &at, format!("mesh `{}` takes Solo's license from a file, which is not in the repository the controllers read", mesh.name))
                    .label("stays on the installing machine")
                    .help("use `secretRef`: Flux reads it with `valuesFrom` from a Secret in its namespace; with Argo CD, create the Secret in each cluster and set istiod's `license.value` from it (argocd-vault-plugin or a values file in a private repository)");
            } else if g.argocd.is_some() {
                r.report(Code::GitopsLicense, &at, format!("Argo CD cannot read mesh `{}`'s license Secret into istiod's values", mesh.name))
                    .label("not passed by Argo CD")
                    .help("Argo CD's Helm sources take values from files and literals only: set `license.value` from the Secret with a plugin (argocd-vault-plugin) or a values file kept in a private repository; Flux passes it with `valuesFrom`");
            }
        }
    }
    for (ci, c) in t.clusters.iter().enumerate() {
        let dest = c.gitops.as_ref().and_then(|x| x.argocd.as_ref());
        if g.argocd.is_none() {
            continue;
        }
        let (server, name) = (
            dest.and_then(|d| d.server.as_ref()),
            dest.and_then(|d| d.name.as_ref()),
        );
        if server.is_some() && name.is_some() {
            r.report(Code::GitopsDestination, &path!("clusters", ci, "gitops", "argocd"), format!("cluster `{}` sets both `server` and `name`", c.name))
                .label("one destination")
                .help("give exactly one of `server` (the API server URL as registered in Argo CD; default `apiServer.url`) and `name` (the name it is registered under; default the cluster's name when it has no `apiServer`)");
        }
    }
}
