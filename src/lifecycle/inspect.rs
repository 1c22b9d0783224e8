//! `pidlab inspect`: one sandbox, running or exited: its processes with
//! their PIDs at every level, signals and limits, how it ended, and the
//! plan it was started with.

use anyhow::Result;
use clap::Parser;
use serde_json::{Value, json};

use super::{cmdline, sandbox_fields};
use crate::cli::{Cli, Command, Format, InspectArgs};
use crate::output;
use crate::procfs;
use crate::record::{self, Record, Sandbox, open_pid1};
use crate::runtime::capabilities::DOCKER_DEFAULT;
use crate::signals;

/// A capability set in a few words: "Docker default (14)", "all (41)",
/// "default − NET_RAW", "default + SYS_ADMIN", "all − SYS_RESOURCE",
/// "none"; whichever is shortest, or the names when every way is long. The
/// full list is for JSON.
fn condensed(names: &[String]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    let all: Vec<String> = caps::all().into_iter().map(|c| c.to_string()).collect();
    let default: Vec<String> = DOCKER_DEFAULT.iter().map(|c| c.to_string()).collect();
    let short = |c: &String| c.trim_start_matches("CAP_").to_string();
    let missing = |from: &[String]| from.iter().filter(|c| !names.contains(c)).map(short).collect::<Vec<_>>();
    let added: Vec<String> = names.iter().filter(|c| !default.contains(c)).map(short).collect();
    let mut from_default = vec!["default".to_string()];
    from_default.extend(missing(&default).iter().map(|c| format!("− {c}")));
    from_default.extend(added.iter().map(|c| format!("+ {c}")));
    let mut from_all = vec!["all".to_string()];
    from_all.extend(missing(&all).iter().map(|c| format!("− {c}")));
    let shortest = if from_all.len() < from_default.len() { from_all } else { from_default };
    match shortest.len() {
        1 if shortest[0] == "all" => format!("all ({})", names.len()),
        1 => format!("Docker default ({})", default.len()),
        2..=6 => shortest.join(" "),
        _ => names.iter().map(short).collect::<Vec<_>>().join(" "),
    }
}

pub fn inspect(args: InspectArgs) -> Result<i32> {
    let sandbox = Sandbox::open(&args.name)?;
    if args.tree || args.svg.is_some() {
        return tree(&sandbox, args.format, args.svg.as_deref());
    }
    let status = sandbox.status();
    let record = sandbox.record();
    // A running sandbox shows its processes; one that has ended shows how.
    let mut shared_with = Vec::new();
    let processes: Vec<Value> = if status.is_running() {
        let (_, pid1, _) = open_pid1(&sandbox, "inspect")?;
        shared_with = sharing_pid_namespace(&sandbox, pid1.pid);
        procfs::members(pid1.pid).into_iter().filter_map(describe_process).collect()
    } else {
        Vec::new()
    };
    let ended = sandbox.ended();
    let mut doc = sandbox_fields(&sandbox);
    doc["started"] = record.as_ref().map_or(Value::Null, |r| json!(r.created));
    doc["finished"] = json!(ended.as_ref().and_then(|e| e.at));
    doc["plan"] = record.as_ref().map_or(Value::Null, plan_of);
    doc["plan"]["rootfs"] = rootfs_of(&sandbox);
    doc["processes"] = Value::Array(processes.clone());
    doc["pid_namespace_shared_with"] = json!(shared_with);
    if args.format == Format::Json {
        output::document(&doc);
        return Ok(0);
    }
    print!("{}", render_inspect(&doc));
    Ok(0)
}

/// `inspect --tree`: the processes of a running sandbox as a tree, with
/// its stop signal as each one has it (`observe/tree.rs`).
fn tree(sandbox: &Sandbox, format: Format, svg: Option<&std::path::Path>) -> Result<i32> {
    let (record, pid1, _) = open_pid1(sandbox, "show the tree of").map_err(|err| {
        record::refuse(format!("{err:#} (`pidlab inspect {}` shows how it ended)", sandbox.name))
    })?;
    let sig = signals::parse_number(&record.stop_signal)
        .ok()
        .and_then(|n| nix::sys::signal::Signal::try_from(n).ok())
        .unwrap_or(nix::sys::signal::Signal::SIGTERM);
    let Some(root) = crate::observe::tree::of(pid1.pid, sig) else {
        return Err(record::refuse(format!("{}'s PID 1 has just exited", sandbox.name)));
    };
    if let Some(path) = svg {
        let title = format!("{}: its processes and PID namespaces", sandbox.name);
        let picture = crate::observe::tree::svg(&title, &root, sig.as_str());
        if path == std::path::Path::new("-") {
            // `--svg -`: the picture is the output.
            print!("{picture}");
            return Ok(0);
        }
        std::fs::write(path, picture).map_err(|err| {
            record::refuse(format!(
                "--svg {}: cannot write the picture ({err}); give a path in a directory you can write to",
                path.display()
            ))
        })?;
    }
    if format == Format::Json {
        let mut doc = sandbox_fields(sandbox);
        doc["stop_signal"] = json!(sig.as_str());
        doc["tree"] = serde_json::to_value(&root)?;
        output::document(&doc);
    } else {
        print!("{}: {}", sandbox.name, crate::observe::tree::render(&root, sig));
    }
    Ok(0)
}

