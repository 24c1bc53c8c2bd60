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

use serde::de::DeserializeOwned;

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
}
