//! Diagnostics: stable codes, spans, help, and their two renderings (human and JSON).
//!
//! Every problem meshc finds in a topology becomes a [`Diagnostic`] carrying a stable
//! [`Code`], a message, a `help:` line and one or more labelled spans into the source. The
//! codes are a public contract (scripts match on them, docs/rules.md lists them), so a code is
//! never reused for a different problem. Human output is rendered by miette (underlined
//! source, colours on a terminal, `NO_COLOR` honoured); JSON output is written here so that
//! it carries exactly the fields the CLI contract names.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    SourceCode, SourceSpan, SpanContents,
};
use serde::Serialize;

use crate::source::Source;
use crate::span::{Locate, Path, Span};

/// How bad a diagnostic is. Errors stop a build; warnings do not, unless `--deny-warnings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

macro_rules! codes {
    ($( $variant:ident = $code:literal, $title:literal; )*) => {
        /// Every diagnostic meshc can emit. The string form (`E012`) is stable.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $( $variant, )* }

        impl Code {
            /// Every code, in order (for the rules reference and its tests).
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// The stable code, e.g. `E012`.
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $code, )* }
            }

            /// A one-line title, as listed in the rules reference.
            pub fn title(self) -> &'static str {
                match self { $( Code::$variant => $title, )* }
            }
        }
    };
}

