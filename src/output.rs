//! How pidlab's reports leave the program: aligned tables for people, JSON
//! for tools. The JSON convention, the same for every verb, is written down
//! once, in the README ("JSON output"): a stream (`trace`, `explain`, `logs`) is one
//! object per line; anything else is one document; the same things have the
//! same names everywhere (`name`, `state`, `pid1.host_pid`, `exit_code`,
//! `signal`).

use serde_json::Value;

/// Whether pidlab may colour what it prints: only on a terminal, and never
/// when `NO_COLOR` is set to anything but the empty string (no-color.org).
/// clap decides the same way for `--help` and usage errors.
pub fn colour() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && nix::unistd::isatty(std::io::stdout()).unwrap_or(false)
}

/// `text` with every control character written as an escape (`\x1b`,
/// `\n`), for text that came from a workload: a process name or command
/// line is whatever the workload made it, and printed raw it could move the
/// cursor, rewrite earlier lines or forge a line of pidlab's own. JSON
/// output needs no such care: serde_json escapes control characters.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() || reorders(c)) {
        return text.into();
    }
    text.chars()
        .map(|c| match c {
            '\n' => "\\n".to_string(),
            '\t' => "\\t".to_string(),
            c if c.is_control() => format!("\\x{:02x}", c as u32),
            c if reorders(c) => format!("\\u{{{:04x}}}", c as u32),
            c => c.to_string(),
        })
        .collect::<String>()
        .into()
}

/// Unicode's invisible direction marks and overrides (LRM, RLM, ALM, the
/// embeddings, overrides and isolates): they reorder what a terminal
/// shows after them, so a listing could read differently from what it is.
fn reorders(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Print one JSON document (a verb's whole answer).
pub fn document(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).expect("a JSON value serialises"));
}

/// Print one JSON object of a stream, on a line of its own.
pub fn line(value: &Value) {
    println!("{value}");
}

/// Rows as a table: every column as wide as its widest cell, two spaces
/// between columns, the last column unpadded. `right` names the columns
/// aligned to the right (numbers).
pub fn table(rows: &[Vec<String>], right: &[usize]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| printable(cell).chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().map(|cell| printable(cell)).enumerate() {
            let pad = widths[c] - cell.chars().count();
            let last = c + 1 == row.len();
            if right.contains(&c) {
                line.push_str(&" ".repeat(pad));
                line.push_str(&cell);
            } else {
                line.push_str(&cell);
                if !last {
                    line.push_str(&" ".repeat(pad));
                }
            }
            if !last {
                line.push_str("  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let rows = vec![
            vec!["NAME".to_string(), "PID".into(), "CMD".into()],
            vec!["a-long-name".to_string(), "7".into(), "sleep 1".into()],
            vec!["b".to_string(), "12345".into(), "x".into()],
        ];
        assert_eq!(
            table(&rows, &[1]),
            "NAME           PID  CMD\na-long-name      7  sleep 1\nb            12345  x\n"
        );
    }

    #[test]
    fn control_characters_from_a_workload_are_shown_escaped() {
        assert_eq!(printable("redis-server *:6379"), "redis-server *:6379");
        assert_eq!(printable("a\x1b[2Jb\nc\u{9b}"), "a\\x1b[2Jb\\nc\\x9b");
        assert_eq!(printable("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        let rows = vec![vec!["x\x07".to_string(), "y".into()], vec!["long".to_string(), "z".into()]];
        assert_eq!(table(&rows, &[]), "x\\x07  y\nlong   z\n");
    }
}
