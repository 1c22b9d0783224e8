//! The run flags whose words need reading: `--entrypoint` as docker's CLI
//! takes it, `--security-opt`, and `--init`'s choices.

use anyhow::{Result, bail};

use crate::cli::RunArgs;
use crate::duration::StopTimeout;
use crate::runtime::launch::Form;
use crate::runtime::rootfs::{PIDLAB_DIR, SystemPaths};
use crate::runtime::seccomp;
use crate::signals;

/// `--entrypoint PROG` as `docker run` reads it: one executable, never
/// split or parsed (docker CLI: `strslice.StrSlice{entrypoint}`); `''` is
/// an empty ENTRYPOINT, which clears the image's. A JSON array here is
/// almost surely meant as Dockerfile syntax, which Docker would run as a
/// program named `["...",`: refused, with where it belongs.
pub(super) fn command_line_entrypoint(text: &str) -> Result<Form> {
    if text.trim_start().starts_with('[') {
        bail!(
            "--entrypoint {text:?}: --entrypoint takes one program, as docker run --entrypoint does \
             (e.g. --entrypoint /bin/sh -- -c 'echo hi'); a JSON array or shell form belongs in an \
             ENTRYPOINT line of a Dockerfile, read with -f FILE"
        );
    }
    Ok(Form::Exec(if text.is_empty() { Vec::new() } else { vec![text.to_string()] }))
}

/// `--security-opt` as `docker run` spells it; only the two opt-outs pidlab
/// has. Anything else is refused rather than ignored: a workshop attendee
/// who asks for a protection must not believe it is on.
pub(super) fn security_options(options: &[String]) -> Result<(seccomp::Mode, SystemPaths)> {
    let mut seccomp = seccomp::Mode::Default;
    let mut paths = SystemPaths::Confined;
    for option in options {
        match option.as_str() {
            "seccomp=unconfined" => seccomp = seccomp::Mode::Unconfined,
            "systempaths=unconfined" => paths = SystemPaths::Unconfined,
            other => bail!(
                "--security-opt {other:?}: pidlab knows seccomp=unconfined (no system-call filter) and \
                 systempaths=unconfined (the whole /proc); it has no seccomp profile files, AppArmor, \
                 SELinux or no-new-privileges"
            ),
        }
    }
    Ok((seccomp, paths))
}

/// What `--init[=...]` puts in front of the workload.
pub(super) fn init_argv(choice: &str, args: &RunArgs, stop_signal: i32) -> Result<Vec<String>> {
    let builtin = |extra: &[&str]| {
        let mut argv = vec![format!("{PIDLAB_DIR}/pidlab"), "init".to_string()];
        argv.extend(extra.iter().map(|s| s.to_string()));
        if args.init_group {
            argv.push("--group".into());
        }
        if args.init_verbose {
            argv.push("--verbose".into());
        }
        argv
    };
    // Options of pidlab's init that some other inits have too.
    let mapped = |name: &str, group: Option<&str>, verbose: &str| -> Result<Vec<String>> {
        let mut argv = vec![name.to_string()];
        match (args.init_group, group) {
            (false, _) => {}
            (true, Some(flag)) => argv.push(flag.to_string()),
            (true, None) => bail!(
                "--init-group: {name} already sends every signal to the workload's whole process group (it \
                 starts it in a session of its own); leave the flag out"
            ),
        }
        if args.init_verbose {
            argv.push(verbose.to_string());
        }
        Ok(argv)
    };
    match choice {
        "pidlab" => Ok(builtin(&[])),
        "drain" => {
            // The sandbox's stop signal goes to every process; with
            // --init-group, other signals go to the workload's group.
            let grace = match args.stop_timeout {
                Some(StopTimeout::After(seconds)) => seconds.to_string(),
                Some(StopTimeout::Forever) | None => "10".to_string(),
            };
            Ok(builtin(&["--drain", "--grace", &grace, "--stop-signal", &signals::name_of(stop_signal)]))
        }
        // The real programs, found on the PATH of the root (the default
        // root shares the host's /usr), run as `docker run --init` runs
        // docker-init (which is tini): `tini -- CMD...`.
        "tini" => mapped("tini", Some("-g"), "-v"),
        "dumb-init" => mapped("dumb-init", None, "--verbose"),
        path if path.starts_with('/') => {
            if args.init_group || args.init_verbose {
                bail!(
                    "--init-group and --init-verbose apply to pidlab's own init (--init or --init=drain) and \
                     to --init=tini and --init=dumb-init, not to {path}"
                );
            }
            Ok(vec![path.to_string()])
        }
        other => bail!(
            "--init={other}: use --init (pidlab's own init), --init=drain, --init=tini or --init=dumb-init \
             (those programs, from the root), or an absolute path in the root such as --init=/sbin/my-init"
        ),
    }
}
