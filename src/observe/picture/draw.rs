//! The SVG pieces: arrows, lifelines, namespace boxes, the legend, text.

use std::fmt::Write;

use super::{Fate, LEVEL, Lane, MARGIN, WIDTH};

pub(super) fn arrow(out: &mut String, from: f64, to: f64, y: f64, signal: &str, code: i64, fate: Fate) {
    let colour = fate.colour();
    let dash = if fate.arrives() { "" } else { r#" stroke-dasharray="9 6""# };
    let label = format!("{signal} {}", fate.label());
    let _ = write!(
        out,
        r#"<g class="signal" data-fate="{id}" data-signal="{signal}" data-code="{code}">"#,
        id = fate.id()
    );
    if (to - from).abs() < 1.0 {
        // Sent to itself: a loop to the right.
        let _ = write!(
            out,
            r#"<path d="M{from:.1},{a:.1} h36 v14 h-30" fill="none" stroke="{colour}" stroke-width="3"{dash}/>"#,
            a = y - 7.0
        );
        head(out, from + 6.0, y + 7.0, -1.0, colour);
        text(out, from + 44.0, y + 5.0, "start", colour, &label);
    } else {
        let dir = (to - from).signum();
        // A signal that never arrives stops short of its target, with a bar.
        let end = if fate.arrives() { to - dir * 2.0 } else { to - dir * 18.0 };
        let _ = write!(
            out,
            r#"<line x1="{from:.1}" y1="{y:.1}" x2="{end:.1}" y2="{y:.1}" stroke="{colour}" stroke-width="3"{dash}/>"#
        );
        if fate.arrives() {
            head(out, end, y, dir, colour);
        } else {
            let _ = write!(
                out,
                r#"<line x1="{end:.1}" y1="{a:.1}" x2="{end:.1}" y2="{b:.1}" stroke="{colour}" stroke-width="4"/>"#,
                a = y - 9.0,
                b = y + 9.0
            );
        }
        text(out, (from + to) / 2.0, y - 7.0, "middle", colour, &label);
    }
    out.push_str("</g>");
}

pub(super) fn head(out: &mut String, tip: f64, y: f64, dir: f64, colour: &str) {
    let back = tip - dir * 14.0;
    let _ = write!(
        out,
        r#"<polygon points="{tip:.1},{y:.1} {back:.1},{a:.1} {back:.1},{b:.1}" fill="{colour}"/>"#,
        a = y - 7.0,
        b = y + 7.0
    );
}

/// Text with a white halo, readable across the lines it crosses, moved
/// left or right as needed to stay inside the picture.
pub(super) fn text(out: &mut String, x: f64, y: f64, anchor: &str, colour: &str, words: &str) {
    // Bold 16 px DejaVu Sans: about 10 px a character.
    let width = 10.0 * words.chars().count() as f64;
    let left = match anchor {
        "middle" => x - width / 2.0,
        "end" => x - width,
        _ => x,
    };
    let x = x + (MARGIN - left).max(0.0) - (left + width - (WIDTH - MARGIN)).max(0.0);
    let _ = write!(
        out,
        r##"<text x="{x:.1}" y="{y:.1}" font-size="16" font-weight="bold" text-anchor="{anchor}" fill="{colour}" stroke="#ffffff" stroke-width="4" stroke-linejoin="round" paint-order="stroke">{}</text>"##,
        escape(words)
    );
}

/// A signal taken whose sending the trace did not see.
pub(super) fn mark_taken(out: &mut String, x: f64, y: f64, label: &str) {
    let _ = write!(out, r##"<g class="taken"><circle cx="{x:.1}" cy="{y:.1}" r="6" fill="#0b57d0"/>"##);
    text(out, x + 12.0, y + 5.0, "start", "#0b57d0", label);
    out.push_str("</g>");
}

pub(super) fn cross(out: &mut String, x: f64, y: f64) {
    let (a, b, c, d) = (x - 9.0, x + 9.0, y - 9.0, y + 9.0);
    let _ = write!(
        out,
        r##"<g class="exit"><path d="M{a:.1},{c:.1} L{b:.1},{d:.1} M{a:.1},{d:.1} L{b:.1},{c:.1}" stroke="#111" stroke-width="4"/>"##
    );
    text(out, x + 14.0, y + 5.0, "start", "#111", "exited");
    out.push_str("</g>");
}

/// A box per PID namespace level around the lifelines that live in it or
/// deeper; the host's processes stay outside.
pub(super) fn namespace_boxes(
    out: &mut String,
    lanes: &[Lane],
    column: f64,
    depth: usize,
    top: f64,
    bottom: f64,
) {
    if lanes.first().is_some_and(|l| l.who.depth() == 0) {
        let _ = write!(
            out,
            r##"<text x="{x:.1}" y="{y:.1}" font-size="16" font-weight="bold" fill="#444" text-anchor="middle">host</text>"##,
            x = lanes[0].x,
            y = top + 18.0
        );
    }
    for level in 1..=depth {
        let inside: Vec<&Lane> = lanes.iter().filter(|l| l.who.depth() >= level).collect();
        let (Some(first), Some(last)) = (inside.first(), inside.last()) else { continue };
        let inset = 6.0 * level as f64;
        let (x, y) = (first.x - column / 2.0 + inset, top + LEVEL * (level - 1) as f64);
        let (w, h) =
            (last.x - first.x + column - 2.0 * inset, bottom - y + 10.0 * (depth - level + 1) as f64);
        let fill = if level % 2 == 1 { "#eef3fb" } else { "#e3ecf8" };
        let _ = write!(
            out,
            r##"<g class="namespace" data-level="{level}"><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" rx="8" fill="{fill}" stroke="#5a7bb5" stroke-width="2"/><text x="{tx:.1}" y="{ty:.1}" font-size="16" font-weight="bold" fill="#23406e">PID namespace, level {level}</text></g>"##,
            tx = x + 10.0,
            ty = y + 19.0
        );
    }
}

pub(super) fn lifeline(out: &mut String, lane: &Lane, column: f64, top: f64, bottom: f64) {
    let who = &lane.who;
    // Keep the label inside its column (about 10 px a character at 17 px).
    let fit = ((column - 12.0) / 10.0).max(4.0) as usize;
    let comm = shorten(who.name(), fit);
    let pids = shorten(&who.pids(), fit);
    let (x, end) = (lane.x, lane.ends.unwrap_or(bottom));
    let w = (column - 16.0).min(200.0);
    let _ = write!(
        out,
        r##"<g class="lifeline" data-host-pid="{hp}" data-pids="{all}" data-comm="{c}"><line x1="{x:.1}" y1="{l:.1}" x2="{x:.1}" y2="{end:.1}" stroke="#444" stroke-width="2"/><rect x="{rx:.1}" y="{top:.1}" width="{w:.1}" height="48" rx="6" fill="#ffffff" stroke="#444" stroke-width="2"/><text x="{x:.1}" y="{t1:.1}" font-size="17" font-weight="bold" fill="#111" text-anchor="middle">{comm}</text><text x="{x:.1}" y="{t2:.1}" font-size="15" fill="#333" text-anchor="middle">{pids}</text></g>"##,
        hp = who.host_pid,
        all = escape(&who.pids()),
        c = escape(who.name()),
        l = top + 48.0,
        rx = x - w / 2.0,
        t1 = top + 20.0,
        t2 = top + 40.0,
        comm = escape(&comm),
        pids = escape(&pids),
    );
}

/// A row of swatches for the fates this trace shows; returns the rows used.
pub(super) fn legend(out: &mut String, present: &[Fate], top: f64) -> usize {
    let (mut x, mut rows) = (MARGIN, 1);
    for fate in present {
        // Bold 16 px DejaVu Sans: under 10 px a character.
        let width = 44.0 + 9.6 * fate.legend().chars().count() as f64 + 28.0;
        if x + width > WIDTH - MARGIN {
            x = MARGIN;
            rows += 1;
        }
        let y = top + 26.0 * (rows - 1) as f64;
        let dash = if fate.arrives() { "" } else { r#" stroke-dasharray="9 6""# };
        let _ = write!(
            out,
            r#"<g class="legend"><line x1="{x:.1}" y1="{y:.1}" x2="{x2:.1}" y2="{y:.1}" stroke="{c}" stroke-width="4"{dash}/><text x="{tx:.1}" y="{ty:.1}" font-size="16" fill="{c}" font-weight="bold">{words}</text></g>"#,
            x2 = x + 36.0,
            c = fate.colour(),
            tx = x + 44.0,
            ty = y + 5.0,
            words = fate.legend()
        );
        x += width;
    }
    if present.is_empty() { 0 } else { rows }
}

/// Cut `text` to `max` characters, marking the cut with an ellipsis.
pub(super) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// Break `text` into lines of at most `width` characters, at spaces.
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("one line at least");
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

/// Text made safe for XML: a process may call itself `<script>`.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
