//! A failed launch explained in the plan's terms: which exit code, and
//! what to do (a missing shell, init or program named as such).

use crate::exit_code;
use crate::runtime::launch::{Launch, Pid1};
use crate::runtime::step::Step;

use super::Plan;

pub fn describe_program(plan: &Plan) -> String {
    let name = &plan.launch.argv[0];
    match plan.launch.pid1 {
        Pid1::Shell => format!("shell {name} (shell form runs SHELL + [string])"),
        Pid1::Init => format!("init {name} (--init)"),
        Pid1::Program => name.to_string(),
    }
}

/// Exit code and message for a failure the child reported.
pub fn classify(report: &crate::runtime::step::Report, launch: &Launch, path: &str) -> exit_code::Exit {
    let code = match (report.step, report.errno, &launch.pid1) {
        // A missing shell or init is the setup's fault, not the workload's.
        (Step::Exec, _, Pid1::Shell | Pid1::Init) => exit_code::SETUP_FAILED,
        (Step::Exec, errno, _) => exit_code::of_exec_failure(errno),
        _ => exit_code::SETUP_FAILED,
    };
    let mut message = report.to_string();
    if report.step == Step::Exec && report.errno == nix::errno::Errno::ENOENT {
        message.push_str(&match launch.pid1 {
            Pid1::Shell => format!(
                ". The root has no {}: use a root that has it, choose another with --shell, or use exec form (--cmd '[\"prog\", \"arg\"]')",
                launch.argv[0]
            ),
            Pid1::Init if !launch.argv[0].contains('/') => format!(
                ". No {0} was found on the sandbox's PATH ({1}): install it (`apt-get install {0}`: the \
                 default root shares the host's /usr), put it in your --rootfs, give its path (--init=/usr/bin/{0}) \
                 if -e PATH left its directory out, or use --init for pidlab's own init",
                launch.argv[0],
                path
            ),
            Pid1::Init => format!(". The root has no {}: give --init a path inside the root", launch.argv[0]),
            Pid1::Program if launch.argv[0].contains(' ') => format!(
                ". No program is named {:?}: in exec form each word is an element of its own, so a one-element \
                 array holding a whole command line names a program with spaces in its name; split it \
                 ({}), or write the line in shell form",
                launch.argv[0],
                serde_json::to_string(&launch.argv[0].split_whitespace().collect::<Vec<_>>())
                    .expect("strings serialise")
            ),
            Pid1::Program => format!(". {} was not found in the root (PATH is searched inside the root)", launch.argv[0]),
        });
    }
    exit_code::Exit { code, message }
}