codes! {
    // The file itself.
    YamlSyntax = "E001", "YAML syntax error (or a file that is not UTF-8)";
    DuplicateKey = "E002", "a key repeated in one mapping";
    InputLimit = "E003", "input beyond meshc's limits (file over 4 MiB, alias bomb, runaway nesting)";
    EmptyTopology = "E004", "an empty topology file";
    UnknownField = "E005", "a field the topology format does not have";
    InvalidValue = "E006", "a value of the wrong type or outside the allowed values";
    MissingField = "E007", "a required field is missing";
    // Names and references.
    InvalidName = "E010", "a name that is not a DNS-1123 label";
    DuplicateName = "E011", "a name declared twice where it must be unique";
    UnknownReference = "E012", "a reference to a mesh, network, cluster or port that does not exist";
    CrossMeshReference = "E013", "a reference that crosses from one mesh into another";
    AmbiguousMesh = "E014", "an object whose mesh cannot be told (several meshes, no `mesh:`)";
    UnknownLocality = "E015", "a cluster region or zone missing from the locality catalogue";
    RemoteWithoutPrimary = "E016", "a remote cluster without `primary:`";
    PrimaryNotPrimary = "E017", "`primary:` names a cluster that is not a primary of the same mesh";
    PrimaryWithPrimary = "E018", "a primary cluster with `primary:` set";
    MeshWithoutPrimary = "E019", "a mesh with no primary cluster";
    DuplicateClusterName = "E020", "two clusters with the same name (Istio clusterName)";
    NetworkAcrossMeshes = "E021", "a network used by clusters of two meshes";
    ExternalStoreMissing = "E022", "`ca.secrets: external` without `ca.externalStore`";
    RemoteSecretConflict = "E023", "`remoteSecret` with more than one of `tokenFile`, `externalSecret` and `exec`";
    UnusedNetwork = "W024", "a network that no cluster uses";
    NotIstioResource = "E025", "an `istioConfig` entry that is not an Istio resource kind and version";
    // Services.
    GlobalOnlyNotSolo = "E026", "`global: global-only` on a service outside a solo ambient mesh";
    SoloTrafficDistribution = "E027", "a `trafficDistribution` only the solo distribution understands, on another distribution";
    // Solo peering.
    PeerWithoutGatewayAddress = "E028", "a primary of a solo ambient mesh that its peers cannot link to: no `eastWestGateway.address`";
    PrimariesShareNetwork = "E029", "two primaries of a solo ambient mesh on one network";
    // Networking.
    RemotePrimaryWithoutGateway = "E030", "a remote whose primary has no `eastWestGateway.address`";
    AmbientTopologyUnsupported = "E031", "upstream ambient multicluster with a remote cluster (only multi-primary is supported)";
    AmbientVersionTooOld = "E032", "upstream ambient multicluster with Istio older than 1.27";
    EastWestL7Hint = "W033", "an east-west gateway annotation that terminates TLS or speaks L7";
    LoopbackApiServer = "E034", "an `apiServer.url` on loopback";
    InvalidApiServerUrl = "E035", "an `apiServer.url` that is not an https:// URL";
    ApiServerMissing = "E036", "a cluster that a primary must watch has no `apiServer.url`";
    ServiceNotEverywhere = "W037", "services deployed in some clusters only, resolvable everywhere";
    InvalidAddress = "E038", "an `eastWestGateway.address` that is neither an IP nor a DNS name";
    TooManyGatewayAnnotations = "E039", "more than 8 annotations on an ambient east-west gateway";
    // Trust.
    TrustDomainMismatch = "W040", "clusters of one upstream mesh with different trust domains";
    IstioctlPeering = "W041", "the `istioctl` installer for a solo ambient mesh that peers: only Solo's istioctl accepts it";
    // Services with `callers`.
    RuleWithoutCallers = "W042", "a DestinationRule on a config cluster that serves no cluster running or calling its service";
    // Install: charts, license, versions.
    SoloWithoutCharts = "E043", "a solo mesh without `istio.charts` (Solo's repository and exact `-solo` version)";
    SoloWithoutLicense = "E044", "a solo mesh without `istio.license`";
    LicenseMisplaced = "E045", "`istio.license` on the upstream distribution, or without exactly one of `secretRef` and `file`";
    InvalidChartRepository = "E046", "an `istio.charts.repository` that is not an `oci://` or `https://` repository";
    AmbientSharedNetwork = "W047", "two clusters on one network in an upstream ambient mesh (untested upstream)";
    AmbientMulticlusterAlpha = "W048", "upstream ambient multicluster on Istio 1.27 or 1.28, where it is alpha";
    GatewayApiBundle = "W049", "a Gateway API route kind that needs a newer Gateway API CRD bundle on this Istio version";
    // DestinationRules.
    DistributeAndFailover = "E050", "`distribute` and `failover` both set";
    FailoverWithTopologyPriority = "E051", "`failover` with a region/zone/subzone label in `failoverPriority`";
    WeightOutOfRange = "E052", "a `distribute` weight outside 1..100";
    WeightSum = "E053", "the weights of one `distribute` entry do not sum to 100";
    FailoverNotRegion = "E054", "a `failover` locality that is a zone or has a `*`";
    FailoverSameRegion = "E055", "a `failover` entry with `from` equal to `to`";
    FailoverUnknownRegion = "E056", "a `failover` region missing from the locality catalogue";
    LocalityWildcard = "E057", "a locality with more than one `*`, or a `*` not at the end";
    LocalityEmptySegment = "E058", "a locality with an empty region, zone or subzone";
    LocalityOverlap = "E059", "locality entries that overlap in one list";
    LocalityNoMatch = "E060", "a locality pattern that matches no locality of the catalogue";
    FailoverWithoutOutlierDetection = "E061", "locality failover without `outlierDetection` at the same level";
    OutlierDetectionEnablesFailover = "W062", "`outlierDetection` without an explicit `localityLbSetting`";
    DistributeToEmptyLocality = "W063", "a `distribute.to` locality where the service runs in no cluster";
    UnknownHost = "E064", "a `host` that names no service and is not a FQDN or wildcard";
    InvalidSubset = "E065", "a subset name that is not a DNS-1123 label, or repeats";
    PlacementOnRemote = "E066", "a placement that names a remote cluster";
    InvalidHost = "E067", "a `host` that is not a valid DNS name or wildcard";
    AmbiguousHost = "E068", "a short `host` that names services in several namespaces";
    EmptyTrafficPolicy = "E069", "a traffic policy with no field set";
    // The PKI store and bring-your-own roots (read at build time).
    NotACa = "E070", "a root or intermediate that is not a CA certificate";
    KeyMismatch = "E071", "a private key that does not match its certificate";
    ChainBroken = "E072", "a certificate that does not chain to the mesh root";
    CertificateExpired = "E073", "a certificate that has expired (or is not valid yet)";
    CertificateExpiring = "W074", "a certificate that expires within 30 days";
    UnreadablePki = "E075", "a certificate or key file that cannot be read, parsed or used";
    KeyPermissions = "E076", "a private key readable by other users";
    IncompleteStore = "E077", "a PKI store entry with a part missing or inconsistent";
    AlgorithmDiffers = "W078", "stored key material of another algorithm than `ca.keyAlgorithm`";
    SubjectNotReproducible = "E079", "a bring-your-own CA whose subject meshc cannot write as an issuer";
    // Build inputs.
    RemoteSecretSkipped = "W080", "a remote secret skipped: no reader token for the watched cluster";
    RemoteSecretWithoutCa = "W081", "a watched cluster without `apiServer.caFile`";
    ExecPluginInIstiod = "W082", "a remote secret with an exec plugin, which istiod's own image must carry";
    KubeconfigSecretUnsupported = "E083", "`istio.kubeconfigSecret` before Istio 1.30, or with a peer whose token comes from `externalSecret`";
    // Installers and east-west gateway forms.
    SailWithSolo = "E084", "the `sail` installer on Solo's distribution";
    ChartGatewayOnAmbient = "E085", "`eastWestGateway.form: chart` on an ambient mesh";
    GatewayApiIstiodExposure = "E086", "`eastWestGateway.form: gateway-api` on a primary serving remotes before Istio 1.30";
    SailFloatingVersion = "W087", "the `sail` installer on an Istio minor the Sail Operator has no release of";
    GatewayApiOnRemote = "E088", "`eastWestGateway.form: gateway-api` on a remote cluster, where no istiod deploys it";
    // Files the topology names, read as an adversary could set them.
    NotAToken = "E110", "a `remoteSecret.tokenFile` that holds no bearer token (a PEM block, key material, a PKI store file, binary or multi-line content)";
    // GitOps (`gitops:`).
    GitopsWithoutController = "E130", "a `gitops` section that names neither `argocd` nor `flux`";
    GitopsBadLocation = "E131", "a `gitops.repository` that is not a Git URL, or a `gitops.path` outside the repository";
    GitopsInstaller = "E132", "a mesh installed only with istioctl under `gitops`";
    GitopsDestination = "E133", "a cluster with both an Argo CD `server` and `name`";
    GitopsLicense = "W134", "a Solo license the GitOps controller cannot pass to istiod";
    // Istio's CRD schemas (`--istio-crds`).
    CrdUnknownField = "E090", "a field the resource's CRD schema does not have (`--istio-crds`)";
    CrdInvalidValue = "E091", "a value the resource's CRD schema refuses, or a required field missing (`--istio-crds`)";
    CrdNotServed = "E092", "a kind or version the loaded CRDs do not serve (`--istio-crds`)";
    // Where requests go (`meshc explain`, and what validation learns from the same computation).
    ExplainUnknownService = "E100", "`meshc explain --service` names no service of the topology";
    ExplainUnknownSource = "E101", "`meshc explain --from` names no cluster, or a zone the cluster is not in";
    ExplainUnknownArgument = "E102", "`meshc explain --port`, `--subset` or `--down` names nothing the service, its DestinationRule or the topology has";
    ServiceUnreachable = "W103", "a service with no endpoint reachable from a cluster that calls it";
    DistributeUnreachable = "W104", "a `distribute.to` locality whose endpoints the clients in `from` cannot reach";
    FailoverTargetEmpty = "W105", "a `failover` target region with no endpoint of the service that its clients can reach";
    // Root rotation (`meshc pki rotate-root`; found in the PKI store and the output tree).
    RootRotationUnsupported = "E120", "a root rotation the mesh cannot take: a bring-your-own root, `ca.secrets: external`, or Istio before 1.20";
    RotationOnAmbient = "W121", "a root rotation on an ambient mesh, where ztunnel's multi-root support is not documented as zero-downtime";
    MultirootMissing = "E122", "switching signers while a primary's committed istiod values lack `ISTIO_MULTIROOT_MESH=true`";
    RotationDamaged = "E123", "a root-rotation record in the PKI store that cannot be read or does not match the store";
    RotationNewCluster = "E124", "a cluster that joined a mesh after its root rotation switched signers";
    RotationForced = "W125", "a root rotation advanced with `--force` before one workload-certificate lifetime passed";
    RotationStale = "E126", "`--advance` while the output tree does not hold the current phase";
    RotationWait = "E127", "`--advance` to the last phase before one workload-certificate lifetime (24 h) passed";
    RotationState = "E128", "a root-rotation step that does not follow from the mesh's state (none in progress, one already started, abort after phase 1)";
}

