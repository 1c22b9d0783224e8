//! The lessons, as data: each one's text, exercise, starter file, reference
//! solution and check, built into the binary (`include_str!`).

pub(super) struct Lesson {
    pub(super) number: u32,
    pub(super) slug: &'static str,
    pub(super) text: &'static str,
    pub(super) hints: &'static [&'static str],
    /// The exercise's starter file: its name in the lesson's directory, and
    /// its text (so `lesson export` needs no repository).
    pub(super) starter: Option<(&'static str, &'static str)>,
    /// The reference solution, `solution/` + the starter's name (lesson
    /// 09's transcripts run it).
    pub(super) solution: Option<&'static str>,
    /// A harder exercise for fast attendees, with a check of its own.
    pub(super) stretch: Option<Stretch>,
    /// More reference solutions, `solution/NAME` (another language).
    pub(super) more_solutions: &'static [(&'static str, &'static str)],
    /// Files the lesson's commands use (a helper script), exported beside
    /// its README.
    pub(super) tools: &'static [(&'static str, &'static str)],
}

/// A stretch exercise: always a `stretch.sh` in the lesson's directory,
/// its reference solution in `solution/stretch.sh`.
pub(super) struct Stretch {
    pub(super) starter: &'static str,
    pub(super) solution: &'static str,
    pub(super) hints: &'static [&'static str],
}

pub(super) const STRETCH_FILE: &str = "stretch.sh";

