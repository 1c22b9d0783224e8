//! What a hostile workload, root inside the sandbox, can no longer reach:
//! the host's kernel settings through /proc, new namespaces and mounts
//! (seccomp), a writable host file under a read-only bind, and the full
//! powers of `pidlab exec`. Each test names the README Safety claim it
//! backs. None of them changes a host setting: a write is only *opened*
//! (`: >> FILE` opens for appending and writes nothing), which a read-only
//! mount refuses and which changes nothing where it is allowed.

mod common;

use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(20);

/// The /proc files Docker masks (moby `oci/defaults.go`, MaskedPaths) that
/// this kernel has: each must read as empty inside.
fn masked_on_this_host() -> Vec<&'static str> {
    [
        "/proc/acpi",
        "/proc/asound",
        "/proc/interrupts",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/proc/timer_list",
        "/proc/timer_stats",
    ]
    .into_iter()
    .filter(|p| std::path::Path::new(p).exists())
    .collect()
}

/// README Safety: "/proc/sys and the other kernel settings Docker protects
/// are read-only, and the files Docker hides read as empty, at every
/// nesting level's /proc". The core_pattern write is the one that let a
/// workload run a program of its choosing on the host as root.
#[test]
fn proc_sys_is_read_only_and_kernel_files_read_empty_at_every_level() {
    let masked = masked_on_this_host();
    assert!(masked.contains(&"/proc/timer_list"), "this kernel has no /proc/timer_list to check against");
    let mut script = String::from(
        "for f in /proc/sys/kernel/core_pattern /proc/sys/kernel/hostname /proc/sysrq-trigger; do \
           ( : >> $f ) 2>/dev/null && echo \"writable $f\" || echo \"refused $f\"; done; \
         for d in /proc/bus /proc/fs /proc/irq /proc/sys; do \
           awk -v d=$d '$5 == d { split($6, o, \",\"); print \"mount \" d \" \" o[1] }' /proc/self/mountinfo; done; ",
    );
    for path in &masked {
        script.push_str(&format!(
            "if [ -d {path} ]; then echo \"{path} holds $(ls -A {path} | wc -l)\"; \
             else echo \"{path} holds $(wc -c < {path})\"; fi; "
        ));
    }
    let levels: [&[&str]; 5] = [
        &["run"],
        &["run", "--pivot-root"],
        &["run", "--nest", "3"],
        &["run", "--rootless"],
        &["run", "--rootless", "--nest", "2"],
    ];
    for args in levels {
        let out = run([args, &["--", "sh", "-c", &script]].concat());
        assert_eq!(out.code(), 0, "{args:?}: {out:?}");
        for file in ["core_pattern", "hostname", "sysrq-trigger"] {
            let line = out.stdout.lines().find(|l| l.ends_with(file)).unwrap_or_default();
            assert!(line.starts_with("refused"), "{args:?}: {file} could be opened for writing: {out:?}");
        }
        for dir in ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"] {
            if std::path::Path::new(dir).exists() {
                assert!(
                    out.stdout.contains(&format!("mount {dir} ro")),
                    "{args:?}: {dir} is not read-only: {out:?}"
                );
            }
        }
        for path in &masked {
            assert!(
                out.stdout.contains(&format!("{path} holds 0")),
                "{args:?}: {path} is not empty: {out:?}"
            );
        }
    }
}

/// README Safety: `--security-opt systempaths=unconfined` (Docker's own
/// spelling) gives the workload the whole /proc, as Docker does.
#[test]
fn systempaths_unconfined_leaves_proc_as_the_kernel_made_it() {
    let script = "wc -c < /proc/timer_list; awk '$5 == \"/proc/sys\"' /proc/self/mountinfo | wc -l";
    let confined = run(["run", "--", "sh", "-c", script]);
    let open = run(["run", "--security-opt", "systempaths=unconfined", "--", "sh", "-c", script]);
    assert_eq!(confined.stdout.split_whitespace().collect::<Vec<_>>(), ["0", "1"], "{confined:?}");
    let words: Vec<&str> = open.stdout.split_whitespace().collect();
    assert_eq!(words.get(1), Some(&"0"), "/proc/sys is still a mount of its own: {open:?}");
    let timers: usize = words[0].parse().unwrap();
    assert!(timers > 0, "/proc/timer_list still empty: {open:?}");
}

