//! Stage 1: YAML text to a spanned document tree.
//!
//! The topology is parsed once, with serde-saphyr, into a [`Node`] tree in which every value
//! and every mapping key keeps its byte span. That tree is the single source of positions for
//! the whole pipeline: the schema stage maps JSON Schema instance paths onto it, and the
//! semantic rules point at `/clusters/3/network` and get the line and column from here.
//! Keeping positions out of the typed model means the model stays plain data, and a rule can
//! point at any path, including inside the verbatim Istio parts of a DestinationRule.
//! [`Span`] and [`Path`] themselves live in `span.rs`; the tree answers path-to-span
//! questions through [`Locate`], which is all the diagnostic `Reporter` knows of it.
//!
//! The parser refuses duplicate keys, enforces a node budget (so an alias bomb is answered
//! with a diagnostic rather than gigabytes of memory) and uses strict YAML 1.2 booleans, so
//! `yes` stays a string and the schema then says so.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DefaultMessageFormatter, MessageFormatter};

use crate::diagnostic::{Code, Diagnostic};
use crate::source::Source;
use crate::span::{Locate, Path, Seg, Span};

/// One YAML value with the span it was written at.
#[derive(Debug, Clone)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

/// The YAML value kinds the topology format uses.
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A mapping entry: the key, where the key was written, and the value.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

impl Node {
    /// The node at `path`, and the span of the mapping key that introduced it (if the last
    /// step was a key).
    pub fn get(&self, path: &Path) -> Option<(&Node, Option<Span>)> {
        let mut node = self;
        let mut key_span = None;
        for seg in &path.0 {
            match (seg, &node.value) {
                (Seg::Key(k), Value::Map(entries)) => {
                    let e = entries.iter().find(|e| &e.key == k)?;
                    key_span = Some(e.key_span);
                    node = &e.value;
                }
                (Seg::Index(i), Value::Seq(items)) => {
                    node = items.get(*i)?;
                    key_span = None;
                }
                _ => return None,
            }
        }
        Some((node, key_span))
    }

    /// The span to underline for the node at `path`: the value for scalars, the introducing
    /// key for collections (whose own span is only their first character). When the path does
    /// not exist, the deepest existing ancestor is used, so a diagnostic always has a place.
    pub fn span_of(&self, path: &Path) -> Span {
        let mut p = path.clone();
        loop {
            if let Some((node, key)) = self.get(&p) {
                return match (&node.value, key) {
                    (Value::Map(_) | Value::Seq(_), Some(k)) => k,
                    // A bare `key:` has an empty value: underline the key.
                    (Value::Null, Some(k)) if node.span.len == 0 => k,
                    (Value::Map(entries), None) if !entries.is_empty() => entries[0].key_span,
                    _ => node.span,
                };
            }
            if p.0.pop().is_none() {
                return self.span;
            }
        }
    }

    /// The span of the key that introduced `path` (for "unknown field" style diagnostics),
    /// falling back to [`Node::span_of`].
    pub fn key_span_of(&self, path: &Path) -> Span {
        match self.get(path) {
            Some((_, Some(k))) => k,
            _ => self.span_of(path),
        }
    }

    /// The entries of a mapping node, or an empty slice.
    pub fn entries(&self) -> &[Entry] {
        match &self.value {
            Value::Map(e) => e,
            _ => &[],
        }
    }

