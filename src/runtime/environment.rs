//! The workload's environment, built as Docker builds a container's.
//!
//! Several sources set variables: the runtime's defaults (PATH), the
//! image's `ENV` lines, `--env-file FILE` and `-e`. Docker merges them *by
//! key*, in that order, the later source winning, and the workload gets
//! exactly one entry per key (the daemon's `ReplaceOrAppendEnvValues`: a
//! key already present keeps its place and takes the new value, a new key
//! is appended). Appending duplicates instead would be a trap: for two
//! `HOME=` entries, C's getenv(3) returns the first and dash the last.
//!
//! On the command line (docker CLI, `opts.ValidateEnv` and
//! `ParseEnvFile`):
//! - `-e KEY=VALUE` sets KEY; `-e KEY` takes the value KEY has in the
//!   caller's environment, or leaves KEY out when the caller has none;
//! - `--env-file FILE` holds one `KEY=VALUE` or `KEY` per line, read the
//!   same way; leading whitespace is dropped, blank lines and lines
//!   starting with `#` are skipped, the value is taken literally (no quotes,
//!   no `$VAR`), and a key may not contain whitespace;
//! - the env-file is read first, so `-e` wins over it.
//!
//! HOME, when no source set it, is the user's home from the root's
//! /etc/passwd (`/root` for root), as runc sets it.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// The variables, in order, one per key.
#[derive(Debug, Default, Clone)]
pub struct Environment {
    vars: Vec<(String, String)>,
}

impl Environment {
    /// Set `key` to `value`: replace it where it is, or append it.
    pub fn set(&mut self, key: &str, value: &str) {
        match self.vars.iter_mut().find(|(k, _)| k == key) {
            Some(var) => var.1 = value.to_string(),
            None => self.vars.push((key.to_string(), value.to_string())),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Set `key` only if no source has.
    pub fn set_default(&mut self, key: &str, value: &str) {
        if self.get(key).is_none() {
            self.set(key, value);
        }
    }

    /// One `-e` argument: `KEY=VALUE`, or `KEY` (the caller's value, if any).
    pub fn apply_flag(&mut self, text: &str) -> Result<()> {
        self.apply_entry(text).with_context(|| format!("-e {text:?}"))
    }

    /// Every line of an `--env-file`.
    pub fn apply_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!("--env-file {}: cannot read it; give a file of KEY=VALUE lines", path.display())
        })?;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            self.apply_entry(line)
                .with_context(|| format!("--env-file {}, line {}", path.display(), index + 1))?;
        }
        Ok(())
    }

    fn apply_entry(&mut self, text: &str) -> Result<()> {
        let (key, value) = match text.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (text, None),
        };
        if key.is_empty() {
            bail!("no variable name before '=': write KEY=VALUE");
        }
        if key.chars().any(char::is_whitespace) {
            bail!("variable name {key:?} contains whitespace");
        }
        match value {
            Some(value) => self.set(key, value),
            None => {
                if let Ok(value) = std::env::var(key) {
                    self.set(key, &value);
                }
            }
        }
        Ok(())
    }

    /// `KEY=VALUE` strings, for execve(2).
    pub fn to_strings(&self) -> Vec<String> {
        self.vars.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_source_replaces_a_key_in_place() {
        let mut env = Environment::default();
        env.set("PATH", "/a");
        env.set("HOME", "/root");
        env.apply_flag("PATH=/b").unwrap();
        env.set_default("HOME", "/other");
        assert_eq!(env.to_strings(), ["PATH=/b", "HOME=/root"]);
        assert!(env.apply_flag("=x").is_err());
        assert!(env.apply_flag("A B=1").is_err());
    }
}
