//! Reading back YAML that meshc wrote: rendered files before they are kept, and the output
//! tree when it is compared.
//!
//! The parser's default budget is made for documents of unknown origin: at most 1,024
//! documents and 250,000 nodes. A mesh's `services.yaml` at 2,000 services is 2,000 documents,
//! and a large but valid output must never be refused for its size. These files are bounded by
//! their own length (every document, node and event takes at least one byte of text), so the
//! budget here follows the text: no document meshc can write exceeds it, and a hand-edited
//! file in `out/` still cannot make the parser do more work than its size allows. The topology
//! itself is read with meshc's fixed, stricter limits (`parse.rs`).
//!
//! The self-check of rendered files reads each document once ([`segments`]): a document many
//! files share (the same remote secret on every primary, the same Namespace on every cluster
//! of a network) is parsed once per build, and it is read for what the check needs
//! ([`Head`]), without building the document in memory.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};

/// Options whose budget grows with `text`.
fn options(text: &str) -> serde_saphyr::Options {
    // Each YAML event, node and document needs at least one byte of input; the floors keep
    // small files at the library's defaults.
    let bytes = text.len();
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: bytes.max(1_024),
            max_nodes: bytes.max(250_000),
            max_events: bytes.saturating_mul(2).max(1_000_000),
            max_total_scalar_bytes: bytes.max(64 * 1024 * 1024),
            max_reader_input_bytes: Some(bytes.max(256 * 1024 * 1024)),
        },
        with_snippet: false,
    }
}

/// Every document of a multi-document file.
pub fn documents<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, serde_saphyr::Error> {
    serde_saphyr::from_multiple_with_options(text, options(text))
}

/// The one document of a file.
pub fn document<T: DeserializeOwned>(text: &str) -> Result<T, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options(text, options(text))
}

/// The documents of a multi-document text, each with its own `---` line: the text is cut
/// before every line that starts with a document marker. A marker at the start of a line
/// ends any scalar or collection in YAML (the spec's `c-forbidden`), so each piece is parsed
/// on its own exactly as in the whole text; where a piece does not parse alone (a directive
/// before its marker), the caller reads the whole text instead.
pub fn segments(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        // The next marker after this piece's first line.
        let mut at = 0;
        let cut = loop {
            match rest[at..].find('\n') {
                Some(i) => {
                    at += i + 1;
                    if is_marker(&rest[at..]) {
                        break at;
                    }
                }
                None => break rest.len(),
            }
        };
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        Some(piece)
    })
}

/// Whether `line` (and what follows it) starts with a document start marker.
fn is_marker(line: &str) -> bool {
    line.strip_prefix("---")
        .is_some_and(|after| after.is_empty() || after.starts_with([' ', '\t', '\n', '\r']))
}

/// What the self-check asks of a Kubernetes object: whether `apiVersion`, `kind` and
/// `metadata.name` are strings. Read by walking the document's events, skipping everything
/// else, so a check allocates nothing per node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Head {
    api_version: bool,
    kind: bool,
    name: bool,
}

impl Head {
    /// The head of an object built as data.
    pub fn of_value(object: &serde_json::Value) -> Head {
        let is_string = |v: Option<&serde_json::Value>| v.is_some_and(serde_json::Value::is_string);
        Head {
            api_version: is_string(object.get("apiVersion")),
            kind: is_string(object.get("kind")),
            name: is_string(object.pointer("/metadata/name")),
        }
    }

    /// The first of the three fields that is not a string, as the check names it.
    pub fn missing(self) -> Option<&'static str> {
        [
            ("apiVersion", self.api_version),
            ("kind", self.kind),
            ("metadata.name", self.name),
        ]
        .into_iter()
        .find_map(|(field, present)| (!present).then_some(field))
    }
}

/// The head of every document of a multi-document text.
pub fn heads(text: &str) -> Result<Vec<Head>, serde_saphyr::Error> {
    match walk(text) {
        Some(Walked { heads, .. }) => Ok(heads),
        None => documents(text),
    }
}

/// Whether a one-document text is a mapping (installer inputs: Helm values, kubeconfigs).
pub fn is_mapping(text: &str) -> Result<bool, serde_saphyr::Error> {
    match walk(text) {
        Some(Walked { documents: 1, .. }) => Ok(true),
        _ => document::<Kind>(text).map(|k| k == Kind::Mapping),
    }
}