    /// The document as JSON, for schema validation and typed deserialisation.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::UInt(u) => J::from(*u),
            // `5000.0` is the integer 5000 for JSON Schema; make it one for serde as well.
            #[allow(clippy::cast_possible_truncation)]
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => J::from(*f as i64),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }

    /// A short description of the value's YAML type, for messages.
    pub fn kind_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::UInt(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Locate for Node {
    fn span_of(&self, path: &Path) -> Span {
        Node::span_of(self, path)
    }

    fn key_span_of(&self, path: &Path) -> Span {
        Node::key_span_of(self, path)
    }
}

/// The most YAML nodes a topology may expand to (aliases included).
pub const MAX_NODES: usize = 250_000;

/// Parses the topology source into a spanned tree.
///
/// An empty document (nothing but whitespace and comments) is reported here, since every
/// later stage would only repeat that the required fields are missing.
pub fn parse(source: &Source) -> Result<Node, Diagnostic> {
    let options = serde_saphyr::options! {
        // Bounds for hostile input (alias bombs, runaway nesting). A topology of thousands of
        // clusters stays far below them; they are meshc's limits, stated here, not a library
        // default that could move.
        budget: serde_saphyr::budget! {
            max_nodes: MAX_NODES,
            max_depth: 64,
            max_aliases: 10_000,
            max_total_scalar_bytes: 16 * 1024 * 1024,
        },
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        with_snippet: false,
    };
    match serde_saphyr::from_str_with_options::<serde_saphyr::Spanned<Raw>>(&source.text, options) {
        Ok(root) => {
            let node = root.value.0;
            if matches!(node.value, Value::Null) {
                return Err(
                    Diagnostic::error(Code::EmptyTopology, "the topology file is empty")
                        .at(Span::new(0, 0), "no document here")
                        .with_help(
                            "start from one of the topologies in examples/; \
                             the format is described in docs/topology.md",
                        ),
                );
            }
            Ok(node)
        }
        Err(err) => Err(yaml_error(source, &err)),
    }
}

fn yaml_error(source: &Source, err: &serde_saphyr::Error) -> Diagnostic {
    use serde_saphyr::Error as E;
    let mut inner = err.without_snippet();
    while let E::AliasError { error, .. } = inner {
        inner = error.without_snippet();
    }
    let mut message = DefaultMessageFormatter.format_message(inner).into_owned();
    if let E::Budget { breach, .. } = inner {
        message = budget_message(breach);
    }
    let mut help_override = None;
    let mut span_override = None;
    if let E::MultipleDocuments { .. } = inner {
        message = "the file holds more than one YAML document".to_string();
        help_override =
            Some("a topology is one document: remove the `---` separator and merge the documents");
        span_override = second_document_marker(&source.text);
    } else if message.contains("tab") {
        // The parser reports tab trouble at the token before the tab; point at the tab.
        span_override = err.location().and_then(|loc| {
            let line = usize::try_from(loc.line()).unwrap_or(usize::MAX);
            tab_from_line(&source.text, source.offset_of(line, 1))
        });
    } else if message.contains("quoted scalar")
        && let Some(at) = unclosed_quote(&source.text)
    {
        message = "a quoted string is never closed".to_string();
        help_override = Some("close the quote on the same line, or remove it");
        span_override = Some(Span::new(at, 1));
    }
    if message.contains("null into string") {
        message = "a mapping key is empty or null".to_string();
        help_override = Some("give the key a name (`~` and `null` are not names)");
    }
    let (code, help) = match inner {
        E::DuplicateMappingKey { .. } => (
            Code::DuplicateKey,
            "each key may appear once per mapping: remove or merge the repeated one",
        ),
        E::Budget { .. }
        | E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. }
        | E::AliasReplayCounterOverflow { .. } => (
            Code::InputLimit,
            "the document expands beyond what a topology needs (alias bomb or runaway nesting): \
             write the values out or use fewer aliases",
        ),
        _ if message.contains("recursion limit") => (
            Code::InputLimit,
            "the document nests deeper than a topology needs: flatten it",
        ),
        _ => (
            Code::YamlSyntax,
            "fix the YAML syntax at the marked position (check indentation, quotes and brackets)",
        ),
    };
    let help = help_override.unwrap_or(help);
    let message = match code {
        Code::DuplicateKey => {
            message.replace(", set DuplicateKeyPolicy in Options if acceptable", "")
        }
        _ => message,
    };
    let span = span_override.unwrap_or_else(|| {
        err.location().map_or(Span::new(0, 0), |loc| {
            let offset = loc.span().byte_offset().map_or_else(
                || {
                    let line = usize::try_from(loc.line()).unwrap_or(usize::MAX);
                    let column = usize::try_from(loc.column()).unwrap_or(usize::MAX);
                    source.offset_of(line, column)
                },
                |o| usize::try_from(o).unwrap_or(usize::MAX),
            );
            let len = loc
                .span()
                .byte_len()
                .and_then(|l| usize::try_from(l).ok())
                .unwrap_or(1);
            // Errors at the end of the input point one past it: keep the span inside the text.
            let offset = offset.min(source.text.len());
            Span::new(offset, len.max(1).min(source.text.len() - offset))
        })
    });
    Diagnostic::error(code, format!("invalid YAML: {message}"))
        .at(span, "here")
        .with_help(help)
}

/// What a parser budget breach means, in the user's terms.
fn budget_message(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    match breach {
        B::Nodes { .. } => format!("the document expands to more than {MAX_NODES} YAML nodes"),
        B::Depth { .. } => "the document nests deeper than 64 levels".to_string(),
        B::Aliases { .. } | B::AliasAnchorRatio { .. } => {
            "the document uses too many aliases".to_string()
        }
        B::ScalarBytes { .. } => "the document expands to more than 16 MiB of text".to_string(),
        other => format!("the document exceeds a parser limit ({other:?})"),
    }
}

/// The `---` that starts the second document, if any.
fn second_document_marker(text: &str) -> Option<Span> {
    let mut seen_content = false;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end();
        if bare == "---" || bare.starts_with("--- ") {
            if seen_content {
                return Some(Span::new(offset, 3));
            }
        } else if !bare.trim_start().is_empty() && !bare.trim_start().starts_with('#') {
            seen_content = true;
        }
        offset += line.len();
    }
    None
}