impl Code {
    /// Whether the code is found when files the topology names or the PKI store holds are
    /// read (key material, reader tokens), rather than from the topology alone.
    pub fn from_files(self) -> bool {
        matches!(
            self,
            Code::NotACa
                | Code::KeyMismatch
                | Code::ChainBroken
                | Code::CertificateExpired
                | Code::CertificateExpiring
                | Code::UnreadablePki
                | Code::KeyPermissions
                | Code::IncompleteStore
                | Code::AlgorithmDiffers
                | Code::SubjectNotReproducible
                | Code::RemoteSecretSkipped
                | Code::RemoteSecretWithoutCa
                | Code::NotAToken
                | Code::RootRotationUnsupported
                | Code::RotationOnAmbient
                | Code::MultirootMissing
                | Code::RotationDamaged
                | Code::RotationNewCluster
                | Code::RotationForced
                | Code::RotationStale
                | Code::RotationWait
                | Code::RotationState
        )
    }

    /// Whether the code is about `meshc explain`'s arguments rather than the topology (its
    /// scenarios are in `tests/explain.rs`, not in `tests/rules/`).
    pub fn from_query(self) -> bool {
        matches!(
            self,
            Code::ExplainUnknownService | Code::ExplainUnknownSource | Code::ExplainUnknownArgument
        )
    }