/// What [`walk`] found in a text whose every document is a mapping.
#[derive(Debug, PartialEq, Eq)]
struct Walked {
    documents: usize,
    heads: Vec<Head>,
}

/// The serde-saphyr budget's nesting limit, which the full read enforces.
const MAX_DEPTH: usize = 64;

/// One open collection of the walk.
struct Open<'t> {
    /// A mapping's keys so far (`None` for a sequence); a key is awaited when there are as
    /// many values as keys.
    keys: Option<Vec<std::borrow::Cow<'t, str>>>,
    values: usize,
    /// What the value being read is to the head: `Some(field)` for the three fields.
    field: Option<Field>,
    /// This mapping is the object's `metadata`.
    metadata: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    ApiVersion,
    Kind,
    Metadata,
    Name,
}

/// The heads of `text` read straight off the parser's events: the self-check reads every
/// rendered document, and the events cost half of what a read through serde does. Sure
/// answers only: `None` (and the caller reads the text in full, as before) for an error and
/// for anything whose meaning the full read decides by rules this walk does not repeat: a
/// tag, an anchor or alias, a document that is not a mapping, a key that is not plainly a
/// string, a repeated key, a field whose scalar might not be a string, nesting past the
/// budget. Rendered Kubernetes objects have none of these.
fn walk(text: &str) -> Option<Walked> {
    use granit_parser::{Event, Parser, ScalarStyle};
    let mut walked = Walked {
        documents: 0,
        heads: Vec::new(),
    };
    let mut head = Head::default();
    let mut open: Vec<Open<'_>> = Vec::new();
    let mut in_document = false;
    for event in Parser::new_from_str(text) {
        let (event, _) = event.ok()?;
        // The node this event starts, seen from the collection it is in: a key, or a value
        // and which field of the head it is.
        let (is_key, field, metadata) = match open.last() {
            Some(o) => match &o.keys {
                Some(keys) if keys.len() == o.values => (true, None, o.metadata),
                Some(_) => (false, o.field, o.metadata),
                None => (false, None, false),
            },
            None => (false, None, false),
        };
        match event {
            Event::StreamStart | Event::StreamEnd => {}
            Event::DocumentStart(_, None) if !in_document => in_document = true,
            Event::DocumentEnd if in_document && open.is_empty() => {
                in_document = false;
                walked.documents += 1;
                walked.heads.push(std::mem::take(&mut head));
            }
            Event::Scalar(value, style, 0, None) if in_document && !open.is_empty() => {
                if is_key {
                    if style == ScalarStyle::Plain && !plainly_a_string(&value) {
                        return None;
                    }
                    let depth = open.len();
                    let o = open.last_mut()?;
                    let keys = o.keys.as_mut()?;
                    if keys.contains(&value) {
                        return None;
                    }
                    o.field = match (o.metadata, depth, value.as_ref()) {
                        (false, 1, "apiVersion") => Some(Field::ApiVersion),
                        (false, 1, "kind") => Some(Field::Kind),
                        (false, 1, "metadata") => Some(Field::Metadata),
                        (true, _, "name") => Some(Field::Name),
                        _ => None,
                    };
                    keys.push(value);
                    continue;
                }
                let plain = style == ScalarStyle::Plain;
                if plain && !read_without_error(&value) {
                    return None;
                }
                if let Some(field) = field {
                    let string = !plain || plainly_a_string(&value);
                    if !string && !plainly_not_a_string(&value) {
                        return None;
                    }
                    match field {
                        Field::ApiVersion => head.api_version = string,
                        Field::Kind => head.kind = string,
                        Field::Name => head.name = string,
                        Field::Metadata => {}
                    }
                }
                if let Some(o) = open.last_mut() {
                    o.values += usize::from(o.keys.is_some());
                }
            }
            Event::MappingStart(_, 0, None) | Event::SequenceStart(_, 0, None)
                if in_document && !is_key && open.len() < MAX_DEPTH =>
            {
                let mapping = matches!(event, Event::MappingStart(..));
                // Only a mapping can be an object; a collection as a field's value is not a
                // string (the field stays false).
                if open.is_empty() && !mapping {
                    return None;
                }
                open.push(Open {
                    keys: mapping.then(Vec::new),
                    values: 0,
                    field: None,
                    metadata: mapping && field == Some(Field::Metadata) && !metadata,
                });
            }
            Event::MappingEnd | Event::SequenceEnd if !open.is_empty() => {
                open.pop();
                if let Some(o) = open.last_mut() {
                    o.values += usize::from(o.keys.is_some());
                }
            }
            _ => return None,
        }
    }
    (!in_document && open.is_empty()).then_some(walked)
}

