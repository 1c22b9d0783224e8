//! Exit codes, as container runtimes use them (`docker run` reference, "Exit
//! status"): the workload's own code; 128+N when it died of signal N; 125 when
//! pidlab itself failed; 126 when the command cannot be executed; 127 when it
//! cannot be found.

/// pidlab itself failed: bad input, or a setup step the kernel refused.
pub const SETUP_FAILED: i32 = 125;
/// The command was found but could not be executed (permission, format).
pub const NOT_EXECUTABLE: i32 = 126;
/// The command was not found.
pub const NOT_FOUND: i32 = 127;

/// The code for a failed execve(2) of the workload: 127 when nothing was
/// found at the path (ENOENT: the program, or its #! interpreter), else
/// 126 (found, but not executable), as `docker run` reports them. The one
/// place this rule lives; every exec of pidlab's uses it.
pub fn of_exec_failure(errno: nix::errno::Errno) -> i32 {
    if errno == nix::errno::Errno::ENOENT { NOT_FOUND } else { NOT_EXECUTABLE }
}

/// An error that carries the exit code pidlab should end with.
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// The exit code for an error: its own if it carries one, else 125.
pub fn of_error(err: &anyhow::Error) -> i32 {
    err.downcast_ref::<Exit>().map_or(SETUP_FAILED, |exit| exit.code)
}