/// The other running sandboxes whose workload is in the same PID
/// namespace (one joined the other's with `--pid container:NAME`): the
/// inode of /proc/PID/ns/pid names a namespace.
fn sharing_pid_namespace(sandbox: &Sandbox, pid1: i32) -> Vec<String> {
    let Some(ours) = procfs::pid_namespace(pid1) else { return Vec::new() };
    let mut names: Vec<String> = Sandbox::all()
        .unwrap_or_default()
        .into_iter()
        .filter(|other| other.name != sandbox.name && other.status().is_running())
        .filter(|other| {
            other
                .record()
                .map(|r| r.pid1)
                .is_some_and(|p| p.alive() && procfs::pid_namespace(p.pid) == Some(ours))
        })
        .map(|other| other.name)
        .collect();
    names.sort();
    names
}

/// What the sandbox was started with, from its record.
fn plan_of(record: &Record) -> Value {
    json!({
        "argv": record.argv,
        "pid1_role": record.pid1_role,
        "nest": record.nest,
        "pid_namespace": record.pid_namespace,
        "stop_signal": record.stop_signal,
        "stop_timeout": record.stop_timeout,
        "capabilities": record.capabilities,
        "seccomp": record.seccomp,
        "root": if record.pivot_root { "pivot_root" } else { "chroot" },
        "rootless": record.rootless,
        "user": { "uid": record.user.uid, "gid": record.user.gid, "groups": record.user.groups },
        "workdir": record.workdir,
    })
}

/// The root it runs in: `run --rootfs DIR` read back from the command line
/// that started it (parsed again by the same parser, relative to the
/// directory it was typed in), or `null` for the default root (the host's
/// /usr, /bin, /lib* and /etc, read-only).
fn rootfs_of(sandbox: &Sandbox) -> Value {
    let Some(owner) = sandbox.owner() else { return Value::Null };
    match Cli::try_parse_from(&owner.command_line).map(|cli| cli.command) {
        Ok(Command::Run(run)) => run.rootfs.map_or(Value::Null, |dir| {
            let cwd = std::path::Path::new(owner.cwd.as_deref().unwrap_or("/"));
            cwd.join(dir).to_string_lossy().into_owned().into()
        }),
        _ => Value::Null,
    }
}

/// `inspect` for a terminal: the processes first while it runs (what the
/// lessons look at), then its state and the plan it was started with.
fn render_inspect(doc: &Value) -> String {
    let names = |v: &Value| {
        v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect::<Vec<_>>())
    };
    let mut out = String::new();
    let processes = doc["processes"].as_array().cloned().unwrap_or_default();
    if !processes.is_empty() {
        out.push_str(&format!(
            "{}: {} process(es). NSpid lists a PID per level, host first.\n",
            text(&doc["name"]),
            processes.len()
        ));
    }
    // One line a process, its columns as wide as their widest cell (one
    // space apart, as ps(1) prints them), then its signals and limits.
    let pids: Vec<String> = processes
        .iter()
        .map(|p| procfs::pids_text(p["nspid"].as_array().into_iter().flatten().filter_map(Value::as_i64)))
        .collect();
    let pids_width = pids.iter().map(String::len).max().unwrap_or(0);
    let comm_width =
        processes.iter().map(|p| output::printable(&text(&p["comm"])).chars().count()).max().unwrap_or(0);
    for (p, pids) in processes.iter().zip(&pids) {
        out.push_str(&format!(
            "  {pids:<pids_width$} {} {:<comm_width$} {}\n",
            p["state"].as_str().unwrap_or("?"),
            output::printable(&text(&p["comm"])),
            output::printable(p["cmdline"].as_str().unwrap_or(""))
        ));
        for (key, label) in [("caught", "caught"), ("ignored", "ignored"), ("blocked", "blocked")] {
            if let Some(list) = names(&p[key]).filter(|n| !n.is_empty()) {
                out.push_str(&format!("      {label:<8} {}\n", list.join(" ")));
            }
        }
        if let Some(list) = names(&p["capabilities"]).filter(|n| !n.is_empty()) {
            out.push_str(&format!("      caps     {}\n", condensed(&list)));
        }
        // The system-call filter (Seccomp: in /proc), shown where there is one.
        if let Some(filter) = p["seccomp"].as_str().filter(|s| *s != "none") {
            out.push_str(&format!("      seccomp  {filter}\n"));
        }
    }
    if let Some(others) = names(&doc["pid_namespace_shared_with"]).filter(|n| !n.is_empty()) {
        out.push_str(&format!("  shares its PID namespace with: {} (--pid container:)\n", others.join(", ")));
    }
    out.push_str(&format!("{}: {}\n", text(&doc["name"]), text(&doc["status"])));
    out.push_str(&output::table(&plan_rows(doc), &[]));
    out
}

