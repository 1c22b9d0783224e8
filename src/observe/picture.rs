//! `trace --svg FILE`: the trace as a sequence diagram for a projector.
//!
//! One vertical lifeline per process, the host's processes on the left and
//! the sandbox's in a box per PID namespace level (pid_namespaces(7): a
//! process has a PID in its own namespace and in every ancestor, so the
//! boxes nest). Time runs down, in seconds. Every signal is one arrow from
//! its sender to its target, coloured by what became of it: taken by a
//! handler or at its default action, dropped at a PID 1 that has no handler
//! for it, left blocked, SIGKILL from an ancestor namespace (which PID 1
//! cannot refuse), or the kernel's own SIGKILL (`code=128`, SI_KERNEL) when
//! a namespace's init has died. Exits are crosses that end a lifeline; the
//! trace's verdict is the caption.
//!
//! Each event gets a row of its own, so ten signals in one millisecond are
//! stacked, not drawn over each other; rows are otherwise placed by their
//! time, so gaps in time are gaps on the page. The SVG is self-contained:
//! no script, no external font or style sheet (DejaVu Sans is Debian's
//! default sans-serif, and any sans-serif will do).
//!
//! This file uses only `event.rs`, so a benchmark can compile the two on
//! their own (`benches/picture.rs`).

use std::collections::HashMap;
use std::fmt::Write;

use super::event::{Event, Kind, Outcome, Who};

/// The width the picture is drawn for: a projector's 1280×720.
const WIDTH: f64 = 1280.0;
const SCREEN_HEIGHT: f64 = 720.0;
/// The column of times on the left.
const TIME_COLUMN: f64 = 120.0;
const MARGIN: f64 = 20.0;
/// The least vertical room one event takes: its label, its line, a gap.
const ROW: f64 = 34.0;
/// The room a namespace box's title takes above the box inside it.
const LEVEL: f64 = 28.0;
const HEADER: f64 = 54.0;
const FONT: &str = "DejaVu Sans, Verdana, Arial, sans-serif";

/// What became of one signal, as the picture tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fate {
    Handler,
    DefaultAction,
    DeliveredIgnored,
    DroppedAtInit,
    Blocked,
    AncestorKill,
    Teardown,
    Ignored,
    AlreadyPending,
    Lost,
}

impl Fate {
    /// Every fate, in the legend's order.
    const ALL: [Fate; 10] = [
        Fate::Handler,
        Fate::DefaultAction,
        Fate::DroppedAtInit,
        Fate::Blocked,
        Fate::AncestorKill,
        Fate::Teardown,
        Fate::DeliveredIgnored,
        Fate::Ignored,
        Fate::AlreadyPending,
        Fate::Lost,
    ];

    /// The word kept in the SVG (`data-fate`), for tests and style sheets.
    pub fn id(self) -> &'static str {
        match self {
            Fate::Handler => "handler",
            Fate::DefaultAction => "default",
            Fate::DeliveredIgnored => "delivered-ignored",
            Fate::DroppedAtInit => "dropped",
            Fate::Blocked => "blocked",
            Fate::AncestorKill => "ancestor-kill",
            Fate::Teardown => "teardown",
            Fate::Ignored => "ignored",
            Fate::AlreadyPending => "pending",
            Fate::Lost => "lost",
        }
    }

    /// What the arrow says after the signal's name.
    fn label(self) -> &'static str {
        match self {
            Fate::Handler => "→ handler",
            Fate::DefaultAction => "→ default action",
            Fate::DeliveredIgnored => "→ delivered, ignored",
            Fate::DroppedAtInit => "dropped at PID 1",
            Fate::Blocked => "queued, not delivered",
            Fate::AncestorKill => "from an ancestor: PID 1 cannot refuse it",
            Fate::Teardown => "teardown kill, code=128",
            Fate::Ignored => "ignored",
            Fate::AlreadyPending => "already pending",
            Fate::Lost => "lost: queue full",
        }
    }

    /// The legend's words.
    fn legend(self) -> &'static str {
        match self {
            Fate::Handler => "delivered to a handler",
            Fate::DefaultAction => "delivered, default action",
            Fate::DeliveredIgnored => "delivered while ignored",
            Fate::DroppedAtInit => "dropped at PID 1 (no handler)",
            Fate::Blocked => "queued, not delivered: blocked, or taken by sigwait",
            Fate::AncestorKill => "SIGKILL from an ancestor",
            Fate::Teardown => "kernel teardown kill (code=128)",
            Fate::Ignored => "ignored",
            Fate::AlreadyPending => "already pending",
            Fate::Lost => "lost",
        }
    }

    /// Dark colours that keep their contrast on white, told apart by hue
    /// and, for the signals that never arrive, by a dashed line.
    fn colour(self) -> &'static str {
        match self {
            Fate::Handler => "#1a7f37",
            Fate::DefaultAction => "#0b57d0",
            Fate::DeliveredIgnored => "#5f6368",
            Fate::DroppedAtInit => "#c5221f",
            Fate::Blocked => "#9a5b00",
            Fate::AncestorKill => "#d14900",
            Fate::Teardown => "#7b1fa2",
            Fate::Ignored | Fate::AlreadyPending | Fate::Lost => "#5f6368",
        }
    }

    fn arrives(self) -> bool {
        !matches!(
            self,
            Fate::DroppedAtInit | Fate::Blocked | Fate::Ignored | Fate::AlreadyPending | Fate::Lost
        )
    }
}

