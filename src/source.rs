//! The topology file as text: reading it within limits, and turning byte offsets into
//! line and column numbers.
//!
//! Everything that reports a position goes through [`Source`], so that the human renderer,
//! the JSON output and the tests all agree on what "line 14, column 7" means: lines are
//! 1-based, columns are 1-based and count Unicode scalar values (not bytes), as editors do.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest topology file meshc reads. Real topologies are a few hundred kilobytes even
/// for thousands of clusters; anything larger is refused before it is parsed, so that memory
/// stays bounded whatever the input.
pub const MAX_TOPOLOGY_BYTES: u64 = 4 * 1024 * 1024;

/// A loaded topology file.
#[derive(Debug, Clone)]
pub struct Source {
    /// The path as the user gave it; used in diagnostics.
    pub name: String,
    /// The path used to resolve relative file references (`certFile`, `tokenFile`, ...).
    pub path: PathBuf,
    pub text: String,
    /// Byte offset at which each line starts.
    line_starts: Vec<usize>,
}

/// Why a topology file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file is missing, unreadable, or a directory: an environment problem (exit 3).
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_TOPOLOGY_BYTES`]: an invalid topology (exit 2).
    #[error("{path} is larger than {limit} bytes")]
    TooLarge { path: String, limit: u64 },
    /// The file is not UTF-8: an invalid topology (exit 2).
    #[error("{path} is not valid UTF-8 (byte {offset})")]
    NotUtf8 { path: String, offset: usize },
}

impl Source {
    /// A byte-order mark is dropped (it is not part of line 1's first column), and a lone
    /// carriage return, a line break in YAML (old Mac OS files), becomes a line feed: the same
    /// number of bytes, so every offset stays put, and every renderer counts lines alike.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>, text: String) -> Self {
        let mut text = match text.strip_prefix('\u{feff}') {
            Some(rest) => rest.to_string(),
            None => text,
        };
        if text.contains('\r') {
            text = lone_cr_to_lf(&text);
        }
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Source {
            name: name.into(),
            path: path.into(),
            text,
            line_starts,
        }
    }

    /// Reads `path`, refusing files over [`MAX_TOPOLOGY_BYTES`] without reading them whole.
    pub fn read(path: &Path) -> Result<Self, ReadError> {
        let name = path.display().to_string();
        let io = |source| ReadError::Io {
            path: name.clone(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if meta.is_dir() {
            return Err(io(std::io::Error::other("is a directory")));
        }
        if meta.len() > MAX_TOPOLOGY_BYTES {
            return Err(ReadError::TooLarge {
                path: name,
                limit: MAX_TOPOLOGY_BYTES,
            });
        }
        let mut bytes = Vec::new();
        // The file may grow between stat and read: take at most one byte past the limit.
        file.take(MAX_TOPOLOGY_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_TOPOLOGY_BYTES {
            return Err(ReadError::TooLarge {
                path: name,
                limit: MAX_TOPOLOGY_BYTES,
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| ReadError::NotUtf8 {
            path: name.clone(),
            offset: e.utf8_error().valid_up_to(),
        })?;
        Ok(Source::new(name, path, text))
    }

    /// The directory relative file references are resolved against.
    pub fn base_dir(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    /// 1-based line and column (in characters) of a byte offset. Offsets past the end, or
    /// inside a multi-byte character, are clamped to the nearest valid position.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = self.clamp(offset);
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let column = self.text[start..offset].chars().count() + 1;
        (line + 1, column)
    }

    /// The byte offset of a 1-based line and character column, clamped to the text.
    pub fn offset_of(&self, line: usize, column: usize) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let end = self.line_end(start);
        self.text[start..end]
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(end, |(i, _)| start + i)
    }

    /// The text of the line holding `offset`, without its line break.
    pub fn line_text(&self, offset: usize) -> &str {
        &self.text[self.line_range(offset)]
    }

    /// The byte range of the line holding `offset`, without its line break.
    pub fn line_range(&self, offset: usize) -> std::ops::Range<usize> {
        let offset = self.clamp(offset);
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        start..self.line_end(start)
    }

    /// The source text covered by a span, clamped to the text.
    pub fn slice(&self, offset: usize, len: usize) -> &str {
        let start = self.clamp(offset);
        let end = self.clamp(offset.saturating_add(len));
        &self.text[start..end]
    }

    fn line_end(&self, start: usize) -> usize {
        self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i)
            .max(start)
    }

    /// `offset` clamped to the text and moved back to the start of the character it is in.
    pub fn clamp(&self, offset: usize) -> usize {
        let mut o = offset.min(self.text.len());
        while !self.text.is_char_boundary(o) {
            o -= 1;
        }
        o
    }
}

/// `text` with every `\r` not followed by `\n` replaced by `\n`.
fn lone_cr_to_lf(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' && chars.peek() != Some(&'\n') {
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_and_lone_carriage_returns_do_not_move_positions() {
        let s = Source::new("t", "t", "\u{feff}a: 1\rb: 2\r\nc: 3".to_string());
        assert_eq!(s.text, "a: 1\nb: 2\r\nc: 3");
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(5), (2, 1));
        assert_eq!(s.line_col(11), (3, 1));
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let s = Source::new("t", "t", "a: 1\nné: 2\n".to_string());
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(5), (2, 1));
        // "né: " is 5 bytes but 4 characters; the value starts at column 5.
        assert_eq!(s.line_col(10), (2, 5));
        assert_eq!(s.offset_of(2, 5), 10);
        assert_eq!(s.line_text(7), "né: 2");
        assert_eq!(s.line_col(999), (3, 1));
    }
}
