//! The inputs a build reads besides the topology and the store: reader tokens and API server
//! CAs, the files `remoteSecret.tokenFile` and `apiServer.caFile` name; and where the install
//! commands take a Solo license from (`istio.license`), which is checked but never read into
//! the output.
//!
//! They are read once, before anything is rendered, so that rendering does no I/O and every
//! unreadable file is reported with the others. A token is never copied into a diagnostic.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::diagnostic::Code;
use crate::istio::{READER_TOKEN_SECRET, SYSTEM_NAMESPACE};
use crate::model::{ClusterId, Model};
use crate::path;
use crate::pki::{Finding, Origin};
use crate::plan::ClusterPlan;

/// How a primary gets a peer's reader token.
#[derive(Clone)]
pub enum Token {
    /// Read from `remoteSecret.tokenFile`.
    Value(String),
    /// Fetched by an ExternalSecret from `remoteSecret.externalSecret`.
    External { store: String, key: String },
    /// No token: istiod runs the kubeconfig exec plugin of `remoteSecret.exec`.
    Exec(crate::topology::ExecPlugin),
    /// Not available: the secret is skipped (W080).
    Missing,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Value(_) => f.write_str("Token::Value(<secret>)"),
            Token::External { store, key } => write!(f, "Token::External({store}, {key})"),
            Token::Exec(plugin) => write!(f, "Token::Exec({})", plugin.command),
            Token::Missing => f.write_str("Token::Missing"),
        }
    }
}

/// Where a mesh's install commands take its Solo license from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenseSource {
    /// A key of a Secret in the system namespace, read by `kubectl` at install time.
    Secret { name: String, key: String },
    /// A file on the installing machine, by a path relative to a cluster's output directory.
    File(String),
}

/// What the build reads from the files the topology names, per cluster.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Per mesh (by index) with `istio.license`.
    pub licenses: BTreeMap<usize, LicenseSource>,
    pub tokens: BTreeMap<ClusterId, Token>,
    /// `apiServer.caFile`, base64 for a kubeconfig's `certificate-authority-data`.
    pub api_server_ca: BTreeMap<ClusterId, String>,
    /// Unreadable files (errors) and skipped remote secrets (warnings).
    pub findings: Vec<Finding>,
}

/// Reads every reader token and API server CA the plan needs. Tokens are never copied into a
/// diagnostic.
///
/// `store` is the PKI store's directory: a token file inside it is refused.
pub fn read_inputs(
    model: &Model,
    plans: &[ClusterPlan],
    base_dir: &Path,
    out: Option<&Path>,
    store: &Path,
) -> Inputs {
    let t = &model.topology;
    let mut inputs = Inputs::default();
    licenses(model, base_dir, out, &mut inputs);
    for p in plans.iter().filter(|p| p.watched) {
        let c = p.cluster;
        let cluster = &t.clusters[c];
        let ca_file = cluster.api_server.as_ref().and_then(|a| a.ca_file.as_ref());
        if ca_file.is_none() && cluster.api_server.is_some() {
            inputs.findings.push(missing_ca(model, p));
        }
        if let Some(ca) = ca_file {
            let file = base_dir.join(ca);
            match std::fs::read_to_string(&file) {
                Ok(text) if text.contains("-----BEGIN CERTIFICATE-----") => {
                    inputs
                        .api_server_ca
                        .insert(c, STANDARD.encode(text.as_bytes()));
                }
                Ok(_) => inputs.findings.push(Finding {
                    code: Code::UnreadablePki,
                    origin: Origin::Topology,
                    file,
                    message: "no PEM certificate in the API server CA file".to_string(),
                    help: "caFile holds the PEM CA bundle that signed the API server's certificate"
                        .to_string(),
                    at: path!("clusters", c, "apiServer", "caFile"),
                }),
                Err(e) => inputs.findings.push(Finding {
                    code: Code::UnreadablePki,
                    origin: Origin::Topology,
                    file,
                    message: format!("cannot be read: {e}"),
                    help: "check the path (relative to the topology file)".to_string(),
                    at: path!("clusters", c, "apiServer", "caFile"),
                }),
            }
        }
        let secret = cluster.remote_secret.as_ref();
        let token = match (
            secret.and_then(|s| s.token_file.as_ref()),
            secret.and_then(|s| s.external_secret.as_ref()),
            secret.and_then(|s| s.exec.as_ref()),
        ) {
            (_, _, Some(plugin)) => Token::Exec(plugin.clone()),
            (_, Some(ext), None) => Token::External {
                store: ext.store.clone(),
                key: ext.key.clone(),
            },
            (Some(file), None, None) => {
                let path = base_dir.join(file);
                match read_token(&path, store) {
                    Ok(Some(token)) => Token::Value(token),
                    Ok(None) => Token::Missing,
                    Err(refusal) => {
                        inputs.findings.push(Finding {
                            code: refusal.code,
                            origin: Origin::Topology,
                            file: path,
                            message: refusal.message,
                            help: refusal.help,
                            at: path!("clusters", c, "remoteSecret", "tokenFile"),
                        });
                        // Refused, not missing: the error says why; W080 would repeat it.
                        inputs.tokens.insert(c, Token::Missing);
                        continue;
                    }
                }
            }
            (None, None, None) => Token::Missing,
        };
        if matches!(token, Token::Missing) {
            inputs.findings.push(missing_token(model, p, base_dir));
        }
        inputs.tokens.insert(c, token);
    }
    inputs
}