/// README Safety: "the workload cannot create namespaces or mount, even
/// in a user namespace of its own (seccomp)". `unshare -U` needs no
/// capability at all: only the filter stops it. keyctl reaches the
/// kernel's keyrings, which no namespace separates.
#[test]
fn seccomp_refuses_namespaces_mounts_and_keyrings() {
    require("/usr/bin/keyctl", "apt-get install keyutils");
    let script = "unshare -Urm sh -c 'mount -t tmpfs x /tmp' 2>&1 && echo userns-mounted; \
                  unshare -U true 2>&1 && echo userns-made; \
                  unshare -m true 2>&1 && echo mntns-made; \
                  keyctl show @s >/dev/null 2>&1 && echo keyring-read || echo keyring-refused; \
                  grep Seccomp: /proc/self/status";
    for args in [&["run"][..], &["run", "--pivot-root"], &["run", "--nest", "2"], &["run", "--rootless"]] {
        let out = run([args, &["--", "sh", "-c", script]].concat());
        for made in ["userns-mounted", "userns-made", "mntns-made", "keyring-read"] {
            assert!(!out.stdout.contains(made), "{args:?}: {made}: {out:?}");
        }
        assert!(out.stdout.contains("keyring-refused"), "{args:?}: {out:?}");
        assert_eq!(out.stdout.matches("Operation not permitted").count(), 3, "{args:?}: {out:?}");
        assert!(out.stdout.contains("Seccomp:\t2"), "{args:?}: no filter: {out:?}");
    }
    // The test can tell: without the filter, the same script gets through
    // (with pivot_root: the kernel refuses a user namespace to a chrooted
    // process, unshare(2), EPERM).
    let open = run(["run", "--pivot-root", "--security-opt", "seccomp=unconfined", "--", "sh", "-c", script]);
    assert!(open.stdout.contains("userns-mounted") && open.stdout.contains("keyring-read"), "{open:?}");
    assert!(open.stdout.contains("Seccomp:\t0"), "{open:?}");
}

/// As Docker: CAP_SYS_ADMIN in the set relaxes the calls it guards (mount,
/// unshare), but never the keyrings.
#[test]
fn cap_add_sys_admin_relaxes_what_docker_relaxes() {
    require("/usr/bin/keyctl", "apt-get install keyutils");
    let script = "mkdir -p /tmp/m && mount -t tmpfs x /tmp/m && echo mounted; \
                  unshare -U true && echo userns-made; \
                  keyctl show @s >/dev/null 2>&1 && echo keyring-read || echo keyring-refused";
    let out = run(["run", "--pivot-root", "--cap-add", "SYS_ADMIN", "--", "sh", "-c", script]);
    assert_eq!(out.stdout.trim(), "mounted\nuserns-made\nkeyring-refused", "{out:?}");
    let all = run(["run", "--cap-add", "ALL", "--", "sh", "-c", script]);
    assert!(all.stdout.contains("keyring-refused"), "{all:?}");
}

/// README Safety: "read-only binds are read-only all the way down". A
/// file bound over /etc/hostname (in a mount namespace of this test's own)
/// sits under the default root's read-only /etc; and a mount inside a
/// `-v DIR:PATH:ro` volume sits under that volume.
#[test]
fn read_only_binds_are_recursive() {
    require("/usr/bin/unshare", "apt-get install util-linux");
    let tmp = private_tmp();
    let file = tmp.path().join("hostname");
    std::fs::write(&file, "before\n").unwrap();
    let volume = tmp.path().join("volume");
    std::fs::create_dir_all(volume.join("sub")).unwrap();
    let script = r#"
        mount --bind "$1" /etc/hostname || exit 99
        mount -t tmpfs pidlab-test-sub "$2/sub" || exit 99
        "$3" run -v "$2:/vol:ro" -- sh -c 'echo x >> /etc/hostname; touch /vol/sub/f; touch /vol/g'
        echo "exit $?"
    "#;
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&file)
        .arg(&volume)
        .arg(bin());
    let out = run_within(cmd, T);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "before\n", "wrote through /etc: {out:?}");
    assert_eq!(out.stderr.matches("Read-only file system").count(), 3, "{out:?}");
    assert!(!volume.join("g").exists());
}

