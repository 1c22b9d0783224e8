//! `inspect --tree --svg FILE`: the nested PID namespaces as nested boxes,
//! for a projector.
//!
//! The host is the outer frame; each PID namespace level is a box inside
//! the one before (a process has a PID in its own namespace and in every
//! ancestor, so the boxes nest). A process is drawn in the box of its own
//! (innermost) namespace, in a row at that box's top, with its PIDs from
//! the host inwards, and what it does with the stop signal; its border
//! says what that signal would do to it now (dropped, handled, ignored,
//! queued, killed). A line joins each process to its parent. The SVG is
//! self-contained, as the trace's picture is (`picture/`).

use std::fmt::Write;

use super::Node;
use crate::observe::picture::{FONT, Fate, escape};
use crate::procfs;

const WIDTH: f64 = 1280.0;
const MARGIN: f64 = 20.0;
/// How far each level's box sits inside the one around it.
const INSET: f64 = 24.0;
/// The narrowest a process's box is; wider when its label needs it.
const NODE_WIDTH: f64 = 250.0;
const NODE_HEIGHT: f64 = 70.0;
const NODE_GAP: f64 = 20.0;
/// The room for a box's label, and between a row of processes and the next.
const LABEL: f64 = 34.0;
const BELOW_ROW: f64 = 26.0;
const TITLE: f64 = 60.0;
/// The key below the boxes.
const LEGEND: f64 = 64.0;

/// What the stop signal would do, the trace picture's fate whose colour
/// the border takes (one palette for both pictures, `picture/fate.rs`),
/// and its words in the legend.
const OUTCOMES: [(&str, Fate, &str); 6] = [
    ("handled", Fate::Handler, "handled: a handler runs"),
    ("killed", Fate::DefaultAction, "default action: it ends (or stops)"),
    ("dropped", Fate::DroppedAtInit, "dropped: PID 1 without a handler"),
    ("queued", Fate::Blocked, "queued: blocked, or awaited by sigwait"),
    ("ignored", Fate::Ignored, "ignored"),
    ("exited", Fate::Ignored, "a zombie: already exited"),
];

fn colour(outcome: &str) -> &'static str {
    OUTCOMES.iter().find(|(o, ..)| *o == outcome).map_or(Fate::DefaultAction, |(_, fate, _)| *fate).colour()
}

/// About the width of `text` at `size` px in a sans-serif bold face.
fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.62
}

/// A process and where it is drawn.
struct Placed<'a> {
    node: &'a Node,
    /// Its namespace level: the length of its NSpid less one (0: the host).
    level: usize,
    /// Its depth in the tree: its row.
    depth: usize,
    parent: Option<usize>,
    x: f64,
    y: f64,
}

/// The processes in depth-first order, each with its parent's index.
fn flatten<'a>(node: &'a Node, depth: usize, parent: Option<usize>, out: &mut Vec<Placed<'a>>) {
    let index = out.len();
    let level = node.nspid.len().saturating_sub(1);
    out.push(Placed { node, level, depth, parent, x: 0.0, y: 0.0 });
    for child in &node.children {
        flatten(child, depth + 1, Some(index), out);
    }
}

/// The two lines of a process's box.
fn labels(node: &Node, signal: &str) -> [String; 2] {
    let pids = procfs::pids_text(node.nspid.iter().copied());
    [format!("{} {}", node.comm, pids), format!("{signal}: {} → {}", node.disposition, node.outcome)]
}

