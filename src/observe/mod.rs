//! How a running sandbox is seen from outside: `explain` predicts from
//! /proc what a signal would do to each process, `trace` records what the
//! kernel did with each signal (tracefs), and `picture` draws a trace as a
//! sequence diagram (`trace --svg`), and `tree` shows the processes as the
//! tree they form (`inspect --tree`).

pub mod event;
pub mod explain;
pub mod picture;
pub mod trace;
pub mod tree;