/// README Safety: "`pidlab exec` runs with the sandbox's limits, from its
/// record": the same capabilities and filter as PID 1 (with --cap-drop ALL,
/// none), no descriptor of the caller's, and the environment the run gave
/// PID 1, not the one PID 1 has now (it re-exec'd with PATH pointing at a
/// directory it filled).
#[test]
fn exec_keeps_the_sandbox_limits_and_ignores_what_the_workload_controls() {
    let lab = Lab::new();
    let workload = "mkdir -p /tmp/evil && printf '#!/bin/sh\\necho pwned\\n' > /tmp/evil/id && chmod +x /tmp/evil/id \
                    && exec env PATH=/tmp/evil:/usr/bin:/bin /.pidlab/pidlab probe";
    lab.start(&["run", "-d", "--name", "capped", "--cap-drop", "ALL", "--cmd", workload]);
    let pid1 =
        lab.ok(&["exec", "capped", "grep", "-E", "^(CapEff|CapBnd|CapPrm|Seccomp):", "/proc/1/status"]);
    let exec =
        lab.ok(&["exec", "capped", "grep", "-E", "^(CapEff|CapBnd|CapPrm|Seccomp):", "/proc/self/status"]);
    assert_eq!(exec, pid1, "exec'd process differs from PID 1");
    assert!(exec.contains("CapEff:\t0000000000000000") && exec.contains("Seccomp:\t2"), "{exec}");
    assert!(
        lab.ok(&["exec", "capped", "cat", "/proc/1/environ"]).contains("/tmp/evil"),
        "the workload re-exec'd"
    );
    let id = lab.ok(&["exec", "capped", "id", "-u"]);
    assert_eq!(id.trim(), "0", "exec ran the workload's `id`: {id}");
    // A descriptor the caller leaves open (5) does not reach the sandbox.
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "exec \"$0\" exec capped ls /proc/self/fd 5</dev/null", bin()])
        .env("PIDLAB_STATE_DIR", lab.state.path());
    let fds = run_within(cmd, T);
    assert_eq!(fds.stdout.split_whitespace().collect::<Vec<_>>(), ["0", "1", "2", "3"], "{fds:?}");
    lab.finish();
}

/// With --nest N, `exec` lands beside the workload, in the innermost
/// namespace, and takes nothing of pidlab's own environment.
#[test]
fn exec_enters_the_innermost_level_by_default() {
    let lab = Lab::new();
    let mut cmd = lab.cmd(&["run", "-d", "--name", "deep", "--nest", "3", "--", "pidlab", "probe"]);
    cmd.env("PIDLAB_TEST_HOST_ONLY", "leak");
    let name = run_within(cmd, T);
    assert_eq!(name.code(), 0, "{name:?}");
    lab.ok(&["logs", "--wait-for", "probe: ready", "deep"]);
    let out = lab.ok(&["exec", "deep", "sh", "-c", "cat /proc/1/comm; env"]);
    assert!(out.starts_with("pidlab\n"), "PID 1 beside exec is not the probe: {out}");
    assert!(!out.contains("PIDLAB_TEST_HOST_ONLY"), "host environment leaked: {out}");
    let level = lab.ok(&["exec", "--level", "1", "deep", "cat", "/proc/1/comm"]);
    assert_eq!(level.trim(), "pidlab:nest-1", "{level}");
    lab.finish();
}

/// README Safety: "a missing volume path is created only on a tmpfs pidlab
/// mounted". An earlier volume can cover such a tmpfs (`-v A:/data`): a
/// path below it (`-v B:/data/sub`) is then in A, on the host, and must be
/// refused, not created there. Likewise a DIR entry, when `/tmp` (pidlab's
/// tmpfs) is covered by a volume from the same file system as DIR.
#[test]
fn a_volume_never_creates_its_mount_point_in_an_earlier_volume_or_in_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    let spec = |host: &std::path::Path, inside: &str| format!("{}:{inside}", host.display());
    let out = run(["run", "-v", &spec(&a, "/data"), "-v", &spec(&b, "/data/sub"), "--", "true"]);
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(out.stderr.contains("/data/sub") && out.stderr.contains("create it first"), "{out:?}");
    assert!(entries(&a).is_empty(), "pidlab created {:?} in a host directory", entries(&a));

    // A root without mount points (assembled), on the same file system as A.
    let root = tmp.path().join("root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    copy_executable(std::path::Path::new("/bin/busybox"), &root.join("bin/sh"));
    let args =
        ["run", "--rootfs", root.to_str().unwrap(), "-v", &spec(&a, "/tmp"), "-v", &spec(&b, "/bin/newdir")];
    let out = run([&args[..], &["--", "/bin/sh", "-c", "true"]].concat());
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(!root.join("bin/newdir").exists(), "pidlab created bin/newdir in --rootfs DIR");
}

