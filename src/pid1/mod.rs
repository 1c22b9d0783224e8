//! The programs pidlab brings to run as PID 1 inside a sandbox (it binds
//! itself in at `/.pidlab/pidlab`, as `docker run --init` binds
//! docker-init): `init`, an init with tini's contract and more, and
//! `probe`, a workload that reports what happens to it.

pub mod init;
pub mod probe;
