//! The three forms of an [`Explanation`]: a table for people, JSON in the shape EXPLAIN.md
//! fixes, and Markdown for a pull-request comment or a runbook.

use std::fmt::Write as _;

use super::{Explanation, Level};

/// One JSON object, pretty-printed, with a final newline.
pub fn json(e: &Explanation) -> String {
    let mut s = serde_json::to_string_pretty(e).unwrap_or_else(|_| "{}".to_string());
    s.push('\n');
    s
}

fn heading(e: &Explanation) -> String {
    let locality = if e.source.locality.is_empty() {
        "no locality".to_string()
    } else {
        e.source.locality.clone()
    };
    format!(
        "{} port {} from {} ({locality}, {})",
        e.service, e.port, e.source.cluster, e.source.network
    )
}

fn policy_line(e: &Explanation) -> String {
    let rule = e.destination_rule.as_ref().map_or_else(
        || "no DestinationRule".to_string(),
        |r| format!("DestinationRule {r}"),
    );
    format!("{rule}; mode {}", e.mode.as_str())
}

fn share(p: f64) -> String {
    format!("{p:.1}%")
}

fn via(gateway: bool) -> &'static str {
    if gateway {
        "east-west gateway"
    } else {
        "direct"
    }
}

/// Aligned columns, one block per priority level.
pub fn human(e: &Explanation) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", heading(e));
    let _ = writeln!(out, "{}", policy_line(e));
    if !e.down.is_empty() {
        let _ = writeln!(out, "down: {}", e.down.join(", "));
    }
    if e.levels.is_empty() {
        let _ = writeln!(out, "\nno endpoint is reachable: requests fail");
    }
    for level in &e.levels {
        let _ = writeln!(out, "\npriority {}{}", level.priority, level_hint(level));
        let rows: Vec<[String; 5]> = level
            .groups
            .iter()
            .map(|g| {
                [
                    share(g.share_percent),
                    g.cluster.clone(),
                    g.locality.clone(),
                    format!("{} ({})", g.network, via(g.via_gateway)),
                    g.reason.clone(),
                ]
            })
            .collect();
        let mut widths = [0usize; 5];
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in &rows {
            let mut line = String::from("  ");
            for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
                if i == 0 {
                    let _ = write!(line, "{cell:>w$}  ");
                } else if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:<w$}  ");
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    if !e.unreachable.is_empty() {
        let _ = writeln!(out, "\nunreachable:");
        for u in &e.unreachable {
            let _ = writeln!(out, "  {}: {}", u.cluster, u.reason);
        }
    }
    if !e.notes.is_empty() {
        let _ = writeln!(out, "\nnotes:");
        for n in &e.notes {
            let _ = writeln!(out, "  - {n}");
        }
    }
    out
}

fn level_hint(level: &Level) -> &'static str {
    if level.priority == 0 {
        " (while it has healthy endpoints)"
    } else {
        " (when every level above has no healthy endpoint)"
    }
}

/// Markdown: a heading, one table per level, then what is unreachable and the notes.
pub fn markdown(e: &Explanation) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### `{}`\n", heading(e));
    let _ = writeln!(out, "{}", policy_line(e));
    if !e.down.is_empty() {
        let _ = writeln!(
            out,
            "\nDown: {}",
            e.down
                .iter()
                .map(|d| format!("`{d}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if e.levels.is_empty() {
        let _ = writeln!(out, "\n**No endpoint is reachable: requests fail.**");
    }
    for level in &e.levels {
        let _ = writeln!(
            out,
            "\n**Priority {}**{}\n",
            level.priority,
            level_hint(level)
        );
        let _ = writeln!(out, "| share | cluster | locality | network | reason |");
        let _ = writeln!(out, "|---:|---|---|---|---|");
        for g in &level.groups {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} ({}) | {} |",
                share(g.share_percent),
                cell(&g.cluster),
                cell(&g.locality),
                cell(&g.network),
                via(g.via_gateway),
                cell(&g.reason)
            );
        }
    }
    if !e.unreachable.is_empty() {
        let _ = writeln!(out, "\n**Unreachable**\n");
        for u in &e.unreachable {
            let _ = writeln!(out, "- `{}`: {}", u.cluster, u.reason);
        }
    }
    if !e.notes.is_empty() {
        let _ = writeln!(out, "\n**Notes**\n");
        for n in &e.notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}

/// A table cell: pipes escaped.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}