/// The longest token accepted. Kubernetes service-account tokens are JWTs of one to two
/// kilobytes; anything near this size is not a bearer token.
const MAX_TOKEN: u64 = 16 * 1024;

/// Why a token file was refused. Never carries the file's content.
struct Refusal {
    code: Code,
    message: String,
    help: String,
}

/// A reader token from `path`: `Ok(None)` when the file is missing or empty (the token only
/// exists once `reader-token.yaml` is applied, W080). The bytes end up in a committed remote
/// secret, so anything that is not shaped like a bearer token (a JWT, or at least one short
/// line of printable ASCII) is refused, above all key material: a PEM block, or any file of
/// the PKI store. The content is never echoed.
fn read_token(path: &Path, store: &Path) -> Result<Option<String>, Refusal> {
    let refuse = |what: &str| Refusal {
        code: Code::NotAToken,
        message: format!("the reader token file {what}"),
        help: format!(
            "tokenFile names a file holding only the reader service account's token (a JWT): `kubectl -n {SYSTEM_NAMESPACE} get secret {READER_TOKEN_SECRET} -o jsonpath='{{.data.token}}' | base64 -d > FILE`"
        ),
    };
    let unreadable = |e: &std::io::Error| Refusal {
        code: Code::UnreadablePki,
        message: format!("the reader token file cannot be read: {e}"),
        help: "check the path (relative to the topology file) and its permissions".to_string(),
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(&e)),
    };
    if !meta.is_file() {
        return Err(refuse("is not a regular file"));
    }
    if inside(path, store) {
        return Err(refuse("is a file of the PKI store"));
    }
    if meta.len() > MAX_TOKEN {
        return Err(refuse(&format!(
            "is {} bytes long; a token is at most {MAX_TOKEN}",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| unreadable(&e))?;
    let text = bytes.trim_ascii();
    if text.is_empty() {
        return Ok(None);
    }
    if contains(text, b"-----BEGIN") || contains(text, b"PRIVATE KEY") {
        return Err(refuse(
            "holds a PEM block (a certificate or a key), not a token",
        ));
    }
    if !text.iter().all(u8::is_ascii_graphic) {
        return Err(refuse(
            "holds more than one line of printable text (binary data, spaces or several lines), not a token",
        ));
    }
    if looks_like_key(text) {
        return Err(refuse("holds base64 key material, not a token"));
    }
    Ok(Some(String::from_utf8_lossy(text).into_owned()))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether `text` is plain base64 of a DER private key (a PEM body without its armour): a
/// DER SEQUENCE (`MI...` in base64) with no `.` separators, which a JWT always has.
fn looks_like_key(text: &[u8]) -> bool {
    !text.contains(&b'.')
        && text.len() > 100
        && text.starts_with(b"MI")
        && STANDARD.decode(text).is_ok()
}

/// Whether `path` is `dir` or inside it, comparing canonical paths (symbolic links followed).
fn inside(path: &Path, dir: &Path) -> bool {
    match (std::fs::canonicalize(path), std::fs::canonicalize(dir)) {
        (Ok(path), Ok(dir)) => path.starts_with(dir),
        _ => false,
    }
}

/// Each mesh's license source. A license file must exist and hold something, but its content
/// stays out of the build: the install command passes the file itself.
fn licenses(model: &Model, base_dir: &Path, out: Option<&Path>, inputs: &mut Inputs) {
    for (mi, mesh) in model.topology.meshes.iter().enumerate() {
        let Some(license) = &mesh.istio.license else {
            continue;
        };
        let source = match (&license.secret_ref, &license.file) {
            (Some(r), _) => LicenseSource::Secret {
                name: r.name.clone(),
                key: r.key.clone(),
            },
            (None, Some(file)) => {
                let path = base_dir.join(file);
                let problem = match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() && m.len() > 0 => None,
                    Ok(_) => Some("is empty or not a file".to_string()),
                    Err(e) => Some(format!("cannot be read: {e}")),
                };
                if let Some(problem) = problem {
                    inputs.findings.push(Finding {
                        code: Code::UnreadablePki,
                        origin: Origin::Topology,
                        file: path.clone(),
                        message: format!("the license file {problem}"),
                        help: "put the Solo license key in the file (relative to the topology file), or use `secretRef`".to_string(),
                        at: path!("meshes", mi, "istio", "license", "file"),
                    });
                }
                LicenseSource::File(from_cluster_dir(&path, out, file))
            }
            (None, None) => continue,
        };
        inputs.licenses.insert(mi, source);
    }
}

/// `file` (at `path`) as a cluster's install commands name it: relative to `<out>/<cluster>/`,
/// where they are run. Without an output directory, or where no relative path exists (another
/// drive, say), the path as the topology gives it.
fn from_cluster_dir(path: &Path, out: Option<&Path>, as_given: &str) -> String {
    let relative = out.and_then(|out| {
        let from = std::path::absolute(out.join("cluster")).ok()?;
        let to = std::path::absolute(path).ok()?;
        relative_path(&to, &from)
    });
    relative.unwrap_or_else(|| as_given.to_string())
}

/// The path from directory `from` to `to`, both absolute, lexically (`..` components of the
/// inputs are resolved first).
fn relative_path(to: &Path, from: &Path) -> Option<String> {
    use std::path::Component;
    let normal = |p: &Path| -> Option<Vec<std::ffi::OsString>> {
        let mut parts = Vec::new();
        for c in p.components() {
            match c {
                Component::RootDir | Component::CurDir => {}
                Component::Prefix(_) => return None,
                Component::ParentDir => {
                    parts.pop();
                }
                Component::Normal(n) => parts.push(n.to_os_string()),
            }
        }
        Some(parts)
    };
    let (to, from) = (normal(to)?, normal(from)?);
    let common = to.iter().zip(&from).take_while(|(a, b)| a == b).count();
    let mut rel: Vec<String> = vec!["..".to_string(); from.len() - common];
    rel.extend(
        to[common..]
            .iter()
            .map(|p| p.to_string_lossy().into_owned()),
    );
    Some(rel.join("/"))
}

/// How many cluster names a message lists before it counts the rest: a warning about one
/// cluster of a 200-cluster mesh must not name the 199 others.
const SHOWN_NAMES: usize = 3;

/// `names` joined, the first few of them when there are many: `a, b, c and 7 more`.
pub fn few(names: &[&str]) -> String {
    if names.len() <= SHOWN_NAMES + 1 {
        return names.join(", ");
    }
    format!(
        "{} and {} more",
        names[..SHOWN_NAMES].join(", "),
        names.len() - SHOWN_NAMES
    )
}

/// The names of the primaries that discover the planned cluster.
pub fn watcher_names<'m>(model: &'m Model, p: &ClusterPlan) -> Vec<&'m str> {
    p.watchers
        .iter()
        .map(|&w| model.topology.clusters[w].name.as_str())
        .collect()
}

