//! `pidlab inspect NAME --tree`: the sandbox's processes as the tree they
//! form, each with its PID at every level and what it has done with the
//! sandbox's stop signal (a handler, ignored, blocked, or the default
//! action), and what that signal would do to it if it were sent now.
//!
//! `docker stop` sends the stop signal to PID 1 only; the others hear of it
//! only if PID 1 passes it on. The tree shows both halves of that story at
//! once: whether PID 1 will take it, and whether each process below would.

mod svg;

use nix::sys::signal::Signal;
use serde::Serialize;

pub use svg::render as svg;

use super::explain::predict;
use crate::procfs::{self, Status};
use crate::signals;

/// One process and the ones it started.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub host_pid: i32,
    /// Its PID at each level, host first.
    pub nspid: Vec<i32>,
    pub comm: String,
    pub cmdline: String,
    /// What it did with the stop signal: `handler`, `ignored`, `blocked`,
    /// `sigwait` (it waits for it in sigtimedwait), `default`, or `zombie`
    /// (it has exited; its parent has yet to reap it).
    pub disposition: &'static str,
    /// What the stop signal sent to it now would do (`explain`'s words).
    pub outcome: &'static str,
    pub why: String,
    pub children: Vec<Node>,
}

/// The tree below (and including) `pid`, as /proc shows it now. `None` if
/// `pid` is gone.
pub fn of(pid: i32, sig: Signal) -> Option<Node> {
    let status = Status::of(pid)?;
    let signo = sig as i32;
    let waited = signals::waited_for(pid);
    let disposition = if matches!(status.state, 'Z' | 'X') {
        "zombie"
    } else if status.blocks(signo) {
        "blocked"
    } else if procfs::signals_in(waited).contains(&signo) {
        // Unblocked in SigBlk while it waits: the kernel holds its mask
        // aside (`signals::waited_for`).
        "sigwait"
    } else if status.ignores(signo) {
        "ignored"
    } else if status.catches(signo) {
        "handler"
    } else {
        "default"
    };
    let (outcome, why) = predict(&status, sig, waited);
    let mut children: Vec<i32> = procfs::children(pid);
    children.sort_unstable();
    children.dedup();
    Some(Node {
        host_pid: pid,
        nspid: status.nspid.clone(),
        comm: status.name.clone(),
        cmdline: procfs::cmdline(pid).unwrap_or_default(),
        disposition,
        outcome,
        why,
        children: children.into_iter().filter_map(|child| of(child, sig)).collect(),
    })
}

/// The tree as text: one line a process, indented under its parent.
pub fn render(root: &Node, sig: Signal) -> String {
    let mut lines = Vec::new();
    walk(root, "", "", &mut lines);
    let width = lines.iter().map(|(left, _)| left.chars().count()).max().unwrap_or(0);
    let mut out = format!(
        "PIDs as host PID/PID in level 1/level 2/...; {sig} (the stop signal) as each process has it, and what \
         it would do if sent now (`pidlab stop` sends it to PID 1 only):\n",
        sig = sig.as_str()
    );
    for (left, right) in lines {
        let pad = width - left.chars().count();
        out.push_str(&format!("  {left}{:pad$}  {right}\n", ""));
    }
    out
}

/// Depth first: `lead` begins this process's line, `rest` the lines of
/// everything below it.
fn walk(node: &Node, lead: &str, rest: &str, lines: &mut Vec<(String, String)>) {
    let pids = procfs::pids_text(node.nspid.iter().copied());
    let left = format!("{lead}{pids} {}", crate::output::printable(&node.comm));
    let right = format!("{:<8} -> {}", node.disposition, node.outcome);
    lines.push((left, right));
    for (i, child) in node.children.iter().enumerate() {
        let last = i + 1 == node.children.len();
        let (branch, below) = if last { ("└─ ", "   ") } else { ("├─ ", "│  ") };
        walk(child, &format!("{rest}{branch}"), &format!("{rest}{below}"), lines);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(pid: i32, comm: &str, disposition: &'static str, children: Vec<Node>) -> Node {
        Node {
            host_pid: pid,
            nspid: vec![pid, pid - 99],
            comm: comm.into(),
            cmdline: comm.into(),
            disposition,
            outcome: "handled",
            why: String::new(),
            children,
        }
    }

    #[test]
    fn branches_line_up_under_their_parents() {
        let tree = node(
            100,
            "sh",
            "default",
            vec![
                node(101, "a", "handler", vec![node(103, "c", "ignored", vec![])]),
                node(102, "b", "blocked", vec![]),
            ],
        );
        let text = render(&tree, Signal::SIGTERM);
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            lines,
            [
                "  100/1 sh       default  -> handled",
                "  ├─ 101/2 a     handler  -> handled",
                "  │  └─ 103/4 c  ignored  -> handled",
                "  └─ 102/3 b     blocked  -> handled",
            ]
        );
    }
}