/// A JSON value as a table cell.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// When it started and ended, and the plan, one row each.
fn plan_rows(doc: &Value) -> Vec<Vec<String>> {
    let plan = &doc["plan"];
    let when = |v: &Value| v.as_f64().map_or("-".into(), |t| format!("{:.0} s ago", record::now() - t));
    let mut rows: Vec<Vec<String>> = vec![vec!["  started".into(), when(&doc["started"])]];
    if let Some(code) = doc["exit_code"].as_i64() {
        let how = match doc["signal"].as_str() {
            Some(sig) => format!("killed by {sig} (exit code {code})"),
            None => format!("exit code {code}"),
        };
        rows.push(vec!["  ended".into(), format!("{}, {how}", when(&doc["finished"]))]);
    }
    let stop = match plan["stop_timeout"].as_f64() {
        Some(t) => format!("{}, SIGKILL after {t} s", text(&plan["stop_signal"])),
        None => format!("{}, no SIGKILL (waits forever)", text(&plan["stop_signal"])),
    };
    let caps: Option<Vec<String>> = plan["capabilities"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect());
    let root = format!(
        "{} ({}), nest {}, PID namespace {}",
        plan["rootfs"].as_str().unwrap_or("default: the host's /usr, /bin, /lib*, /etc, read-only"),
        text(&plan["root"]),
        text(&plan["nest"]),
        text(&plan["pid_namespace"])
    );
    rows.extend([
        vec!["  argv".into(), if plan["argv"].is_array() { plan["argv"].to_string() } else { "-".into() }],
        vec!["  PID 1".into(), text(&plan["pid1_role"])],
        vec!["  stop".into(), stop],
        vec!["  caps".into(), caps.map_or("-".into(), |c| condensed(&c))],
        vec!["  seccomp".into(), text(&plan["seccomp"])],
        vec!["  root".into(), root],
    ]);
    rows
}

/// One process as `inspect` shows it, from the host's /proc/PID/status.
fn describe_process(pid: i32) -> Option<Value> {
    let status = procfs::Status::of(pid)?;
    Some(json!({
        "host_pid": pid,
        "nspid": status.nspid,
        "state": status.state.to_string(),
        "comm": status.name,
        "cmdline": cmdline(pid),
        "caught": signals::names_in(status.caught),
        "ignored": signals::names_in(status.ignored),
        "capabilities": procfs::capabilities_in(status.cap_effective),
        "seccomp": match status.seccomp {
            0 => "none".to_string(),
            1 => "strict".to_string(),
            _ => format!("filter ({} installed)", status.seccomp_filters),
        },
        // Signals a process waits for in sigwait are hidden from SigBlk
        // while it waits; they are blocked all the same.
        "blocked": signals::names_in(status.blocked | signals::waited_for(pid)),
    }))
}

#[cfg(test)]
mod tests {
    use super::condensed;

    fn caps(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| format!("CAP_{n}")).collect()
    }

    #[test]
    fn capability_sets_are_told_in_a_few_words() {
        let docker = caps(&[
            "CHOWN",
            "DAC_OVERRIDE",
            "FSETID",
            "FOWNER",
            "MKNOD",
            "NET_RAW",
            "SETGID",
            "SETUID",
            "SETFCAP",
            "SETPCAP",
            "NET_BIND_SERVICE",
            "SYS_CHROOT",
            "KILL",
            "AUDIT_WRITE",
        ]);
        assert_eq!(condensed(&docker), "Docker default (14)");
        let less: Vec<String> = docker.iter().filter(|c| *c != "CAP_NET_RAW").cloned().collect();
        assert_eq!(condensed(&less), "default − NET_RAW");
        let more = [docker.clone(), caps(&["SYS_ADMIN"])].concat();
        assert_eq!(condensed(&more), "default + SYS_ADMIN");
        let every: Vec<String> = caps::all().into_iter().map(|c| c.to_string()).collect();
        assert_eq!(condensed(&every), format!("all ({})", every.len()));
        let but_one: Vec<String> = every.iter().filter(|c| *c != "CAP_SYS_RESOURCE").cloned().collect();
        assert_eq!(condensed(&but_one), "all − SYS_RESOURCE");
        assert_eq!(condensed(&caps(&["KILL"])), "KILL");
        assert_eq!(condensed(&[]), "none");
    }
}