pub fn render(title: &str, root: &Node, signal: &str) -> String {
    let mut placed = Vec::new();
    flatten(root, 0, None, &mut placed);
    // One width for every box: the widest label's, at least NODE_WIDTH.
    let node_width = placed
        .iter()
        .map(|p| {
            let [first, second] = labels(p.node, signal);
            text_width(&first, 18.0).max(text_width(&second, 16.0)) + 24.0
        })
        .fold(NODE_WIDTH, f64::max);
    // One row per depth in the tree, drawn in the box of its deepest level
    // (a child's level is never above its parent's).
    let depths = placed.iter().map(|p| p.depth).max().unwrap_or(0) + 1;
    let row_level: Vec<usize> = (0..depths)
        .map(|d| placed.iter().filter(|p| p.depth == d).map(|p| p.level).max().unwrap_or(0))
        .collect();
    let last = row_level.iter().copied().max().unwrap_or(0);
    // Top to bottom: the host's label, then each row, preceded by the
    // labels of the levels it opens.
    let mut box_top = vec![TITLE; last + 1];
    let mut y = TITLE + LABEL;
    let mut open = 0;
    let mut row_top = Vec::new();
    for &level in &row_level {
        while open < level {
            open += 1;
            box_top[open] = y;
            y += LABEL;
        }
        row_top.push(y);
        y += NODE_HEIGHT + BELOW_ROW;
    }
    let inner_bottom = y;
    let left_of = |level: usize| MARGIN + INSET * level as f64 + 12.0;
    let widest = (0..depths)
        .map(|d| {
            let count = placed.iter().filter(|p| p.depth == d).count() as f64;
            2.0 * left_of(row_level[d]) + count * node_width + (count - 1.0).max(0.0) * NODE_GAP
        })
        .fold(WIDTH, f64::max);
    let height = inner_bottom + INSET * last as f64 + MARGIN + LEGEND;
    for (d, top) in row_top.iter().enumerate() {
        let mut x = left_of(row_level[d]);
        for p in placed.iter_mut().filter(|p| p.depth == d) {
            (p.x, p.y) = (x, *top);
            x += node_width + NODE_GAP;
        }
    }

    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{widest:.0}" height="{height:.0}" viewBox="0 0 {widest:.0} {height:.0}" font-family="{FONT}">"#
    );
    let _ = write!(out, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = write!(
        out,
        r##"<text x="{MARGIN}" y="36" font-size="24" font-weight="bold" fill="#1b1b1b">{}</text>"##,
        escape(title)
    );
    // The host, then each level inside the one before; an inner box ends
    // INSET above the one around it.
    let mut box_labels = Vec::new();
    for level in 0..=last {
        let inset = INSET * level as f64;
        let (x, w) = (MARGIN + inset, widest - 2.0 * (MARGIN + inset));
        let top = box_top[level];
        let h = inner_bottom + INSET * (last - level) as f64 - top;
        let (shade, label) = match level {
            0 => ("#f4f6f7", "host".to_string()),
            _ => (
                ["#eaf2f8", "#d6eaf8", "#aed6f1", "#85c1e9"][(level - 1) % 4],
                format!("PID namespace level {level}"),
            ),
        };
        let _ = write!(
            out,
            r##"<g class="namespace" data-level="{level}"><rect x="{x:.1}" y="{top:.1}" width="{w:.1}" height="{h:.1}" rx="10" fill="{shade}" stroke="#2e4053" stroke-width="2"/></g>"##
        );
        box_labels.push((x + 12.0, top + 24.0, label, shade));
    }
    // Parent to child, under the labels and the processes.
    for p in &placed {
        if let Some(parent) = p.parent.map(|i| &placed[i]) {
            let _ = write!(
                out,
                r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#424949" stroke-width="2"/>"##,
                parent.x + node_width / 2.0,
                parent.y + NODE_HEIGHT,
                p.x + node_width / 2.0,
                p.y
            );
        }
    }
    // Each label over the lines, on a halo of its box's shade.
    for (x, y, label, shade) in box_labels {
        let _ = write!(
            out,
            r##"<text x="{x:.1}" y="{y:.1}" font-size="18" fill="#1b1b1b" stroke="{shade}" stroke-width="8" paint-order="stroke">{label}</text>"##
        );
    }
    for p in &placed {
        let node = p.node;
        let border = colour(node.outcome);
        let _ = write!(
            out,
            r##"<g class="process" data-host-pid="{}" data-level="{}" data-outcome="{}"><rect x="{:.1}" y="{:.1}" width="{node_width:.1}" height="{NODE_HEIGHT}" rx="8" fill="#ffffff" stroke="{border}" stroke-width="4"/>"##,
            node.host_pid, p.level, node.outcome, p.x, p.y
        );
        let [first, second] = labels(node, signal);
        let lines = [(first, "18", "bold", "#1b1b1b"), (second, "16", "normal", border)];
        for (i, (text, size, weight, fill)) in lines.iter().enumerate() {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" font-size="{size}" font-weight="{weight}" fill="{fill}">{}</text>"#,
                p.x + 12.0,
                p.y + 28.0 + 26.0 * i as f64,
                escape(text)
            );
        }
        out.push_str("</g>");
    }
    // The key: what the numbers and the colours mean.
    let key_top = height - LEGEND;
    let _ = write!(
        out,
        r##"<text x="{MARGIN}" y="{:.1}" font-size="16" fill="#1b1b1b">PIDs: host / level 1 / level 2 ... (one in each namespace it is in). Border: what {signal} sent now would do.</text>"##,
        key_top + 20.0
    );
    let mut x = MARGIN;
    for (outcome, fate, legend) in OUTCOMES {
        let colour = fate.colour();
        if !placed.iter().any(|p| p.node.outcome == outcome) {
            continue;
        }
        let _ = write!(
            out,
            r##"<rect x="{x:.1}" y="{:.1}" width="28" height="16" rx="3" fill="#ffffff" stroke="{colour}" stroke-width="4"/><text x="{:.1}" y="{:.1}" font-size="16" fill="{colour}">{}</text>"##,
            key_top + 34.0,
            x + 36.0,
            key_top + 48.0,
            escape(legend)
        );
        x += 36.0 + text_width(legend, 16.0) * 0.9 + 24.0;
    }
    out.push_str("</svg>\n");
    out
}
