//! The scripts in rootfs-scripts/ build roots that boot, and pidlab never
//! writes into a `--rootfs` directory.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

fn build_busybox_root(dir: &Path) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/rootfs-scripts/busybox-root.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(script).arg(dir);
    let out = run_within(cmd, Duration::from_secs(60));
    assert_eq!(out.code(), 0, "busybox-root.sh failed (does this machine have busybox-static?): {out:?}");
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = entries(dir).iter().map(|p| p.display().to_string()).collect();
    names.sort();
    names
}

#[test]
fn a_busybox_root_boots_with_chroot_and_pivot_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("busybox");
    build_busybox_root(&root);
    let before = listing(&root);
    let r = root.to_str().unwrap();
    let out = run(["run", "--rootfs", r, "--", "/bin/sh", "-c", "echo ok $$"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "ok 1", "{out:?}");
    // pidlab is statically linked and bound in, so it runs in a root
    // without a C library.
    let out = run(["run", "--pivot-root", "--rootfs", r, "--", "pidlab", "probe", "--sleep", "0"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("pid=1 ppid=0"), "{out:?}");
    assert_eq!(listing(&root), before, "pidlab wrote into the --rootfs directory");
    // Running the script again is quick and changes nothing.
    build_busybox_root(&root);
    assert_eq!(listing(&root), before);
}

#[test]
fn redis_roots_boot_and_their_shell_decides_who_is_pid_1() {
    require("/usr/bin/redis-server", "apt-get install redis-server (.ci/run does)");
    let tmp = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/rootfs-scripts/redis-root.sh");
    for (shell, probe_pid) in [("dash", "pid=2"), ("bash", "pid=1"), ("busybox", "pid=1")] {
        let root = tmp.path().join(shell);
        let mut cmd = Command::new("bash");
        cmd.args([script, "--shell", shell]).arg(&root);
        let out = run_within(cmd, Duration::from_secs(120));
        assert_eq!(out.code(), 0, "redis-root.sh --shell {shell}: {out:?}");
        let r = root.to_str().unwrap();
        let out = run(["run", "--rootfs", r, "--", "redis-server", "--version"]);
        assert!(out.stdout.starts_with("Redis server v="), "{shell}: {out:?}");
        let out = run(["run", "--rootfs", r, "--cmd", "pidlab probe --sleep 0"]);
        assert!(
            out.stdout.contains(probe_pid),
            "{shell} as /bin/sh: expected the probe at {probe_pid}: {out:?}"
        );
    }
    let help = run_within(
        {
            let mut cmd = Command::new("bash");
            cmd.args([script, "--help"]);
            cmd
        },
        Duration::from_secs(10),
    );
    assert_eq!(help.code(), 0);
    assert!(help.stdout.contains("--shell dash"), "{help:?}");
}

/// The sandbox's `/` as its own mountinfo shows it: the directory of its
/// file system that is mounted (field 4) and the file system's type.
fn root_mount(root: &Path) -> (String, String) {
    let script = r#"awk '$5 == "/" { for (i = 7; i <= NF; i++) if ($i == "-") print $4, $(i + 1) }' /proc/self/mountinfo"#;
    let out = run(["run", "--rootfs", root.to_str().unwrap(), "--", "sh", "-c", script]);
    assert_eq!(out.code(), 0, "{out:?}");
    let (dir, fstype) = out.stdout.trim().split_once(' ').unwrap_or_else(|| panic!("{out:?}"));
    (dir.to_string(), fstype.to_string())
}

#[test]
fn a_root_with_mount_points_is_bound_whole_and_one_without_is_assembled() {
    let tmp = tempfile::tempdir().unwrap();
    let prepared = tmp.path().join("prepared");
    build_busybox_root(&prepared);
    assert!(prepared.join(".pidlab/pidlab").is_file(), "busybox-root.sh makes pidlab's mount point");
    // The same root without pidlab's mount point: pidlab may not create it
    // in DIR, so it assembles the root on a tmpfs instead.
    let bare = tmp.path().join("bare");
    let out = run_within(
        {
            let mut cmd = Command::new("cp");
            cmd.arg("-a").arg(&prepared).arg(&bare);
            cmd
        },
        Duration::from_secs(20),
    );
    assert_eq!(out.code(), 0, "{out:?}");
    std::fs::remove_dir_all(bare.join(".pidlab")).unwrap();
    let before = (listing(&prepared), listing(&bare));
    let stamp = std::fs::metadata(prepared.join(".pidlab/pidlab")).unwrap().modified().unwrap();

    let (dir, _) = root_mount(&prepared);
    assert!(dir.ends_with("/prepared"), "DIR itself is bound as /: {dir}");
    assert_eq!(root_mount(&bare), ("/".to_string(), "tmpfs".to_string()), "assembled on a fresh tmpfs");
    // Both give pidlab itself, /proc and /dev, and neither wrote into DIR.
    for root in [&prepared, &bare] {
        let script = "pidlab probe --sleep 0 && test -c /dev/null && test -e /proc/1/ns/pid";
        let out = run(["run", "--rootfs", root.to_str().unwrap(), "--", "sh", "-c", script]);
        assert_eq!(out.code(), 0, "{root:?}: {out:?}");
    }
    assert_eq!((listing(&prepared), listing(&bare)), before, "pidlab wrote into a --rootfs directory");
    let pidlab_file = std::fs::metadata(prepared.join(".pidlab/pidlab")).unwrap();
    assert_eq!(
        (pidlab_file.len(), pidlab_file.modified().unwrap()),
        (0, stamp),
        "the mount point was touched"
    );
}

#[test]
fn volume_targets_resolve_inside_the_root_and_are_never_made_in_dir_or_on_the_host() {
    let tmp = tempfile::tempdir().unwrap();
    // Without pidlab's mount points the root is assembled: DIR's entries
    // are bound on a tmpfs, where new top-level directories can be made.
    let dir = tmp.path().join("bare");
    build_busybox_root(&dir);
    std::fs::remove_dir_all(dir.join(".pidlab")).unwrap();
    // An absolute symbolic link in DIR, naming a directory of the host.
    let host = tmp.path().join("host");
    std::fs::create_dir(&host).unwrap();
    std::os::unix::fs::symlink(&host, dir.join("link")).unwrap();
    let volume = tmp.path().join("volume");
    std::fs::create_dir(&volume).unwrap();
    std::fs::write(volume.join("file"), "through the volume\n").unwrap();
    let before = (listing(&dir), listing(&dir.join("data")));
    let with = |target: &str, script: &str| {
        let spec = format!("{}:{target}", volume.display());
        run(["run", "--rootfs", dir.to_str().unwrap(), "-v", &spec, "--", "sh", "-c", script])
    };

    // A new path at the top level is made on pidlab's tmpfs.
    let out = with("/new/deeper", "cat /new/deeper/file");
    assert_eq!((out.code(), out.stdout.trim()), (0, "through the volume"), "{out:?}");
    // A path inside one of DIR's own directories would have to be made in
    // DIR: refused, naming the path and the fix.
    let out = with("/data/new", "true");
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(out.stderr.contains("/data/new") && out.stderr.contains("create it first"), "{out:?}");
    // Through the link, the host's directory must not be reached: inside
    // the root, /link leads to a path the root does not have.
    let out = with("/link/x", "true");
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(out.stderr.contains("/link is a symbolic link"), "{out:?}");
    assert!(entries(&host).is_empty(), "pidlab created {:?} on the host", entries(&host));
    // An existing directory of DIR is a mount point as it is.
    let out = with("/data", "cat /data/file");
    assert_eq!((out.code(), out.stdout.trim()), (0, "through the volume"), "{out:?}");
    assert_eq!((listing(&dir), listing(&dir.join("data"))), before, "pidlab wrote into DIR");
}