pub(super) const LESSONS: &[Lesson] = &[
    Lesson {
        number: 0,
        slug: "00-doctor",
        text: include_str!("../../../lessons/00-doctor/README.md"),
        hints: &["Run `pidlab doctor` and read the line under each FAIL."],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
        tools: &[],
    },
    Lesson {
        number: 1,
        slug: "01-first-namespace",
        text: include_str!("../../../lessons/01-first-namespace/README.md"),
        hints: &[
            "`pidlab inspect one` lists every process of the sandbox; the first number is the host's PID.",
        ],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
        tools: &[],
    },
    Lesson {
        number: 2,
        slug: "02-unshare-vs-clone",
        text: include_str!("../../../lessons/02-unshare-vs-clone/README.md"),
        hints: &[
            "Only the process that called unshare can look, and only before it forks. Without --fork, `sh` is \
             that process (it keeps its host PID, so the host's /proc is the right one for it), and a shell \
             builtin forks nothing; bash's `cd` even names the errno: \
             `unshare --pid bash -c 'cd /proc/$$/ns/pid_for_children'`",
            "With --fork, $$ is 1, and in the host's /proc, /proc/1 is the host's init: lesson 01's trap.",
        ],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
        tools: &[],
    },
    Lesson {
        number: 3,
        slug: "03-nested-namespaces",
        text: include_str!("../../../lessons/03-nested-namespaces/README.md"),
        hints: &["rt_sigtimedwait moves the waited signals from `blocked` to `real_blocked` while it waits."],
        starter: None,
        solution: None,
        stretch: Some(Stretch {
            starter: include_str!("../../../lessons/03-nested-namespaces/stretch.sh"),
            solution: include_str!("../../../lessons/03-nested-namespaces/solution/stretch.sh"),
            hints: &[
                "Count the numbers on the probe's NSpid line in `pidlab inspect st03`: one per level, host first.",
                "PID 1 of a level is whoever is started first in it. Which flag puts an init in front of the probe?",
                "pidlab run -d --name st03 --nest 3 --init -- pidlab probe",
            ],
        }),
        more_solutions: &[],
        tools: &[],
    },
    Lesson {
        number: 4,
        slug: "04-pid1-signal-rules",
        text: include_str!("../../../lessons/04-pid1-signal-rules/README.md"),
        hints: &[
            "What does --on-term-save do when SIGTERM arrives? Would PID 1 even receive SIGTERM without a handler?",
            "A PID 1 with no SIGTERM handler never receives SIGTERM from the host: the kernel drops it.",
            "pidlab run -d --name ex04 -- pidlab probe",
        ],
        starter: Some(("exercise.sh", include_str!("../../../lessons/04-pid1-signal-rules/exercise.sh"))),
        solution: Some(include_str!("../../../lessons/04-pid1-signal-rules/solution/exercise.sh")),
        stretch: None,
        more_solutions: &[],
        tools: &[],
    },
    Lesson {
        number: 5,
        slug: "05-shell-vs-exec-form",
        text: include_str!("../../../lessons/05-shell-vs-exec-form/README.md"),
        hints: &[
            "Who is PID 1 with the shell form on Debian? Try `pidlab run --dry-run -f Dockerfile`.",
            "dash stays PID 1 and has no SIGTERM handler. Make the probe itself PID 1.",
            "CMD [\"pidlab\", \"probe\", \"--on-term-save\", \"/data/state\"]",
        ],
        starter: Some(("Dockerfile", include_str!("../../../lessons/05-shell-vs-exec-form/Dockerfile"))),
        solution: Some(include_str!("../../../lessons/05-shell-vs-exec-form/solution/Dockerfile")),
        stretch: None,
        more_solutions: &[],
        tools: &[],
    },
    Lesson {
        number: 6,
        slug: "06-docker-stop",
        text: include_str!("../../../lessons/06-docker-stop/README.md"),
        hints: &["STOPSIGNAL only changes which signal stop sends; PID 1 must still have a handler for it."],
        starter: None,
        solution: None,
        stretch: Some(Stretch {
            starter: include_str!("../../../lessons/06-docker-stop/stretch.sh"),
            solution: include_str!("../../../lessons/06-docker-stop/solution/stretch.sh"),
            hints: &[
                "The shell is PID 1 and has no SIGTERM handler: the kernel drops SIGTERM. Give it one (`trap`).",
                "A trap runs only between commands: start the probe in the background (`&`) and `wait` for it.",
                "trap \"kill -TERM \\$child\" TERM; pidlab probe ... & child=$!; wait $child; wait $child; echo cleaned up",
            ],
        }),
        more_solutions: &[],
        tools: &[],
    },
    Lesson {
        number: 7,
        slug: "07-orphans-and-zombies",
        text: include_str!("../../../lessons/07-orphans-and-zombies/README.md"),
        hints: &[
            "The probe never waits for children it did not start. Who could?",
            "An init reaps every orphan: which `pidlab run` flag puts one in front?",
            "pidlab run -d --name ex07 --init -- pidlab probe --orphans 5 --orphan-life 0",
        ],
        starter: Some(("exercise.sh", include_str!("../../../lessons/07-orphans-and-zombies/exercise.sh"))),
        solution: Some(include_str!("../../../lessons/07-orphans-and-zombies/solution/exercise.sh")),
        stretch: None,
        more_solutions: &[],
        tools: &[],
    },
    Lesson {
        number: 8,
        slug: "08-init-and-drain",
        text: include_str!("../../../lessons/08-init-and-drain/README.md"),
        hints: &["Lesson 05: `exec` in the string makes the shell replace itself with the command."],
        starter: None,
        solution: None,
        stretch: Some(Stretch {
            starter: include_str!("../../../lessons/08-init-and-drain/stretch.sh"),
            solution: include_str!("../../../lessons/08-init-and-drain/solution/stretch.sh"),
            hints: &[
                "With --init, SIGTERM goes to the init's one child: the shell. Who tells the two probes?",
                "When the init's child exits, the init exits, and the kernel SIGKILLs the rest of the namespace.",
                "--init=drain forwards the stop signal to every process and waits for all of them.",
            ],
        }),
        more_solutions: &[],
        tools: &[],
    },
    Lesson {
        number: 9,
        slug: "09-entrypoint-scripts",
        text: include_str!("../../../lessons/09-entrypoint-scripts/README.md"),
        hints: &[
            "Which process runs the command on the script's last line, and who is PID 1 then?",
            "`exec` replaces the shell with the command.",
            "exec \"$@\"",
        ],
        starter: Some((
            "entrypoint.sh",
            include_str!("../../../lessons/09-entrypoint-scripts/entrypoint.sh"),
        )),
        solution: Some(include_str!("../../../lessons/09-entrypoint-scripts/solution/entrypoint.sh")),
        stretch: None,
        more_solutions: &[],
        tools: &[],
    },
    Lesson {
        number: 10,
        slug: "10-when-pid1-dies",
        text: include_str!("../../../lessons/10-when-pid1-dies/README.md"),
        hints: &["The init exits when its child (sh) exits; then the kernel kills the sleep."],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
        tools: &[],
    },
    Lesson {
        number: 11,
        slug: "11-chroot-vs-pivot-root",
        text: include_str!("../../../lessons/11-chroot-vs-pivot-root/README.md"),
        hints: &["In a user namespace you are root over the namespaces it owns, mount namespace included."],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
        tools: &[],
    },
    Lesson {
        number: 12,
        slug: "12-rootless",
        text: include_str!("../../../lessons/12-rootless/README.md"),
        hints: &["uid_map maps IDs inside to IDs outside; root's own map is the identity."],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
        tools: &[],
    },
    Lesson {
        number: 13,
        slug: "13-entering-a-namespace",
        text: include_str!("../../../lessons/13-entering-a-namespace/README.md"),
        hints: &[
            "A zombie is removed only when its parent calls wait(2). Whose child is it now?",
            "Its parent is PID 1, the probe, which never waits. Only PID 1 exiting (the sandbox ends) removes them.",
        ],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
        tools: &[],
    },
    Lesson {
        number: 14,
        slug: "14-the-rest-of-the-pid1-rule",
        text: include_str!("../../../lessons/14-the-rest-of-the-pid1-rule/README.md"),
        hints: &[
            "With a handler, the drop rule does not apply: the signal is delivered from anyone.",
            "The sender is `kill`, started inside: it has a PID in the probe's namespace.",
        ],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
        tools: &[],
    },
    Lesson {
        number: 15,
        slug: "15-inherited-signal-state",
        text: include_str!("../../../lessons/15-inherited-signal-state/README.md"),
        hints: &[
            "A subshell `( ... ) &` can try `trap - INT` before it execs the service: does every shell allow it?",
            "bash allows it, dash and busybox do not. coreutils' `env --default-signal=INT CMD` resets it for any shell.",
        ],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
        tools: &[],
    },
    Lesson {
        number: 16,
        slug: "16-namespace-lifetime",
        text: include_str!("../../../lessons/16-namespace-lifetime/README.md"),
        hints: &[
            "An open descriptor is a reference, like a mount. What happens to it when the shell exits?",
            "The same ENOMEM: the namespace is alive but dead to new processes; it is freed when fd 3 closes.",
        ],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
        tools: &[],
    },
    Lesson {
        number: 17,
        slug: "17-write-an-init",
        text: include_str!("../../../lessons/17-write-an-init/README.md"),
        hints: &[
            "PID 1 has no handlers, so SIGTERM is dropped. Block every signal first, then collect them with \
             sigtimedwait(2): a blocked signal is never dropped.",
            "Orphans are your children too: reap with waitpid(-1, &status, WNOHANG) in a loop, after every \
             signal or timeout, until it returns 0.",
            "Unblock the signals in the child before exec; exit with WEXITSTATUS, or 128 + WTERMSIG.",
        ],
        starter: Some(("init.c", include_str!("../../../lessons/17-write-an-init/init.c"))),
        solution: Some(include_str!("../../../lessons/17-write-an-init/solution/init.c")),
        stretch: None,
        more_solutions: &[("init.rs", include_str!("../../../lessons/17-write-an-init/solution/init.rs"))],
        tools: &[],
    },
    Lesson {
        number: 18,
        slug: "18-pid-max-per-namespace",
        text: include_str!("../../../lessons/18-pid-max-per-namespace/README.md"),
        hints: &[
            "`pidlab exec` forks a process into the sandbox: it needs a PID at every level, the sandbox's too.",
            "No: each level's limit applies to that level; a full namespace refuses the fork whatever the host has.",
        ],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
        tools: &[],
    },
    Lesson {
        number: 19,
        slug: "19-build-a-sandbox",
        text: include_str!("../../../lessons/19-build-a-sandbox/README.md"),
        hints: &[
            "unshare(CLONE_NEWPID) does not move the caller (lesson 02): fork, and exec in the child.",
            "A /proc that shows the new namespace must be mounted by a process inside it, in a mount namespace \
             of its own (CLONE_NEWNS), after making / private (MS_REC | MS_PRIVATE).",
            "Order in the child: make / private, chroot(ROOT), chdir(\"/\"), mount proc on /proc, exec.",
        ],
        starter: Some(("sandbox.c", include_str!("../../../lessons/19-build-a-sandbox/sandbox.c"))),
        solution: Some(include_str!("../../../lessons/19-build-a-sandbox/solution/sandbox.c")),
        stretch: None,
        more_solutions: &[(
            "sandbox.rs",
            include_str!("../../../lessons/19-build-a-sandbox/solution/sandbox.rs"),
        )],
        tools: &[],
    },
    Lesson {
        number: 20,
        slug: "20-ctrl-c-and-process-groups",
        text: include_str!("../../../lessons/20-ctrl-c-and-process-groups/README.md"),
        hints: &[
            "`pidlab kill -s INT` reaches PID 1 only. Who would have to pass SIGINT on, and to whom?",
            "An init in front, told to signal the workload's whole process group: tini's -g, pidlab's \
             --init-group.",
        ],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
        tools: &[(
            "at-a-terminal.sh",
            include_str!("../../../lessons/20-ctrl-c-and-process-groups/at-a-terminal.sh"),
        )],
    },
    Lesson {
        number: 21,
        slug: "21-the-shim",
        text: include_str!("../../../lessons/21-the-shim/README.md"),
        hints: &[
            "Which process waits for PID 1, and which one only watches the shim?",
            "The watcher kills PID 1 when the shim dies; it never waits for PID 1. The shim still does.",
        ],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
        tools: &[],
    },
];

/// The facts the lessons cite, with their sources.
pub(super) const FACTS: &str = include_str!("../../../lessons/FACTS.md");

/// The facilitator's guide, for `lesson guide`.
pub(super) const GUIDE: &str = include_str!("../../../lessons/FACILITATOR.md");