/// W081: the kubeconfig in `c`'s remote secrets can only trust the system's roots, which a
/// cluster's API server certificate is almost never issued by.
fn missing_ca(model: &Model, p: &ClusterPlan) -> Finding {
    let c = p.cluster;
    let t = &model.topology;
    let name = &t.clusters[c].name;
    let watchers = watcher_names(model, p);
    // Where the kubeconfig lives: a remote secret, or a file of `istio.kubeconfigSecret`.
    let holder = match &t.meshes[p.mesh].istio.kubeconfig_secret {
        Some(secret) => format!("{secret}/{name}.yaml"),
        None => format!("istio-remote-secret-{name}"),
    };
    Finding {
        code: Code::RemoteSecretWithoutCa,
        origin: Origin::Topology,
        file: std::path::PathBuf::new(),
        message: format!(
            "no CA for {name}'s API server: the kubeconfig in {holder} (on {}) trusts only the system's root CAs",
            few(&watchers)
        ),
        help: format!(
            "set apiServer.caFile to the cluster's CA, e.g. after applying reader-token.yaml to {name}: `kubectl --context {name} -n {SYSTEM_NAMESPACE} get secret {READER_TOKEN_SECRET} -o jsonpath='{{.data.ca\\.crt}}' | base64 -d > secrets/{name}-ca.crt`"
        ),
        at: path!("clusters", c, "apiServer"),
    }
}