/// The first tab from `offset` (the start of the line the parser reported) to the end of the
/// next line.
fn tab_from_line(text: &str, offset: usize) -> Option<Span> {
    let mut start = offset.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut newlines = 0;
    for (i, c) in text[start..].char_indices().take(400) {
        match c {
            '\t' => return Some(Span::new(start + i, 1)),
            '\n' => {
                newlines += 1;
                if newlines > 1 {
                    break;
                }
            }
            _ => {}
        }
    }
    None
}

/// The opening quote of a quoted scalar that is never closed: the first quote character,
/// outside comments and other quotes, whose string runs to the end of the text.
fn unclosed_quote(text: &str) -> Option<usize> {
    let mut open: Option<(usize, char)> = None;
    let mut in_comment = false;
    let mut prev = ' ';
    let mut last_sign = '\n';
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match open {
            Some((_, '"')) if c == '\\' => {
                chars.next();
            }
            Some((_, q)) if c == q => {
                // '' inside a single-quoted string is an escaped quote.
                if q == '\'' && chars.peek().is_some_and(|(_, n)| *n == '\'') {
                    chars.next();
                } else {
                    open = None;
                }
            }
            None if in_comment => in_comment = c != '\n',
            None if c == '#' && prev.is_whitespace() => in_comment = true,
            None if (c == '"' || c == '\'') && "[{,:-\n".contains(last_sign) => {
                open = Some((i, c));
            }
            Some(_) | None => {}
        }
        prev = c;
        // The last non-blank character outside strings: a quote starts a scalar only after
        // an indicator (`key: "`, `- "`, `[ "`) or at the start of a line.
        if open.is_none() && !in_comment && !matches!(c, ' ' | '\t') {
            last_sign = c;
        }
    }
    open.map(|(i, _)| i)
}

/// The deserialisation target: a node whose spans come from serde-saphyr's `Spanned`.
struct Raw(Node);

fn to_span(loc: &serde_saphyr::Location) -> Span {
    let s = loc.span();
    let offset = s.byte_offset().and_then(|o| usize::try_from(o).ok());
    let len = s.byte_len().and_then(|l| usize::try_from(l).ok());
    match (offset, len) {
        (Some(o), Some(l)) => Span::new(o, l),
        _ => Span::new(0, 0),
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

fn spanned(s: serde_saphyr::Spanned<Raw>) -> Node {
    let mut node = s.value.0;
    node.span = to_span(&s.referenced);
    node
}

fn bare(value: Value) -> Raw {
    Raw(Node {
        value,
        span: Span::default(),
    })
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(bare(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(bare(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(bare(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(bare(Value::Int(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(bare(Value::UInt(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(bare(Value::Float(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(bare(Value::Str(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(bare(Value::Str(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<serde_saphyr::Spanned<Raw>>()? {
            items.push(spanned(item));
        }
        Ok(bare(Value::Seq(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<serde_saphyr::Spanned<String>>()? {
            let value = map.next_value::<serde_saphyr::Spanned<Raw>>()?;
            entries.push(Entry {
                key_span: to_span(&key.referenced),
                key: key.value,
                value: spanned(value),
            });
        }
        Ok(bare(Value::Map(entries)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path;

    fn src(text: &str) -> Source {
        Source::new("t.yaml", "t.yaml", text.to_string())
    }

    #[test]
    fn keys_and_values_keep_their_spans() {
        let s = src("a: 1\nbb:\n  - x\n  - {y: yes, z: 0755}\n");
        let root = parse(&s).expect("parses");
        let (node, key) = root.get(&path!("bb", 1, "z")).expect("exists");
        assert_eq!(s.slice(node.span.offset, node.span.len), "0755");
        assert_eq!(s.slice(key.expect("key").offset, 1), "z");
        // Strict booleans and leading zeros: both stay strings.
        assert_eq!(
            root.get(&path!("bb", 1)).expect("map").0.to_json()["y"],
            "yes"
        );
        assert_eq!(node.to_json(), "0755");
        assert_eq!(path!("bb", 1, "a/b").to_string(), "/bb/1/a~1b");
    }

    #[test]
    fn span_of_missing_path_falls_back_to_ancestor() {
        let s = src("clusters:\n  - name: c1\n");
        let root = parse(&s).expect("parses");
        let span = root.span_of(&path!("clusters", 0, "network"));
        assert_eq!(s.slice(span.offset, span.len), "name");
    }

    #[test]
    fn duplicate_keys_and_empty_files_are_diagnosed() {
        let d = parse(&src("a: 1\na: 2\n")).expect_err("duplicate");
        assert_eq!(d.code, Code::DuplicateKey);
        assert_eq!(d.primary_span().map(|s| s.offset), Some(5));
        let d = parse(&src("# nothing\n")).expect_err("empty");
        assert_eq!(d.code, Code::EmptyTopology);
    }
}