/// Each signal_deliver matched with the signal_generate it took (by index,
/// generate -> deliver): the oldest queued one of that signal to that process.
///
/// A signal whose default action ends a process is not delivered under its
/// own name: when it is queued the kernel turns it into a SIGKILL for every
/// thread (complete_signal() in kernel/signal.c), so the target is seen
/// taking a SIGKILL nobody sent. That SIGKILL takes the oldest signal
/// queued to it.
fn taken(events: &[Event]) -> HashMap<usize, usize> {
    let mut queued: HashMap<(i32, &str), std::collections::VecDeque<usize>> = HashMap::new();
    let mut taken = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        match &e.kind {
            Kind::Generate { signal, res: 0, .. } => {
                queued.entry((e.target.host_pid, signal)).or_default().push_back(i)
            }
            Kind::Deliver { signal } => {
                let pid = e.target.host_pid;
                let mut sent = queued.get_mut(&(pid, signal.as_str())).and_then(|q| q.pop_front());
                if sent.is_none() && e.outcome == Outcome::Killed {
                    sent = queued
                        .iter_mut()
                        .filter(|((to, _), waiting)| *to == pid && !waiting.is_empty())
                        .min_by_key(|(_, waiting)| waiting[0])
                        .and_then(|(_, waiting)| waiting.pop_front());
                }
                if let Some(sent) = sent {
                    taken.insert(sent, i);
                }
            }
            Kind::Generate { .. } | Kind::Exit => {}
        }
    }
    taken
}

/// The fate of each signal_generate event (by index), from its own outcome
/// and the signal_deliver that took it (`taken`), if one did.
fn fates(events: &[Event], taken: &HashMap<usize, usize>) -> HashMap<usize, Fate> {
    let mut fates = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let Kind::Generate { signal, sender, res, .. } = &e.kind else { continue };
        let fate = match (res, e.outcome) {
            (_, Outcome::QueuedTeardown) => Fate::Teardown,
            (_, outcome) if outcome.is_dropped_at_init() => Fate::DroppedAtInit,
            (0, _) if signal == "SIGKILL" && !sender.inside => Fate::AncestorKill,
            (0, _) => match taken.get(&i).map(|&d| events[d].outcome) {
                Some(Outcome::Handler) => Fate::Handler,
                Some(Outcome::DeliveredIgnored) => Fate::DeliveredIgnored,
                Some(_) => Fate::DefaultAction,
                None => Fate::Blocked,
            },
            (1, _) => Fate::Ignored,
            (2, _) => Fate::AlreadyPending,
            _ => Fate::Lost,
        };
        fates.insert(i, fate);
    }
    fates
}

/// A lifeline: one process, one column.
struct Lane {
    who: Who,
    x: f64,
    /// Where its exit was drawn, if it exited.
    ends: Option<f64>,
}

