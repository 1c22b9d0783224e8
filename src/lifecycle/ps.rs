//! `pidlab ps`: the sandboxes, as a table aligned to its widest cells or
//! as one JSON document; `-a`, `-q` and `--filter` as docker's.

use anyhow::Result;
use serde_json::{Value, json};

use super::{cmdline, join, sandbox_fields};
use crate::cli::{Filter, Format, PsArgs};
use crate::output;
use crate::procfs;
use crate::record::{self, Sandbox, Status};

fn matches(sandbox: &Sandbox, status: Status, filters: &[Filter]) -> bool {
    filters.iter().all(|filter| match filter {
        Filter::Name(text) => sandbox.name.contains(text.as_str()),
        Filter::Status(word) => status.word() == word,
    })
}

pub fn ps(args: PsArgs) -> Result<i32> {
    let mut rows = Vec::new();
    for sandbox in Sandbox::all()? {
        let status = sandbox.status();
        // A filter on the state shows what it names, running or not (docker's -f status=exited).
        let by_state = args.filter.iter().any(|f| matches!(f, Filter::Status(_)));
        if (!args.all && !by_state && !status.is_running()) || !matches(&sandbox, status, &args.filter) {
            continue;
        }
        let record = sandbox.record();
        let pid1 = record.as_ref().map(|r| r.pid1).unwrap_or_default();
        let age = record.as_ref().map_or(0.0, |r| record::now() - r.created);
        let mut row = sandbox_fields(&sandbox);
        row["command"] = record.as_ref().map_or(Value::Null, |r| json!(r.argv));
        row["workload"] = if status.is_running() { workload(pid1.pid) } else { Value::Null };
        row["nest"] = record.as_ref().map_or(Value::Null, |r| json!(r.nest));
        row["age_seconds"] = json!((age * 10.0).round() / 10.0);
        rows.push(row);
    }
    if args.quiet {
        for row in &rows {
            println!("{}", row["name"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    if args.format == Format::Json {
        output::document(&Value::Array(rows));
        return Ok(0);
    }
    let mut cells =
        vec![["NAME", "STATE", "HOST PID", "NEST", "AGE", "COMMAND"].map(str::to_string).to_vec()];
    for row in &rows {
        let command =
            row["workload"]["cmdline"].as_str().map(str::to_string).unwrap_or_else(|| join(&row["command"]));
        cells.push(vec![
            row["name"].as_str().unwrap_or("").to_string(),
            row["status"].as_str().unwrap_or("").to_string(),
            row["pid1"]["host_pid"].as_i64().map_or("-".to_string(), |p| p.to_string()),
            row["nest"].as_u64().map_or("-".to_string(), |n| n.to_string()),
            format!("{:.0}s", row["age_seconds"].as_f64().unwrap_or(0.0)),
            command,
        ]);
    }
    print!("{}", output::table(&cells, &[2, 3, 4]));
    Ok(0)
}

/// The workload's PID 1: with `--nest N`, PID 1 of the innermost namespace
/// (the outer ones are pidlab's own `pidlab:nest-K`), as a host PID and its
/// command line.
fn workload(pid1: i32) -> Value {
    match procfs::innermost_init(pid1) {
        Some((pid, status)) => {
            json!({ "host_pid": pid, "level": status.nspid.len() - 1, "cmdline": cmdline(pid) })
        }
        None => Value::Null,
    }
}