    /// The default severity, read from the code's letter.
    pub fn severity(self) -> Severity {
        if self.as_str().starts_with('W') {
            Severity::Warning
        } else {
            Severity::Error
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A labelled span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub text: String,
}

/// One problem, with everything needed to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub help: Option<String>,
    /// The first label is the primary location; the rest are related places.
    pub labels: Vec<Label>,
    /// The JSON pointer of the offending value, where there is one.
    pub path: Option<String>,
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            help: None,
            labels: Vec::new(),
            path: None,
        }
    }

    /// An error (the code decides the severity; this name reads better at call sites).
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Self::new(code, message)
    }

    #[must_use]
    pub fn at(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            text: text.into(),
        });
        self
    }

    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub fn primary_span(&self) -> Option<Span> {
        self.labels.first().map(|l| l.span)
    }

    /// The 1-based line and column of the primary span.
    pub fn line_col(&self, source: &Source) -> (usize, usize) {
        self.primary_span()
            .map_or((1, 1), |s| source.line_col(s.offset))
    }
}

/// Orders diagnostics by position, then code, so output is stable whatever order the rules ran.
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        let pa = a.primary_span().map(|s| (s.offset, s.len));
        let pb = b.primary_span().map(|s| (s.offset, s.len));
        pa.cmp(&pb)
            .then(a.code.cmp(&b.code))
            .then(a.message.cmp(&b.message))
    });
}

/// Counts of errors and warnings, for the closing summary line.
pub fn counts(diags: &[Diagnostic]) -> (usize, usize) {
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    (errors, diags.len() - errors)
}