/// The picture of a trace: `title` on top, `verdict` as the caption.
pub fn svg(title: &str, events: &[Event], verdict: &str) -> String {
    let lanes = lanes(events);
    let depth = lanes.iter().map(|l| l.who.depth()).max().unwrap_or(0);
    let column = column_width(lanes.len());
    let mut lanes: Vec<Lane> = lanes
        .into_iter()
        .enumerate()
        .map(|(i, lane)| Lane { x: TIME_COLUMN + MARGIN + column * (i as f64 + 0.5), ..lane })
        .collect();
    // Lifelines are processes: a thread's events are drawn on its process's.
    let lane_of: HashMap<i32, usize> = lanes.iter().enumerate().map(|(i, l)| (l.who.process, i)).collect();

    let boxes_top = HEADER + 14.0;
    let lanes_top = boxes_top + LEVEL * depth.max(1) as f64;
    // Room under the lifelines' labels for the first arrow's label.
    let rows_top = lanes_top + 84.0;
    let taken = taken(events);
    let fates = fates(events, &taken);
    let explained: std::collections::HashSet<usize> = taken.values().copied().collect();
    let rows = rows(events, &explained, &lane_of, rows_top);
    let rows_bottom = rows.iter().map(|r| r.y).fold(rows_top, f64::max) + ROW;

    let mut body = String::with_capacity(events.len() * 400 + 4096);
    // Time column: one label per distinct millisecond.
    let _ = write!(
        body,
        r##"<text x="{x}" y="{y}" font-size="15" font-weight="bold" fill="#333">time (s)</text><line x1="{lx}" y1="{rows_top}" x2="{lx}" y2="{rows_bottom}" stroke="#999" stroke-width="1"/>"##,
        x = MARGIN,
        y = rows_top - 16.0,
        lx = TIME_COLUMN,
    );
    let mut last_time = String::new();
    for row in &rows {
        let time = format!("{:.3}", events[row.event].t);
        if time != last_time {
            let _ = write!(
                body,
                r##"<text class="time" x="{x}" y="{y:.1}" font-size="15" fill="#222" text-anchor="end">{time}</text>"##,
                x = TIME_COLUMN - 8.0,
                y = row.y + 5.0
            );
            last_time = time;
        }
    }
    // The events, each on its own row.
    let mut arrows = String::new();
    for row in &rows {
        let event = &events[row.event];
        let Some(&target) = lane_of.get(&event.target.process) else { continue };
        match &event.kind {
            Kind::Generate { signal, sender, code, .. } => {
                let fate = fates[&row.event];
                let from = lane_of.get(&sender.process).map_or(lanes[target].x, |&s| lanes[s].x);
                arrow(&mut arrows, from, lanes[target].x, row.y, signal, *code, fate);
            }
            Kind::Deliver { signal } => {
                let label = format!("{signal} taken: {}", event.outcome.text());
                mark_taken(&mut arrows, lanes[target].x, row.y, &label);
            }
            Kind::Exit => {
                cross(&mut arrows, lanes[target].x, row.y);
                lanes[target].ends = Some(row.y);
            }
        }
    }

    let mut frame = String::new();
    namespace_boxes(&mut frame, &lanes, column, depth, boxes_top, rows_bottom);
    for lane in &lanes {
        lifeline(&mut frame, lane, column, lanes_top, rows_bottom);
    }

    // Below the namespace boxes, which reach 10 px a level under the rows.
    let legend_top = rows_bottom + 10.0 * depth as f64 + 34.0;
    let mut footer = String::new();
    let drawn: Vec<Fate> = rows.iter().filter_map(|r| fates.get(&r.event).copied()).collect();
    let present: Vec<Fate> = Fate::ALL.into_iter().filter(|f| drawn.contains(f)).collect();
    let legend_rows = legend(&mut footer, &present, legend_top);
    let caption_top = legend_top + legend_rows as f64 * 26.0 + 16.0;
    let lines = wrap(&format!("Verdict: {verdict}"), 116);
    for (i, line) in lines.iter().enumerate() {
        // "Verdict:" in bold, the verdict itself plain.
        let text = match line.strip_prefix("Verdict:") {
            Some(rest) if i == 0 => format!(r#"<tspan font-weight="bold">Verdict:</tspan>{}"#, escape(rest)),
            _ => escape(line),
        };
        let _ = write!(
            footer,
            r##"<text class="verdict" x="{MARGIN}" y="{y:.1}" font-size="17" fill="#111">{text}</text>"##,
            y = caption_top + 22.0 * i as f64,
        );
    }
    let height = (caption_top + 22.0 * lines.len() as f64 + MARGIN).max(SCREEN_HEIGHT).ceil();

    let mut svg = String::with_capacity(body.len() + arrows.len() + frame.len() + footer.len() + 1024);
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="{FONT}">"##
    );
    let _ = write!(
        svg,
        r##"<rect width="100%" height="100%" fill="#ffffff"/><text x="{MARGIN}" y="38" font-size="26" font-weight="bold" fill="#111">{}</text>"##,
        escape(title)
    );
    svg.push_str(&frame);
    svg.push_str(&body);
    svg.push_str(&arrows);
    svg.push_str(&footer);
    svg.push_str("</svg>\n");
    svg
}

