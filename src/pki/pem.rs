//! PEM, read strictly enough to name what is wrong with a file and written one canonical way.
//!
//! A truncated or pasted-together PEM file is the most common way a hand-made `cacerts` goes
//! wrong, so the reader reports the line of a `BEGIN` without its `END` rather than "invalid
//! data". Text outside the blocks (OpenSSL's "Bag Attributes", `openssl x509 -text` output) is
//! allowed, as OpenSSL allows it. Errors never quote the file: it may hold a private key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// One `-----BEGIN <label>-----` ... `-----END <label>-----` block.
pub struct Block {
    pub label: String,
    pub der: Vec<u8>,
    /// The 1-based line of the `BEGIN`.
    pub line: usize,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The contents may be a private key: never shown.
        write!(f, "Block({} at line {})", self.label, self.line)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    #[error("no PEM block in the file")]
    Empty,
    #[error("line {line}: `BEGIN {label}` has no matching `END` (the file is truncated)")]
    Unterminated { label: String, line: usize },
    #[error("line {line}: `END {found}` closes `BEGIN {label}`")]
    Mismatched {
        label: String,
        found: String,
        line: usize,
    },
    #[error("line {line}: the `{label}` block is not valid base64")]
    Base64 { label: String, line: usize },
}

const BEGIN: &str = "-----BEGIN ";
const END: &str = "-----END ";
const DASHES: &str = "-----";

/// Splits a PEM file into its blocks, in order.
pub fn parse(text: &str) -> Result<Vec<Block>, PemError> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let number = index + 1;
        match &mut open {
            None => {
                if let Some(label) = marker(line, BEGIN) {
                    open = Some((label.to_string(), number, String::new()));
                }
            }
            Some((label, begin, body)) => {
                if let Some(found) = marker(line, END) {
                    if found != label.as_str() {
                        return Err(PemError::Mismatched {
                            label: label.clone(),
                            found: found.to_string(),
                            line: number,
                        });
                    }
                    let der = STANDARD
                        .decode(body.as_bytes())
                        .map_err(|_| PemError::Base64 {
                            label: label.clone(),
                            line: *begin,
                        })?;
                    blocks.push(Block {
                        label: std::mem::take(label),
                        der,
                        line: *begin,
                    });
                    open = None;
                } else if marker(line, BEGIN).is_some() {
                    return Err(PemError::Unterminated {
                        label: label.clone(),
                        line: *begin,
                    });
                } else if !line.contains(':') {
                    // RFC 1421 headers (`Proc-Type:`) only appear in encrypted keys, which are
                    // refused later by label; everything else is base64.
                    body.push_str(line);
                }
            }
        }
    }
    if let Some((label, line, _)) = open {
        return Err(PemError::Unterminated { label, line });
    }
    if blocks.is_empty() {
        return Err(PemError::Empty);
    }
    Ok(blocks)
}

fn marker<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    line.strip_prefix(prefix)?.strip_suffix(DASHES)
}

/// Encodes one block the way OpenSSL does: 64 columns, `\n` line ends.
pub fn encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 2 * label.len() + 40);
    out.push_str(BEGIN);
    out.push_str(label);
    out.push_str(DASHES);
    out.push('\n');
    for chunk in body.as_bytes().chunks(64) {
        // Base64 is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(END);
    out.push_str(label);
    out.push_str(DASHES);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_text_around_blocks() {
        let der: Vec<u8> = (0u8..=200).collect();
        let pem = encode("CERTIFICATE", &der);
        let text = format!("Bag Attributes\n    localKeyID: 01\n{pem}\r\n{pem}");
        let blocks = parse(&text).expect("parses");
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].der, der);
        assert_eq!(blocks[0].line, 3);
        assert!(pem.lines().all(|l| l.len() <= 64));
    }

    #[test]
    fn names_the_line_of_a_truncated_block() {
        let pem = encode("CERTIFICATE", &[1, 2, 3, 4, 5]);
        let cut = &pem[..pem.len() - 20];
        assert_eq!(
            parse(cut).map(|_| ()),
            Err(PemError::Unterminated {
                label: "CERTIFICATE".into(),
                line: 1
            })
        );
        assert_eq!(parse("hello\n").map(|_| ()), Err(PemError::Empty));
        let bad = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(parse(bad), Err(PemError::Base64 { line: 1, .. })));
    }
}
