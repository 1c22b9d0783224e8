//! When a foreground sandbox is recorded, and under which name: the record
//! that lets `ps`, `exec`, `stop` and `kill` reach it from another terminal.

use anyhow::Result;

use crate::record::{self, Sandbox};
use crate::runtime::plan::Plan;

/// When a sandbox's record is written, relative to its workload's start.
pub enum Register<'a> {
    /// Before the workload runs: PID 1 waits for pidlab's go-ahead (step
    /// 3) until the record is written, so `ps`, `exec` and `stop` find
    /// the sandbox as soon as it runs. The caller has claimed the name (a
    /// script may use a name it chose the moment `run` starts) and
    /// removes the record.
    BeforeWorkload(&'a Sandbox),
    /// Once PID 1 has exec'd the workload, under a generated name that
    /// nobody could know sooner, and removed when the sandbox ends. PID 1
    /// needs no go-ahead, so it borrows pidlab's memory until it execs
    /// instead of copying it, and the record is written while the
    /// workload runs: `cargo bench --bench startup` prices it.
    AfterExec,
}

/// Claim a generated name; one already taken (about one chance in 2^35
/// with a thousand sandboxes) is tried again with another.
pub fn claim_generated() -> Result<Sandbox> {
    let mut tries = 0;
    loop {
        let name = record::generate_name();
        match Sandbox::claim(&name) {
            Err(_) if tries < 3 && Sandbox::open(&name).is_ok() => tries += 1,
            claimed => return claimed,
        }
    }
}

/// The record of a generated name, removed when the run ends, on every
/// path out of `start` (an error, Ctrl-C at a `--step` pause).
pub struct Generated(pub Option<Sandbox>);

impl Drop for Generated {
    fn drop(&mut self) {
        if let Some(sandbox) = self.0.take() {
            let _ = sandbox.remove();
        }
    }
}

/// `Register::AfterExec`: claim a generated name for the running PID 1
/// `child`. A state directory that cannot be written now (a full or
/// read-only disk; one pidlab may not trust stopped the run before it
/// began, as its root's mount point is there) costs the sandbox its record
/// (`ps` and `kill` will not find it), not its run.
pub fn register_after_exec(plan: &Plan, child: nix::unistd::Pid) -> Option<Sandbox> {
    let claimed = claim_generated().and_then(|sandbox| {
        match sandbox.write_record(&plan.record(&sandbox.name, child)) {
            Ok(()) => Ok(sandbox),
            Err(err) => {
                let _ = sandbox.remove();
                Err(err)
            }
        }
    });
    match claimed {
        Ok(sandbox) => Some(sandbox),
        Err(err) => {
            say!("pidlab: this sandbox has no record, so `pidlab ps` and `kill` will not find it: {err:#}");
            None
        }
    }
}