/// The processes of the trace, host side first, then by namespace depth
/// and PID, so each namespace's lifelines sit side by side: those that
/// send or are sent a signal, or exit. A thread has no lifeline of its
/// own; it is drawn on its process's, labelled as the process (its main
/// thread).
fn lanes(events: &[Event]) -> Vec<Lane> {
    let mut seen: HashMap<i32, Who> = HashMap::new();
    for e in events {
        let (target, sender) = match &e.kind {
            Kind::Generate { sender, .. } => (Some(&e.target), Some(sender)),
            Kind::Exit => (Some(&e.target), None),
            Kind::Deliver { .. } => (None, None),
        };
        for who in target.into_iter().chain(sender) {
            let main = who.host_pid == who.process;
            let known = seen.entry(who.process).or_insert_with(|| who.clone());
            // A signal's names are the kernel's at the time: a process that
            // has exec'd since it was first seen has a new one. Keep the
            // main thread's latest.
            let named = matches!(e.kind, Kind::Generate { .. }) && who.comm.is_some();
            if main && (known.host_pid != who.host_pid || named) {
                *known = Who { comm: who.comm.clone().or(known.comm.take()), ..who.clone() };
            }
        }
    }
    let mut lanes: Vec<Lane> = seen.into_values().map(|who| Lane { who, x: 0.0, ends: None }).collect();
    lanes.sort_by_key(|l| (l.who.depth(), l.who.own_pid(), l.who.host_pid));
    lanes
}

fn column_width(lanes: usize) -> f64 {
    ((WIDTH - TIME_COLUMN - 2.0 * MARGIN) / lanes.max(1) as f64).min(300.0)
}

/// One row of the diagram.
struct Row {
    event: usize,
    y: f64,
}

/// A row for every signal sent, every exit, and every signal a process
/// with a lifeline (`lanes`) took that no arrow of this trace explains
/// (`explained`: the arrows' colours say how the others were taken). Rows
/// follow time but are never closer than ROW.
fn rows(
    events: &[Event],
    explained: &std::collections::HashSet<usize>,
    lanes: &HashMap<i32, usize>,
    top: f64,
) -> Vec<Row> {
    let drawn: Vec<usize> = (0..events.len())
        .filter(|&i| match events[i].kind {
            // A thread taking its share of its process's fate is not news.
            Kind::Deliver { .. } => {
                let target = &events[i].target;
                !explained.contains(&i)
                    && target.host_pid == target.process
                    && lanes.contains_key(&target.process)
            }
            // A thread's SIGKILL to itself as its process exits (the kernel
            // reports it ignored: the group is already dying) is not news either.
            Kind::Generate { ref sender, .. } => {
                let target = &events[i].target;
                !(sender.host_pid == target.host_pid && target.host_pid != target.process)
            }
            Kind::Exit => true,
        })
        .collect();
    let (first, last) = match (drawn.first(), drawn.last()) {
        (Some(&a), Some(&b)) => (events[a].t, events[b].t),
        _ => (0.0, 0.0),
    };
    // Spread the time over what a screen has left once every row has its
    // own room (at most 300 px a second, so a long quiet trace stays short).
    let room = (SCREEN_HEIGHT - top - 160.0 - ROW * drawn.len() as f64).max(0.0);
    let scale = if last > first { (room / (last - first)).min(300.0) } else { 0.0 };
    let mut rows: Vec<Row> = Vec::with_capacity(drawn.len());
    for i in drawn {
        let by_time = top + (events[i].t - first).max(0.0) * scale + ROW * rows.len() as f64;
        let y = rows.last().map_or(by_time, |prev| by_time.max(prev.y + ROW));
        rows.push(Row { event: i, y });
    }
    rows
}