/// Whether human output gets colours: only on a terminal, and never with `NO_COLOR` set.
pub fn use_color(stream_is_terminal: bool) -> bool {
    stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Renders diagnostics for people: miette's graphical report, one after another.
pub fn render_human(diags: &[Diagnostic], source: &Source, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_context_lines(1)
        .with_width(100)
        // Messages name files and commands: a line break inside one would break copy and grep.
        .with_wrap_lines(false);
    let named = Positions {
        source,
        shift: 0,
        header: None,
    };
    let mut out = String::new();
    // The same warning repeated (one per cluster of a 200-cluster mesh) is shown a few times
    // in full, then counted: the JSON output keeps every one. Errors are all shown.
    let mut shown: std::collections::HashMap<Code, usize> = std::collections::HashMap::new();
    let mut held: std::collections::BTreeMap<Code, Vec<usize>> = std::collections::BTreeMap::new();
    for d in diags {
        let n = shown.entry(d.code).or_default();
        *n += 1;
        if d.severity == Severity::Warning && *n > SHOWN_PER_CODE {
            let line = d
                .labels
                .first()
                .map_or(0, |l| source.line_col(l.span.offset).0);
            held.entry(d.code).or_default().push(line);
            continue;
        }
        let cut = excerpt(d, source);
        let cut_positions = cut.as_ref().map(|(text, _, shift, header)| Positions {
            source: text,
            shift: *shift,
            header: Some(*header),
        });
        let (diag, source_view) = match (&cut, &cut_positions) {
            (Some((_, shown, _, _)), Some(positions)) => (shown, positions),
            _ => (d, &named),
        };
        let short = short_words(diag);
        let report = Report {
            diag: short.as_ref().unwrap_or(diag),
            source: source_view,
        };
        if !out.is_empty() {
            out.push('\n');
        }
        if handler.render_report(&mut out, &report).is_err() {
            // Rendering into a String cannot fail; keep the plain form just in case.
            let _ = writeln!(
                out,
                "{}[{}]: {}",
                severity_word(d.severity),
                d.code,
                d.message
            );
        }
    }
    for (code, lines) in held {
        let mut at: Vec<String> = lines.iter().take(10).map(usize::to_string).collect();
        if lines.len() > 10 {
            at.push("...".to_string());
        }
        let _ = writeln!(
            out,
            "\n  ... and {} more {} {code} ({}), at lines {} of {}; `--format json` lists every one",
            lines.len(),
            severity_word(code.severity()),
            code.title(),
            at.join(", "),
            source.name
        );
    }
    out
}

/// How many warnings of one code the human output shows in full.
pub const SHOWN_PER_CODE: usize = 3;

/// The closing line of a human report: `error: 3 errors, 1 warning in topology.yaml`.
pub fn summary_line(diags: &[Diagnostic], file: &str, deny_warnings: bool) -> String {
    let (e, w) = counts(diags);
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    if e == 0 && w == 0 {
        format!("{file}: valid")
    } else if e == 0 && deny_warnings {
        format!(
            "{file}: invalid: {} (--deny-warnings)",
            plural(w, "warning")
        )
    } else if e == 0 {
        format!("{file}: valid, with {}", plural(w, "warning"))
    } else {
        format!("{file}: {}, {}", plural(e, "error"), plural(w, "warning"))
    }
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// Renders diagnostics as a JSON array, one object per diagnostic.
pub fn render_json(diags: &[Diagnostic], source: Option<&Source>) -> String {
    #[derive(Serialize)]
    struct Related<'a> {
        line: usize,
        column: usize,
        offset: usize,
        length: usize,
        label: &'a str,
    }
    #[derive(Serialize)]
    struct Json<'a> {
        code: &'static str,
        severity: Severity,
        message: String,
        help: Option<String>,
        file: Option<&'a str>,
        line: usize,
        column: usize,
        offset: usize,
        length: usize,
        label: Option<&'a str>,
        path: Option<&'a str>,
        related: Vec<Related<'a>>,
    }
    let position = |span: Span| source.map_or((1, 1), |s| s.line_col(span.offset));
    let items: Vec<Json> = diags
        .iter()
        .map(|d| {
            let primary = d.labels.first();
            let span = primary.map(|l| l.span).unwrap_or_default();
            let (line, column) = position(span);
            Json {
                code: d.code.as_str(),
                severity: d.severity,
                // A quoted value may be megabytes long: cut, as in the human output.
                message: cut_words(&d.message),
                help: d.help.as_deref().map(cut_words),
                file: source.map(|s| s.name.as_str()),
                line,
                column,
                offset: span.offset,
                length: span.len,
                label: primary.map(|l| l.text.as_str()),
                path: d.path.as_deref(),
                related: d
                    .labels
                    .iter()
                    .skip(1)
                    .map(|l| {
                        let (line, column) = position(l.span);
                        Related {
                            line,
                            column,
                            offset: l.span.offset,
                            length: l.span.len,
                            label: &l.text,
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".to_string());
    s.push('\n');
    s
}

/// Whether standard error is a terminal (for colour decisions).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// The source as miette reads it, with the header's column counted in characters by
/// [`Source::line_col`] (miette counts bytes), so that human and JSON output agree.
///
/// For a diagnostic on a very long line, `source` is an excerpt of that line instead
/// ([`excerpt`]): `shift` is the excerpt's line in the file (0-based), `header` the real
/// 0-based line and column of the primary label.
struct Positions<'a> {
    source: &'a Source,
    shift: usize,
    header: Option<(usize, usize)>,
}

impl SourceCode for Positions<'_> {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let contents = self.source.text.as_str().read_span(span, before, after)?;
        let (line, column) = match (before == 0 && after == 0, self.header) {
            (true, Some(header)) => header,
            (true, None) => (contents.line(), self.source.line_col(span.offset()).1 - 1),
            (false, _) => (contents.line() + self.shift, contents.column()),
        };
        Ok(Box::new(MietteSpanContents::new_named(
            self.source.name.clone(),
            contents.data(),
            *contents.span(),
            line,
            column,
            contents.line_count(),
        )))
    }
}

/// Words (runs without whitespace) longer than this are cut in messages and help: a message
/// quotes the value it is about, and the value may be megabytes long.
const LONG_WORD: usize = 120;

/// `d` with every long word of its message and help cut, or `None` when it has none.
fn short_words(d: &Diagnostic) -> Option<Diagnostic> {
    let long = |t: &str| t.split_whitespace().any(|w| w.len() > LONG_WORD);
    if !long(&d.message) && !d.help.as_deref().is_some_and(long) {
        return None;
    }
    let mut d = d.clone();
    d.message = cut_words(&d.message);
    d.help = d.help.as_deref().map(cut_words);
    Some(d)
}

/// `text` with each word over [`LONG_WORD`] bytes cut to its start and end around `…`.
pub fn cut_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4096));
    let mut rest = text;
    while !rest.is_empty() {
        let space = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(space);
        if word.len() > LONG_WORD {
            let head: String = word.chars().take(LONG_WORD / 2).collect();
            let end: Vec<char> = word.chars().rev().take(8).collect();
            out.push_str(&head);
            let _ = write!(out, "…({} characters)…", word.chars().count());
            out.extend(end.iter().rev());
        } else {
            out.push_str(word);
        }
        let next = tail
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(tail.len());
        out.push_str(&tail[..next]);
        rest = &tail[next..];
    }
    out
}

