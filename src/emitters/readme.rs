//! `README.md`: the cluster's install order in commands, from what the other emitters
//! produced: the CA first, the installer commands in order, then `kubectl apply -k`.

use std::sync::Arc;

use serde::Serialize;

use super::install::display;
use super::kustomization::resources;
use super::{ClusterCx, ClusterEmitter, Files, Produced, Role, With};
use crate::inputs::Token;
use crate::istio::external_key;
use crate::render::RenderError;
use crate::topology::{Installer, SecretsMode};

#[derive(Debug)]
pub struct Readme;

#[derive(Serialize)]
struct Cx<'a> {
    role: String,
    helm: bool,
    install_commands: Vec<String>,
    resources: Vec<&'a str>,
    notes: Vec<String>,
    gateway_api: bool,
}

/// The install commands in order; a second installer is offered as an alternative.
fn commands(files: &Files) -> Vec<String> {
    let mut commands = Vec::new();
    let mut first: Option<Installer> = None;
    let mut current: Option<Installer> = None;
    for f in &files.produced {
        let Role::Install { installer, command } = &f.role else {
            continue;
        };
        match first {
            None => first = Some(*installer),
            Some(first) if current != Some(*installer) => commands.push(format!(
                "# or, with {} instead of {}:",
                display(*installer),
                display(first)
            )),
            Some(_) => {}
        }
        current = Some(*installer);
        commands.push(command.clone());
    }
    commands
}

impl ClusterEmitter for Readme {
    fn emit(&self, cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError> {
        let t = &cx.model.topology;
        let p = cx.plan;
        let role = match (p.primary, p.serves_remotes, p.served_by) {
            (true, true, _) => "primary, serving remotes through its east-west gateway".to_string(),
            (true, false, _) => "primary".to_string(),
            (false, _, Some(s)) => format!("remote, served by `{}`", t.clusters[s].name),
            (false, _, None) => "remote".to_string(),
        };
        let mut notes = Vec::new();
        for &peer in &p.peers {
            if matches!(cx.inputs.tokens.get(&peer), None | Some(Token::Missing)) {
                notes.push(format!(
                    "`istio-remote-secret-{0}` is not included: no reader token for `{0}` (see the build's warning W080).",
                    t.clusters[peer].name
                ));
            }
        }
        if t.meshes[p.mesh].ca.secrets == SecretsMode::External {
            notes.push(format!(
                "`cacerts` comes from the secret store: upload this cluster's CA material under `{}` first.",
                external_key(&t.clusters[p.cluster].name)
            ));
        }
        let extra = Cx {
            role,
            helm: p.installers.contains(&Installer::Helm),
            install_commands: commands(files),
            resources: resources(files),
            notes,
            gateway_api: files.produced.iter().any(|f| f.gateway_api),
        };
        let text = cx.renderer.text(
            "README.md.j2",
            &With {
                common: cx.common,
                extra,
            },
        )?;
        files.add(Produced {
            rel: "README.md".to_string(),
            bytes: Arc::from(text.into_bytes()),
            private: false,
            role: Role::Text,
            gateway_api: false,
        })
    }
}