fn arrow(out: &mut String, from: f64, to: f64, y: f64, signal: &str, code: i64, fate: Fate) {
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

fn head(out: &mut String, tip: f64, y: f64, dir: f64, colour: &str) {
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
fn text(out: &mut String, x: f64, y: f64, anchor: &str, colour: &str, words: &str) {
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
fn mark_taken(out: &mut String, x: f64, y: f64, label: &str) {
    let _ = write!(out, r##"<g class="taken"><circle cx="{x:.1}" cy="{y:.1}" r="6" fill="#0b57d0"/>"##);
    text(out, x + 12.0, y + 5.0, "start", "#0b57d0", label);
    out.push_str("</g>");
}

fn cross(out: &mut String, x: f64, y: f64) {
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
fn namespace_boxes(out: &mut String, lanes: &[Lane], column: f64, depth: usize, top: f64, bottom: f64) {
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

fn lifeline(out: &mut String, lane: &Lane, column: f64, top: f64, bottom: f64) {
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
fn legend(out: &mut String, present: &[Fate], top: f64) -> usize {
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
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// Break `text` into lines of at most `width` characters, at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
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
fn escape(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn who(host_pid: i32, nspid: &[i32]) -> Who {
        Who {
            host_pid,
            nspid: nspid.to_vec(),
            comm: Some("p".into()),
            inside: nspid.len() > 1,
            process: host_pid,
        }
    }

    fn sent(t: f64, signal: &str, to: &Who, res: i64, outcome: Outcome) -> Event {
        let kind = Kind::Generate { signal: signal.into(), sender: who(9, &[9]), code: 0, res };
        Event { t, kind, target: to.clone(), outcome }
    }

    #[test]
    fn a_queued_signal_is_handled_only_if_a_delivery_takes_it() {
        let init = who(100, &[100, 1]);
        let events = vec![
            sent(0.1, "SIGUSR1", &init, 0, Outcome::Queued),
            sent(0.1, "SIGUSR1", &init, 2, Outcome::AlreadyPending),
            Event {
                t: 0.2,
                kind: Kind::Deliver { signal: "SIGUSR1".into() },
                target: init.clone(),
                outcome: Outcome::Handler,
            },
            sent(0.3, "SIGUSR1", &init, 0, Outcome::Queued),
            sent(0.4, "SIGTERM", &init, 1, Outcome::DroppedFromOutside),
        ];
        let taken = taken(&events);
        assert_eq!(taken.get(&0), Some(&2), "the first USR1 was the one taken");
        let fates = fates(&events, &taken);
        assert_eq!(fates[&0], Fate::Handler);
        assert_eq!(fates[&1], Fate::AlreadyPending);
        assert_eq!(fates[&3], Fate::Blocked, "no delivery took the second");
        assert_eq!(fates[&4], Fate::DroppedAtInit);
    }

    #[test]
    fn a_fatal_signal_taken_as_sigkill_is_its_default_action() {
        let shell = who(200, &[200, 2]);
        let events = vec![
            sent(0.1, "SIGTERM", &shell, 0, Outcome::Queued),
            Event {
                t: 0.1,
                kind: Kind::Deliver { signal: "SIGKILL".into() },
                target: shell.clone(),
                outcome: Outcome::Killed,
            },
            // A thread of another process, killed with it: no lifeline, no row.
            Event {
                t: 0.1,
                kind: Kind::Deliver { signal: "SIGKILL".into() },
                target: who(301, &[301, 5]),
                outcome: Outcome::Killed,
            },
        ];
        let taken = taken(&events);
        assert_eq!(fates(&events, &taken)[&0], Fate::DefaultAction);
        let lanes = lanes(&events);
        assert_eq!(lanes.iter().map(|l| l.who.host_pid).collect::<Vec<_>>(), [9, 200]);
        let svg = svg("t", &events, "v");
        assert_eq!(svg.matches("class=\"taken\"").count(), 0, "{svg}");
    }

    #[test]
    fn a_thread_is_drawn_on_its_process_lifeline() {
        let main = Who { comm: Some("redis-server".into()), ..who(300, &[300, 1]) };
        let thread = Who { comm: Some("bio_aof_fsync".into()), process: 300, ..who(302, &[302, 3]) };
        let events = vec![
            sent(0.1, "SIGTERM", &main, 0, Outcome::Queued),
            Event {
                t: 0.2,
                kind: Kind::Deliver { signal: "SIGKILL".into() },
                target: thread.clone(),
                outcome: Outcome::Killed,
            },
            Event { t: 0.3, kind: Kind::Exit, target: thread, outcome: Outcome::Exited },
        ];
        let lanes = lanes(&events);
        let names: Vec<_> = lanes.iter().map(|l| (l.who.host_pid, l.who.name().to_string())).collect();
        assert_eq!(names, [(9, "p".to_string()), (300, "redis-server".to_string())]);
        let svg = svg("t", &events, "v");
        assert_eq!(svg.matches("class=\"exit\"").count(), 1);
        assert_eq!(svg.matches("class=\"taken\"").count(), 0, "the thread's share of the kill is not drawn");
    }

    #[test]
    fn names_are_escaped_and_captions_wrapped() {
        assert_eq!(escape("<a&\"b\">"), "&lt;a&amp;&quot;b&quot;&gt;");
        let lines = wrap("one two three four", 9);
        assert_eq!(lines, ["one two", "three", "four"]);
    }
}