/// Whether the full read takes a plain scalar as a string for sure: it starts with a
/// letter (no number, `~`, `.inf`, `<<`, `*alias`...) and is none of the words YAML 1.1
/// reads as a boolean or null (serde-saphyr's `parse_yaml11_bool`, `scalar_is_nullish`).
fn plainly_a_string(value: &str) -> bool {
    const WORDS: [&str; 9] = ["true", "false", "yes", "no", "y", "n", "on", "off", "null"];
    value
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphabetic)
        && !WORDS.iter().any(|w| value.eq_ignore_ascii_case(w))
}

/// Whether the full read takes a plain scalar, wherever it is, without an error. It refuses
/// one that reads as a float that is not finite (`.inf`, `.nan`, `1e999`, an integer of 310
/// digits: serde-saphyr's `NonFiniteFloat`); a numeral Rust does not read either is left to it.
fn read_without_error(value: &str) -> bool {
    let unsigned = value.strip_prefix(['+', '-']).unwrap_or(value);
    if !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return true;
    }
    match unsigned.parse::<f64>() {
        Ok(number) => number.is_finite(),
        // A version (`1.30.0`), a duration (`30s`): strings, unless YAML's own numerals
        // (`0x`, `0o`, `_`, an exponent) are in it.
        Err(_) => {
            !unsigned.eq_ignore_ascii_case(".inf")
                && !unsigned.eq_ignore_ascii_case(".nan")
                && !unsigned.contains(['e', 'E', '_', 'x', 'o', 'b'])
        }
    }
}

/// Whether a plain scalar is, for sure, read as something other than a string: a decimal
/// number, a boolean word or a null.
fn plainly_not_a_string(value: &str) -> bool {
    matches!(
        value,
        "" | "~" | "null" | "Null" | "NULL" | "true" | "false"
    ) || (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) && !value.starts_with('0'))
        || value == "0"
}

/// What kind of node a value is, read without keeping it: the same distinctions as a
/// `serde_json::Value` makes (a string is what calls `visit_str`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Kind {
    String,
    Mapping,
    #[default]
    Other,
}

/// Declares the visitor methods of the scalars that are not strings (and of `extra`): each
/// is a node of the value's default kind.
macro_rules! other_scalars {
    ($($extra:ident($($arg:ty)?)),* $(,)?) => {
        other_scalars!(@each
            visit_bool(bool), visit_i64(i64), visit_i128(i128), visit_u64(u64),
            visit_u128(u128), visit_f64(f64), visit_bytes(&[u8]), visit_unit(), visit_none(),
            $($extra($($arg)?)),*
        );
    };
    (@each $($method:ident($($arg:ty)?)),* $(,)?) => {
        $(fn $method<E: de::Error>(self $(, _: $arg)?) -> Result<Self::Value, E> {
            Ok(Self::Value::default())
        })*
    };
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }
    other_scalars!();
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Kind, E> {
        Ok(Kind::String)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(KindVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Kind::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        while map.next_entry::<Key, Skip>()?.is_some() {}
        Ok(Kind::Mapping)
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

/// Any node, walked and dropped: what the check does not look at must still be YAML a
/// Kubernetes object can hold (scalar keys only).
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Skip, D::Error> {
        d.deserialize_any(KindVisitor).map(|_| Skip)
    }
}

/// A mapping key the check looks for, or any other scalar. A collection as a key is refused
/// (the visitor's default), as a JSON object and so the Kubernetes API refuse it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Key {
    ApiVersion,
    Kind,
    Metadata,
    Name,
    #[default]
    Other,
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }
    other_scalars!();
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "apiVersion" => Key::ApiVersion,
            "kind" => Key::Kind,
            "metadata" => Key::Metadata,
            "name" => Key::Name,
            _ => Key::Other,
        })
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
}

/// A mapping read for the keys the check looks for (in the object, or in its `metadata`);
/// any other node is a head with none of them.
struct HeadVisitor {
    metadata: bool,
}

