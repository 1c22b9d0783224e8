//! What became of each signal, as the picture colours it: one `Fate` per
//! event, and which delivery took which signal.

use std::collections::HashMap;

use super::super::event::{Event, Kind, Outcome};

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
    pub(super) const ALL: [Fate; 10] = [
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
    pub(super) fn label(self) -> &'static str {
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
    pub(super) fn legend(self) -> &'static str {
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
    pub(crate) fn colour(self) -> &'static str {
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

    pub(super) fn arrives(self) -> bool {
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
pub(super) fn taken(events: &[Event]) -> HashMap<usize, usize> {
    let mut queued: HashMap<(i32, &str), std::collections::VecDeque<usize>> = HashMap::new();
    let mut taken = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        match &e.kind {
            // res=4: queued too, only without its siginfo.
            Kind::Generate { signal, res: 0 | 4, .. } => {
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
pub(super) fn fates(events: &[Event], taken: &HashMap<usize, usize>) -> HashMap<usize, Fate> {
    let mut fates = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let Kind::Generate { signal, sender, res, .. } = &e.kind else { continue };
        let fate = match (res, e.outcome) {
            (_, Outcome::QueuedTeardown) => Fate::Teardown,
            (_, outcome) if outcome.is_dropped_at_init() => Fate::DroppedAtInit,
            (0, _) if signal == "SIGKILL" && !sender.inside => Fate::AncestorKill,
            (0 | 4, _) => match taken.get(&i).map(|&d| events[d].outcome) {
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