/// W080: the remote secrets for `c` are skipped; say how to supply the token, or what
/// `istioctl` would do instead.
fn missing_token(model: &Model, p: &ClusterPlan, base_dir: &Path) -> Finding {
    let c = p.cluster;
    let t = &model.topology;
    let cluster = &t.clusters[c];
    let name = &cluster.name;
    let watchers = watcher_names(model, p);
    let file = cluster
        .remote_secret
        .as_ref()
        .and_then(|s| s.token_file.clone());
    let server = cluster
        .api_server
        .as_ref()
        .map_or("<API server URL>", |a| a.url.as_str());
    let fetch = format!(
        "kubectl --context {name} -n {SYSTEM_NAMESPACE} get secret {READER_TOKEN_SECRET} -o jsonpath='{{.data.token}}' | base64 -d > {}",
        file.as_deref().unwrap_or("secrets/TOKEN")
    );
    // One command per watcher, up to a few: the rest are the same with another context.
    let istioctl: Vec<String> = watchers
        .iter()
        .take(SHOWN_NAMES)
        .map(|w| {
            format!(
                "istioctl create-remote-secret --context {name} --name {name} --server {server} | kubectl --context {w} apply -f -"
            )
        })
        .collect();
    let more = if watchers.len() > SHOWN_NAMES {
        format!(
            "; the same for the {} other primaries",
            watchers.len() - SHOWN_NAMES
        )
    } else {
        String::new()
    };
    let (message, help) = match &file {
        Some(f) => (
            format!(
                "the reader token file {f} is missing or empty: istio-remote-secret-{name} is not written to {}",
                few(&watchers)
            ),
            format!(
                "after applying reader-token.yaml to {name}: `{fetch}`, then rebuild; or instead: `{}",
                istioctl.join("`; `") + "`" + &more
            ),
        ),
        None => (
            format!(
                "no reader token for {name} (remoteSecret): istio-remote-secret-{name} is not written to {}",
                few(&watchers)
            ),
            format!(
                "set remoteSecret.tokenFile (after applying reader-token.yaml to {name}: `{fetch}`) or remoteSecret.externalSecret; or instead: `{}",
                istioctl.join("`; `") + "`" + &more
            ),
        ),
    };
    Finding {
        code: Code::RemoteSecretSkipped,
        origin: Origin::Topology,
        file: file.map_or_else(std::path::PathBuf::new, |f| base_dir.join(f)),
        message,
        help,
        at: if cluster.remote_secret.is_some() {
            path!("clusters", c, "remoteSecret")
        } else {
            path!("clusters", c, "name")
        },
    }
}

#[cfg(test)]
mod tests {
    use super::relative_path;
    use std::path::Path;

    #[test]
    fn a_file_beside_the_output_is_named_from_a_cluster_directory() {
        let rel = |to: &str, from: &str| relative_path(Path::new(to), Path::new(from));
        assert_eq!(
            rel("/repo/secrets/solo.txt", "/repo/out/cluster").as_deref(),
            Some("../../secrets/solo.txt")
        );
        assert_eq!(
            rel("/repo/./x/../secrets/l", "/repo/out/c").as_deref(),
            Some("../../secrets/l")
        );
        assert_eq!(rel("/a/b", "/c/d").as_deref(), Some("../../a/b"));
    }
}
