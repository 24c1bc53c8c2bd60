//! Places in the topology: byte spans in the text and paths into the document.
//!
//! These are the vocabulary every stage shares. The parser produces spans, the rules address
//! the document by [`Path`], and diagnostics carry spans; keeping the two types here, below
//! all of those modules and depending on none of them, is what lets `parse` build diagnostics
//! and `diagnostic` place them without the two modules importing each other. The one link
//! between a path and a span, the document tree, is reached through the [`Locate`] trait,
//! which `parse::Node` implements.

use std::fmt;

/// A byte range in the topology source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub offset: usize,
    pub len: usize,
}

impl Span {
    pub fn new(offset: usize, len: usize) -> Self {
        Span { offset, len }
    }
}

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path into the document, shown as a JSON pointer (`/clusters/2/network`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Path(pub Vec<Seg>);

impl Path {
    pub fn root() -> Self {
        Path(Vec::new())
    }

    /// This path extended by a key.
    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(key.to_string()));
        p
    }

    /// This path extended by a sequence index.
    #[must_use]
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    /// The last key of the path, if it ends in a key.
    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Seg::Key(k)) => Some(k),
            _ => None,
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("/");
        }
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => write!(f, "/{}", k.replace('~', "~0").replace('/', "~1"))?,
                Seg::Index(i) => write!(f, "/{i}")?,
            }
        }
        Ok(())
    }
}

/// Shorthand for building paths in rules: `path!("clusters", 2, "network")`.
#[macro_export]
macro_rules! path {
    ($($seg:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut p = $crate::span::Path::root();
        $( p = $crate::span::PathStep::push(&$seg, p); )*
        p
    }};
}

/// Anything that can be a step in [`path!`].
pub trait PathStep {
    fn push(&self, path: Path) -> Path;
}

impl PathStep for &str {
    fn push(&self, path: Path) -> Path {
        path.key(self)
    }
}

impl PathStep for String {
    fn push(&self, path: Path) -> Path {
        path.key(self)
    }
}

impl PathStep for usize {
    fn push(&self, path: Path) -> Path {
        path.index(*self)
    }
}

impl PathStep for Path {
    fn push(&self, mut path: Path) -> Path {
        path.0.extend(self.0.iter().cloned());
        path
    }
}

/// A document that can say where a path was written: what a diagnostic reported by path
/// needs in order to be shown at a line and column.
pub trait Locate {
    /// The span to underline for the value at `path` (for collections: the key introducing
    /// them). A path that does not exist falls back to its deepest existing ancestor.
    fn span_of(&self, path: &Path) -> Span;

    /// The span of the key that introduced `path`, or [`Locate::span_of`] when there is none.
    fn key_span_of(&self, path: &Path) -> Span;
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_are_json_pointers() {
        assert_eq!(path!().to_string(), "/");
        assert_eq!(path!("bb", 1, "a/b", "c~d").to_string(), "/bb/1/a~1b/c~0d");
        let base = path!("clusters", 2);
        assert_eq!(path!(base, "network").to_string(), "/clusters/2/network");
        assert_eq!(path!("clusters", 2, "network").last_key(), Some("network"));
        assert_eq!(path!("clusters", 2).last_key(), None);
    }
}