impl<'de> Visitor<'de> for HeadVisitor {
    type Value = Head;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }
    other_scalars!(visit_str(&str));
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Head, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Head, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Head::default())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Head, A::Error> {
        let mut head = Head::default();
        while let Some(key) = map.next_key::<Key>()? {
            match (self.metadata, key) {
                (false, Key::ApiVersion) => {
                    head.api_version = map.next_value::<Kind>()? == Kind::String;
                }
                (false, Key::Kind) => head.kind = map.next_value::<Kind>()? == Kind::String,
                (false, Key::Metadata) => {
                    head.name = map.next_value_seed(HeadVisitor { metadata: true })?.name;
                }
                (true, Key::Name) => head.name = map.next_value::<Kind>()? == Kind::String,
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(head)
    }
}

impl<'de> de::DeserializeSeed<'de> for HeadVisitor {
    type Value = Head;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Head, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Deserialize<'de> for Head {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Head, D::Error> {
        d.deserialize_any(HeadVisitor { metadata: false })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_documents_are_not_refused() {
        let mut text = String::new();
        for i in 0..5_000 {
            text.push_str("---\napiVersion: v1\nkind: Service\nmetadata: {name: s");
            text.push_str(&i.to_string());
            text.push_str("}\n");
        }
        assert!(serde_saphyr::from_multiple::<serde_json::Value>(&text).is_err());
        let docs: Vec<serde_json::Value> = documents(&text).expect("parses");
        assert_eq!(docs.len(), 5_000);
        assert_eq!(docs[4_999]["metadata"]["name"], "s4999");
    }

    #[test]
    fn segments_cut_before_each_marker_line_and_keep_every_byte() {
        let text =
            "# header\n---\na: 1\nb: |\n  ---x\n  --- y\n--- # c\nc: 2\n---\n----: 3\n---\tz: 4\n";
        let pieces: Vec<&str> = segments(text).collect();
        assert_eq!(
            pieces,
            [
                "# header\n",
                "---\na: 1\nb: |\n  ---x\n  --- y\n",
                "--- # c\nc: 2\n",
                "---\n----: 3\n",
                "---\tz: 4\n",
            ]
        );
        assert_eq!(pieces.concat(), text);
        assert_eq!(segments("").count(), 0);
        assert_eq!(segments("---").collect::<Vec<_>>(), ["---"]);
    }

    #[test]
    fn heads_agree_with_the_documents_read_in_full() {
        let text = "\
apiVersion: v1
kind: Service
metadata: {name: a, labels: {x: [1, {y: z}]}}
spec: {ports: [{port: 1}]}
---
apiVersion: 1
kind: Service
metadata: {name: a}
---
kind: Service
metadata:
  name: {a: b}
apiVersion: v1
---
apiVersion: v1
kind: Secret
metadata:
  annotations: {name: n}
---
- a list
---
apiVersion: !custom v1
kind: \"Secret\"
metadata: {name: 'q'}
";
        let full: Vec<serde_json::Value> = documents(text).expect("parses");
        let missing = |doc: &serde_json::Value| {
            [
                (
                    "apiVersion",
                    doc.get("apiVersion")
                        .is_some_and(serde_json::Value::is_string),
                ),
                (
                    "kind",
                    doc.get("kind").is_some_and(serde_json::Value::is_string),
                ),
                (
                    "metadata.name",
                    doc.pointer("/metadata/name")
                        .is_some_and(serde_json::Value::is_string),
                ),
            ]
            .into_iter()
            .find_map(|(f, ok)| (!ok).then_some(f))
        };
        let expected: Vec<Option<&str>> = full.iter().map(missing).collect();
        let got: Vec<Option<&str>> = heads(text)
            .expect("parses")
            .into_iter()
            .map(Head::missing)
            .collect();
        assert_eq!(got, expected);
        assert_eq!(
            got,
            [
                None,
                Some("apiVersion"),
                Some("metadata.name"),
                Some("metadata.name"),
                Some("apiVersion"),
                None
            ]
        );
    }

    /// Kubernetes objects as meshc renders them: the walk decides each, as the full read does.
    const RENDERED: &[&str] = &[
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: \"istio-remote-secret-c1\"\n  labels:\n    \
         istio/multiCluster: \"true\"\ntype: Opaque\nstringData:\n  c1: |\n    apiVersion: v1\n    \
         kind: Config\n",
        "apiVersion: \"networking.istio.io/v1\"\nkind: \"DestinationRule\"\nmetadata:\n  name: \
         \"svc0\"\nspec:\n  host: svc0\n  trafficPolicy:\n    loadBalancer:\n      \
         localityLbSetting:\n        distribute:\n        - from: region0/*\n          to:\n            \
         region0/*: 80\n        enabled: true\n",
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: a, labels: {x: [1, {w: z}]}}\n",
        "apiVersion: 1\nkind: Service\nmetadata: {name: a}\n",
        "kind: Service\nmetadata:\n  name: {a: b}\napiVersion: v1\n",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  annotations: {name: n}\n",
        "apiVersion: v1\nkind: ~\nmetadata: {name: 'q'}\n",
        "apiVersion: v1\nkind: Secret\nmetadata: [name]\n",
        "apiVersion: v1\nkind: Secret\nspec: {metadata: {name: x}}\n",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n...\n",
        "global: {meshID: mesh1, multiCluster: {clusterName: c1}}\npilot: {env: {A: \"1\"}}\n",
        "apiVersion: v1\nkind: X\nmetadata: {name: x}\nspec: {t: 30s, v: 1.30.0, p: 0.5, m: -3, i: 9999999999999999999999}\n",
        "",
    ];

    /// What the walk leaves to the full read: its answer there may differ or be an error.
    const LEFT_TO_THE_FULL_READ: &[&str] = &[
        "apiVersion: v1\nkind: Secret\nkind: Service\nmetadata: {name: x}\n",
        "apiVersion: v1\n\"kind\": Secret\nkind: Service\nmetadata: {name: x}\n",
        "apiVersion: !custom v1\nkind: Secret\nmetadata: {name: x}\n",
        "apiVersion: &v v1\nkind: *v\nmetadata: {name: x}\n",
        "apiVersion: v1\nkind: yes\nmetadata: {name: x}\n",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: 1.5}\n",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n<<: {a: b}\n",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: x, labels: {y: z}}\n",
        "? [a]\n: 1\napiVersion: v1\n",
        "- a list\n",
        "a scalar\n",
        "%YAML 1.2\n---\napiVersion: v1\n",
        "apiVersion: v1\nkind: [\n",
        "a: {b: {c: {d: {e: {f: {g: {h: {i: {j: {k: {l: {m: {n: {o: {p: 1}}}}}}}}}}}}}}}\n",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nspec: {w: .inf}\n",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nspec: [-.NaN]\n",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nspec: {w: 1e999}\n",
    ];

    #[test]
    fn the_walk_decides_rendered_objects_as_the_full_read_does() {
        for text in RENDERED {
            let walked = walk(text).unwrap_or_else(|| panic!("walked: {text}"));
            let full: Vec<Head> = documents(text).expect("parses");
            assert_eq!(walked.heads, full, "{text}");
            assert_eq!(walked.documents, full.len());
        }
    }

    #[test]
    fn the_walk_leaves_what_it_does_not_decide_to_the_full_read() {
        for text in LEFT_TO_THE_FULL_READ {
            assert_eq!(walk(text), None, "{text}");
        }
        let deep = format!("{}1{}\n", "a: [".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(walk(&deep), None);
        assert!(heads(&deep).is_err(), "the full read refuses it too");
        // A repeated key is refused, as the full read refuses it.
        assert!(heads(LEFT_TO_THE_FULL_READ[0]).is_err());
        assert!(heads(LEFT_TO_THE_FULL_READ[1]).is_err());
        let yes = heads(LEFT_TO_THE_FULL_READ[4]).expect("parses");
        assert_eq!(yes[0].missing(), Some("kind"));
        // A float that is not finite is refused anywhere, as the full read refuses it.
        let long = format!(
            "apiVersion: v1\nkind: {}\nmetadata: {{name: x}}\n",
            "9".repeat(310)
        );
        for text in LEFT_TO_THE_FULL_READ[LEFT_TO_THE_FULL_READ.len() - 3..]
            .iter()
            .copied()
            .chain([long.as_str()])
        {
            assert_eq!(walk(text), None, "{text}");
            assert!(heads(text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_collection_as_a_key_is_refused_anywhere() {
        for text in [
            "? [a]\n: 1\napiVersion: v1\n",
            "apiVersion: v1\nspec: {x: [{? {a: b} : 1}]}\n",
        ] {
            assert!(documents::<serde_json::Value>(text).is_err());
            assert!(heads(text).is_err(), "{text}");
        }
    }

    #[test]
    fn only_a_mapping_is_a_mapping() {
        assert!(is_mapping("a: 1\nb: [2]\n").expect("parses"));
        assert!(!is_mapping("- a\n").expect("parses"));
        assert!(!is_mapping("text\n").expect("parses"));
        assert!(is_mapping("a: [\n").is_err());
    }
}
