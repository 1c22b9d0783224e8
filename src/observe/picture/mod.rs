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
//! This module uses only `event.rs`, so a benchmark can compile the two
//! on their own (`benches/picture.rs`).

use std::collections::HashMap;
use std::fmt::Write;

mod draw;
mod fate;

use super::event::{Event, Kind, Who};
pub(crate) use draw::escape;
use draw::{arrow, cross, legend, lifeline, mark_taken, namespace_boxes, wrap};
pub use fate::Fate;
use fate::{fates, taken};

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
/// The pictures' typeface (the tree's too, `tree/svg.rs`).
pub(crate) const FONT: &str = "DejaVu Sans, Verdana, Arial, sans-serif";

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

#[cfg(test)]
mod tests {
    use super::super::event::Outcome;
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