/// Lines longer than this (in bytes) are shown cut around the span, not whole: a
/// multi-megabyte line must not be echoed into an error.
const LONG_LINE: usize = 240;
/// How much of a long line is kept on each side of the span (in bytes, at most).
const AROUND: usize = 60;

/// For a diagnostic whose primary label sits on a line longer than [`LONG_LINE`]: an excerpt
/// of that line around the label (marked `…` where cut), the diagnostic with its labels on
/// that line moved into the excerpt (labels elsewhere dropped), the excerpt's line number
/// (0-based) and the real 0-based line and column of the label.
fn excerpt(d: &Diagnostic, source: &Source) -> Option<(Source, Diagnostic, usize, (usize, usize))> {
    let primary = d.labels.first()?;
    let std::ops::Range {
        start: line_start,
        end: line_end,
    } = source.line_range(primary.span.offset);
    let line = &source.text[line_start..line_end];
    // The context lines miette shows around the label count too.
    let before = line_start
        .checked_sub(1)
        .map_or("", |o| source.line_text(o));
    let after = if line_end < source.text.len() {
        source.line_text(line_end + 1)
    } else {
        ""
    };
    if [line, before, after].iter().all(|l| l.len() <= LONG_LINE) {
        return None;
    }
    let offset = primary.span.offset.clamp(line_start, line_end);
    let len = primary.span.len.min(line_end - offset).min(LONG_LINE);
    let start = source.clamp(offset.saturating_sub(AROUND).max(line_start));
    let end = source.clamp((offset + len + AROUND).min(line_end));
    let lead = if start > line_start { "…" } else { "" };
    let text = format!(
        "{lead}{}{}",
        &source.text[start..end],
        if end < line_end { "…" } else { "" }
    );
    let moved = |span: Span| {
        (span.offset >= start && span.offset + span.len <= end).then(|| Span {
            offset: span.offset - start + lead.len(),
            len: span.len,
        })
    };
    let mut shown = d.clone();
    shown.labels = d
        .labels
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let span = if i == 0 {
                Span {
                    offset: offset - start + lead.len(),
                    len,
                }
            } else {
                moved(l.span)?
            };
            Some(Label {
                span,
                text: l.text.clone(),
            })
        })
        .collect();
    let (l, c) = source.line_col(offset);
    let cut = Source::new(source.name.clone(), source.path.clone(), text);
    Some((cut, shown, l - 1, (l - 1, c - 1)))
}

