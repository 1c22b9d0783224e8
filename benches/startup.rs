//! Start-up cost of a PID-namespace sandbox: pidlab against named
//! baselines, in one run on one machine (as root; needs unshare and bwrap):
//!
//! - `pidlab run --rootfs R -- /bin/true`, R a busybox root made by
//!   `rootfs-scripts/busybox-root.sh` (it has pidlab's mount points, so it
//!   is bound whole);
//! - the same with A, a copy of R without `/.pidlab` (assembled on a tmpfs);
//! - `unshare --pid --fork --mount-proc --root R /bin/true` (util-linux);
//! - `bwrap --unshare-pid --bind R / --proc /proc --dev /dev /bin/true`;
//! - `pidlab run -- /bin/true` (the default root);
//! - `pidlab run --rootfs R` with `--security-opt seccomp=unconfined
//!   --security-opt systempaths=unconfined`: the same binary without its
//!   seccomp filter and /proc confinement, to price them.
//!
//! Each is measured in turn with unshare (or bwrap), one run each, A B A B
//! ...: a change in the machine's speed during the benchmark (frequent on a
//! shared VM, and larger than the differences measured) weighs on both
//! alike, and each run follows a run of the *other* program, so neither
//! finds its own code still warm in the CPU's caches. (Letting pidlab runs
//! follow each other made pidlab look 10 % faster than this; timing blocks
//! of runs of one command, as hyperfine does, made it look 5 to 20 %
//! slower, depending on which block came first.) Reported: each median,
//! the ratio, and the ratio in each tenth of the rounds, to show the
//! spread. Then how start time grows with `--nest` 1 to 32.
//!
//! `cargo bench --bench startup [-- ROUNDS]` (default 1,000 rounds).

use std::process::{Command, Stdio};
use std::time::Instant;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pidlab")
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Wall time of one run of `argv`, in ms; it must succeed.
///
/// The environment is the caller's, less what `cargo bench` adds:
/// LD_LIBRARY_PATH sends the dynamic loader of every dynamically linked
/// program (unshare, bwrap; not pidlab) through extra directories, which
/// made unshare 10 % slower than from a shell. `lang` sets LANG: util-linux
/// loads the locale it names at start (about 0.15 ms for C.UTF-8).
fn time_once(argv: &[String], lang: Option<&str>) -> f64 {
    let started = Instant::now();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).env_remove("LD_LIBRARY_PATH");
    if let Some(lang) = lang {
        cmd.env("LANG", lang).env_remove("LC_ALL");
    }
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{}: {e}", argv[0]));
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    assert!(status.success(), "{argv:?}: {status}");
    ms
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

fn shell(script: &str) {
    let status = Command::new("bash").args(["-c", script]).status().unwrap();
    assert!(status.success(), "{script}");
}

fn main() {
    assert!(nix::unistd::geteuid().is_root(), "run as root: the baselines need it");
    // Absolute paths: a bare name would be searched for in $PATH at every
    // run (a failed execve per directory before it), which pidlab, given
    // as a path, does not pay.
    let path_of = |tool: &str| {
        let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap();
        assert!(found.status.success(), "needs {tool}: apt-get install util-linux bubblewrap");
        String::from_utf8(found.stdout).unwrap().trim().to_string()
    };
    let (unshare, bwrap) = (path_of("unshare"), path_of("bwrap"));
    let rounds: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1000);
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    let bare = work.path().join("bare");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/rootfs-scripts/busybox-root.sh");
    shell(&format!("bash {script} {} >/dev/null", root.display()));
    shell(&format!("cp -a {} {} && rm -r {}/.pidlab", root.display(), bare.display(), bare.display()));
    let (r, a, p) = (root.display(), bare.display(), bin());
    let commands: Vec<(&str, Vec<String>)> = vec![
        (
            "pidlab run --rootfs R (prepared: bound whole)",
            words(&format!("{p} run --rootfs {r} -- /bin/true")),
        ),
        ("pidlab run --rootfs A (assembled)", words(&format!("{p} run --rootfs {a} -- /bin/true"))),
        (
            "unshare --pid --fork --mount-proc --root R",
            words(&format!("{unshare} --pid --fork --mount-proc --root {r} /bin/true")),
        ),
        (
            "bwrap --unshare-pid --bind R / --proc --dev",
            words(&format!("{bwrap} --unshare-pid --bind {r} / --proc /proc --dev /dev /bin/true")),
        ),
        ("pidlab run (default root)", words(&format!("{p} run -- /bin/true"))),
        (
            "pidlab run --rootfs R, unconfined",
            words(&format!(
                "{p} run --security-opt seccomp=unconfined --security-opt systempaths=unconfined --rootfs {r} -- /bin/true"
            )),
        ),
    ];
    for (_, argv) in &commands {
        for _ in 0..20 {
            time_once(argv, None); // warm-up
        }
    }
    let lang = std::env::var("LANG").unwrap_or_default();
    println!("{rounds} rounds per pair, the two commands in turn (A B A B ...); LANG={lang}");
    let [pidlab, assembled, unshare, bwrap, default, unconfined] = &commands[..] else { unreachable!() };
    let pairs = [
        (pidlab, unconfined, None),
        (pidlab, unshare, None),
        (pidlab, unshare, Some("C")),
        (assembled, unshare, None),
        (default, unshare, None),
        (pidlab, bwrap, None),
    ];
    for (a, b, lang) in pairs {
        let (mut ta, mut tb) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
        for _ in 0..rounds {
            ta.push(time_once(&a.1, lang));
            tb.push(time_once(&b.1, lang));
        }
        let tenth = (rounds / 10).max(1);
        let spread: Vec<String> = ta
            .chunks(tenth)
            .zip(tb.chunks(tenth))
            .map(|(x, y)| format!("{:.2}", median(x) / median(y)))
            .collect();
        if let Some(lang) = lang {
            println!("  with LANG={lang}:");
        }
        println!("  {:48} {:7.3} ms", a.0, median(&ta));
        println!("  {:48} {:7.3} ms", b.0, median(&tb));
        println!(
            "  ratio {:.2}; in each tenth of the rounds: {}",
            median(&ta) / median(&tb),
            spread.join(" ")
        );
    }

    println!("pidlab run --nest N --rootfs R, median of {} runs:", rounds / 10);
    for n in [1, 2, 4, 8, 16, 32] {
        let argv = words(&format!("{p} run --nest {n} --rootfs {r} -- /bin/true"));
        let t: Vec<f64> = (0..rounds / 10).map(|_| time_once(&argv, None)).collect();
        println!("  N={n:<3} {:7.3} ms", median(&t));
    }
}
