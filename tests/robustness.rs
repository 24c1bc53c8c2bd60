//! No input panics: random edits of a valid topology (characters deleted, inserted or
//! replaced, lines duplicated or dropped) always end in a result whose diagnostics point
//! inside the file, never in a panic.

use meshc::compiler;
use meshc::source::Source;
use proptest::prelude::*;

const BASE: &str = include_str!("fixtures/ten-errors.yaml");

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, String),
    DuplicateLine(usize),
    DropLine(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let piece = prop::sample::select(vec![
        ":",
        "- ",
        "  ",
        "\t",
        "[",
        "]",
        "{",
        "}",
        "*a",
        "&a ",
        "\"",
        "'",
        "#",
        "\n",
        "null",
        "~",
        "1.30",
        "yes",
        "-1",
        "99999999999999999999",
        "/",
        "*",
        "é",
        "<<: *a",
        "? ",
        "!!binary ",
        "|",
        ">",
        "---\n",
        "...",
    ])
    .prop_map(str::to_string);
    prop_oneof![
        (any::<usize>(), 1usize..20).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), piece).prop_map(|(at, s)| Edit::Insert(at, s)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        any::<usize>().prop_map(Edit::DropLine),
    ]
}

fn apply(text: &str, e: &Edit) -> String {
    let boundary = |at: usize| {
        let mut i = at % (text.len() + 1);
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    match e {
        Edit::Delete(at, n) => {
            let a = boundary(*at);
            let b = boundary(a.saturating_add(*n).min(text.len()));
            format!("{}{}", &text[..a], &text[b.max(a)..])
        }
        Edit::Insert(at, s) => {
            let a = boundary(*at);
            format!("{}{s}{}", &text[..a], &text[a..])
        }
        Edit::DuplicateLine(i) | Edit::DropLine(i) => {
            let mut lines: Vec<&str> = text.lines().collect();
            if lines.is_empty() {
                return text.to_string();
            }
            let i = i % lines.len();
            if matches!(e, Edit::DuplicateLine(_)) {
                lines.insert(i, lines[i]);
            } else {
                lines.remove(i);
            }
            lines.join("\n") + "\n"
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn edited_topologies_never_panic(edits in prop::collection::vec(edit(), 1..6)) {
        let mut text = BASE.to_string();
        for e in &edits {
            text = apply(&text, e);
        }
        let len = text.len();
        let checked = compiler::check(Source::new("t.yaml", "t.yaml", text));
        // Both renderings must cope with whatever spans the diagnostics carry.
        let human = meshc::diagnostic::render_human(&checked.diagnostics, &checked.source, false);
        let json = meshc::diagnostic::render_json(&checked.diagnostics, Some(&checked.source));
        prop_assert!(checked.diagnostics.is_empty() || !human.is_empty());
        prop_assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
        for d in &checked.diagnostics {
            for l in &d.labels {
                prop_assert!(l.span.offset + l.span.len <= len, "{d:?} outside the file");
            }
        }
    }
}
