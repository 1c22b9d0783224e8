//! The workshop around the runtime: the lessons and their checks, and
//! `doctor`, which tries each setup step on this machine.

pub mod doctor;
pub mod lesson;