/// Adapter that lets miette render a [`Diagnostic`] against its source.
struct Report<'a> {
    diag: &'a Diagnostic,
    source: &'a Positions<'a>,
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diag, f)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}[{}]: {}",
            severity_word(self.diag.severity),
            self.diag.code,
            self.diag.message
        )
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diag
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        if self.diag.labels.is_empty() {
            None
        } else {
            Some(self.source)
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.diag.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.diag.labels.iter().enumerate().map(
            |(i, l)| {
                let span = SourceSpan::new(l.span.offset.into(), l.span.len);
                let text = (!l.text.is_empty()).then(|| l.text.clone());
                if i == 0 {
                    LabeledSpan::new_primary_with_span(text, span)
                } else {
                    LabeledSpan::new_with_span(text, span)
                }
            },
        )))
    }
}

/// Collects diagnostics during the semantic stages, turning document paths into spans.
///
/// The document is any [`Locate`] (in practice the parsed `parse::Node` tree), so that this
/// module needs nothing from the parser.
pub struct Reporter<'t> {
    tree: &'t dyn Locate,
    diags: Vec<Diagnostic>,
}

impl fmt::Debug for Reporter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reporter")
            .field("diags", &self.diags)
            .finish_non_exhaustive()
    }
}

impl<'t> Reporter<'t> {
    pub fn new(tree: &'t dyn Locate) -> Self {
        Reporter {
            tree,
            diags: Vec::new(),
        }
    }

    /// Reports `code` at the value at `path` (for collections: the key that introduces them).
    pub fn report(
        &mut self,
        code: Code,
        path: &Path,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.report_on(code, path, false, message)
    }

    /// Reports `code` at the key that introduces `path`.
    pub fn report_key(
        &mut self,
        code: Code,
        path: &Path,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.report_on(code, path, true, message)
    }

    /// Reports `code` at the key that introduces `path` (`on_key`), or at its value.
    pub fn report_on(
        &mut self,
        code: Code,
        path: &Path,
        on_key: bool,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let span = if on_key {
            self.tree.key_span_of(path)
        } else {
            self.tree.span_of(path)
        };
        self.diags.push(
            Diagnostic::new(code, message)
                .at(span, "")
                .with_path(path.to_string()),
        );
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    /// The span of a path, for secondary labels.
    pub fn span(&self, path: &Path) -> Span {
        self.tree.span_of(path)
    }

    pub fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diags
    }
}

impl Diagnostic {
    /// Sets the primary label's text.
    pub fn label(&mut self, text: impl Into<String>) -> &mut Self {
        if let Some(l) = self.labels.first_mut() {
            l.text = text.into();
        }
        self
    }

    /// Sets the help line.
    pub fn help(&mut self, text: impl Into<String>) -> &mut Self {
        self.help = Some(text.into());
        self
    }

    /// Adds a secondary labelled span.
    pub fn also(&mut self, span: Span, text: impl Into<String>) -> &mut Self {
        self.labels.push(Label {
            span,
            text: text.into(),
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for c in Code::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert_eq!(s.len(), 4);
            assert!(s.starts_with('E') || s.starts_with('W'));
        }
    }

    #[test]
    fn human_rendering_shows_code_position_underline_and_help() {
        let src = Source::new("t.yaml", "t.yaml", "a: 1\nnetwork: nope\n".to_string());
        let d = Diagnostic::error(Code::UnknownReference, "unknown network `nope`")
            .at(Span::new(14, 4), "no such network")
            .with_help("declare it under `networks:`");
        let out = render_human(&[d], &src, false);
        assert!(out.contains("E012"), "{out}");
        assert!(out.contains("t.yaml:2:10"), "{out}");
        assert!(out.contains("────"), "{out}");
        assert!(out.contains("help: declare it under `networks:`"), "{out}");
    }

    #[test]
    fn human_and_json_columns_count_characters() {
        let src = Source::new(
            "t.yaml",
            "t.yaml",
            "name: \"clüster\", network: nope\n".to_string(),
        );
        let offset = src.text.find("nope").expect("present");
        let d = Diagnostic::error(Code::UnknownReference, "unknown network `nope`")
            .at(Span::new(offset, 4), "here");
        assert_eq!(src.line_col(offset), (1, 27));
        let out = render_human(std::slice::from_ref(&d), &src, false);
        assert!(out.contains("t.yaml:1:27]"), "{out}");
        assert!(render_json(&[d], Some(&src)).contains("\"column\": 27"));
    }
}