/// `inspect` shows which processes run under the filter (the kernel's
/// `Seccomp:` line): the workload, not the outer nest levels.
#[test]
fn inspect_shows_the_seccomp_filter() {
    let lab = Lab::new();
    lab.start(&["run", "-d", "--name", "filtered", "--nest", "2", "--", "pidlab", "probe"]);
    let out = lab.ok(&["inspect", "filtered", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let modes: Vec<&str> =
        v["processes"].as_array().unwrap().iter().map(|p| p["seccomp"].as_str().unwrap()).collect();
    assert_eq!(modes, ["none", "filter (1 installed)"], "{out}");
    lab.finish();
    let lab = Lab::new();
    lab.start(&[
        "run",
        "-d",
        "--name",
        "open",
        "--security-opt",
        "seccomp=unconfined",
        "--",
        "pidlab",
        "probe",
    ]);
    let out = lab.ok(&["inspect", "open"]);
    // The plan says it; no process shows a filter.
    assert!(out.contains("seccomp  unconfined") && !out.contains("filter ("), "{out}");
    lab.finish();
}

/// README Safety: the workload cannot type into a terminal it shares
/// (ioctl TIOCSTI). With `-i` on a terminal the workload's controlling
/// terminal is the user's own (here script(1)'s), and what it typed would
/// run in the user's shell once pidlab exits.
#[test]
fn the_workload_cannot_type_into_the_users_terminal() {
    require("/usr/bin/script", "apt-get install bsdutils");
    require("/usr/bin/perl", "apt-get install perl-base");
    let inject = r#"my $c = "x"; ioctl(STDIN, 0x5412, $c) ? print "typed\n" : print "refused: $!\n""#;
    let run_it = |security: &str| {
        let command = format!("{} run -i {security} -- perl -e '{inject}'", bin());
        let mut cmd = std::process::Command::new("/usr/bin/script");
        cmd.args(["-qec", &command, "/dev/null"]);
        run_within(cmd, Duration::from_secs(20))
    };
    let confined = run_it("");
    assert!(confined.stdout.contains("refused: Operation not permitted"), "{confined:?}");
    // The test can tell: without the filter the same ioctl types.
    let open = run_it("--security-opt seccomp=unconfined");
    assert!(open.stdout.contains("typed"), "{open:?}");
}

/// README Safety: "a --rootfs DIR is bound as pidlab checked it". The
/// owner of DIR (here this test) swaps one of its directories for a
/// symbolic link to a host directory after pidlab checked it and before
/// the root is built (held there by `--step`): pidlab must refuse, not
/// bind the host's directory into the sandbox.
#[test]
fn a_rootfs_entry_swapped_for_a_link_after_the_check_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("root");
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    copy_executable(std::path::Path::new("/bin/busybox"), &dir.join("bin/sh"));
    let secret = tmp.path().join("host-secret");
    std::fs::create_dir(&secret).unwrap();
    std::fs::write(secret.join("marker"), "host\n").unwrap();
    let mut cmd = std::process::Command::new("sh");
    let script =
        format!("exec \"$0\" run --step --rootfs {} -- /bin/sh -c 'cat /etc/marker' 2>&1", dir.display());
    cmd.args(["-c", &script, bin()]);
    let mut walk = Running::start(&mut cmd);
    for step in [2, 3, 4, 5] {
        walk.expect_line(&format!("── step {step}/14"), T);
        walk.write_stdin("\n");
    }
    walk.expect_line("── step 6/14", T);
    std::fs::rename(dir.join("etc"), tmp.path().join("old-etc")).unwrap();
    std::os::unix::fs::symlink(&secret, dir.join("etc")).unwrap();
    walk.write_stdin(&"\n".repeat(20));
    let out = walk.finish(T);
    assert!(!out.stdout.contains("\nhost"), "the host directory was bound into the sandbox: {out:?}");
    assert!(out.stdout.contains("became a symbolic link"), "{out:?}");
}

/// A workload can leave a FIFO where /etc/passwd was in a root it may
/// write (`--rootfs DIR`). pidlab reads that file to resolve `-u`; it must
/// not open the FIFO and wait for a writer that never comes.
#[test]
fn a_fifo_for_etc_passwd_does_not_hang_user_resolution() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("root");
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    copy_executable(std::path::Path::new("/bin/busybox"), &dir.join("bin/sh"));
    nix::unistd::mkfifo(&dir.join("etc/passwd"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let root = dir.to_str().unwrap();
    let started = std::time::Instant::now();
    let out =
        run_within(pidlab(["run", "--rootfs", root, "-u", "1000", "--", "/bin/sh", "-c", UID_OF_SELF]), T);
    assert!(started.elapsed() < T, "pidlab hung on the FIFO: {out:?}");
    assert_eq!((out.code(), out.stdout.split_whitespace().next()), (0, Some("1000")), "{out:?}");
}

/// The real user ID of the shell, from /proc with shell built-ins only
/// (`id` would read /etc/passwd, which here is the FIFO).
const UID_OF_SELF: &str =
    "while read -r key value; do [ \"$key\" = Uid: ] && echo $value; done < /proc/self/status; :";

/// A chrooted process's root is not hidden from the other processes of its
/// PID namespace: through `/proc/PID/root/..` they reach the host's root.
/// So a chrooted and a pivot_rooted sandbox may not share one, whichever
/// joins the other.
#[test]
fn sandboxes_sharing_a_pid_namespace_switch_root_the_same_way() {
    let lab = Lab::new();
    lab.start(&["run", "-d", "--pivot-root", "--name", "web", "--", "pidlab", "probe"]);
    let out = lab.run(&["run", "--pid", "container:web", "--", "true"]);
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(out.stderr.contains("add --pivot-root"), "no fix named: {out:?}");
    let pivoted = lab.run(&["run", "--pivot-root", "--pid", "container:web", "--", "true"]);
    assert_eq!(pivoted.code(), 0, "{pivoted:?}");
    // The other way round too: a pivot_rooted joiner would reach the
    // host through the chrooted sandbox's processes.
    lab.start(&["run", "-d", "--name", "chrooted", "--", "pidlab", "probe"]);
    let out = lab.run(&["run", "--pivot-root", "--pid", "container:chrooted", "--", "true"]);
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(out.stderr.contains("run chrooted with --pivot-root too"), "no fix named: {out:?}");
    lab.finish();
}

/// A root bound whole (`--rootfs DIR` with pidlab's mount points) is a
/// directory its owner can still change: DIR/proc swapped for a link
/// after the check (here while `--step` holds at step 7) must not take
/// the proc mount elsewhere and leave /proc/sys writable.
#[test]
fn a_proc_mount_point_swapped_for_a_link_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("root");
    for sub in ["bin", "proc", "dev", "tmp", ".pidlab", "d/zz"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::write(dir.join(".pidlab/pidlab"), "").unwrap();
    copy_executable(std::path::Path::new("/bin/busybox"), &dir.join("bin/sh"));
    let mut cmd = std::process::Command::new("sh");
    // Where the proc mount would land (DIR/d), and where it should be.
    let probe = "for f in /d/sys/kernel/core_pattern /proc/sys/kernel/core_pattern; do \
                 [ -w $f ] && w=yes; done; echo writable=${w:-no}";
    let script = format!("exec \"$0\" run --step --rootfs {} -- /bin/sh -c '{probe}' 2>&1", dir.display());
    cmd.args(["-c", &script, bin()]);
    let mut walk = Running::start(&mut cmd);
    for step in 2..=6 {
        walk.expect_line(&format!("── step {step}/14"), T);
        walk.write_stdin("\n");
    }
    walk.expect_line("── step 7/14", T);
    std::fs::rename(dir.join("proc"), dir.join("proc.real")).unwrap();
    std::os::unix::fs::symlink("d/zz/..", dir.join("proc")).unwrap();
    walk.write_stdin(&"\n".repeat(20));
    let out = walk.finish(T);
    assert!(!out.stdout.contains("writable=yes"), "/proc/sys was writable: {out:?}");
    assert!(out.stdout.contains("became a symbolic link"), "{out:?}");
}
