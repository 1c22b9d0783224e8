//! From Dockerfile syntax to the argv that becomes PID 1.
//!
//! A Dockerfile writes a command in one of two forms (Dockerfile reference,
//! "Shell and exec form"):
//!
//! - **exec form**, a JSON array of strings: `CMD ["redis-server", "--save", "60 1"]`.
//!   The array *is* the argv; no shell is involved, so `redis-server` is PID 1.
//! - **shell form**, anything else: `CMD redis-server --save "60 1"`. It is run
//!   as `SHELL + [string]`, by default `["/bin/sh", "-c", "redis-server ..."]`,
//!   so PID 1 is the shell — unless that shell replaces itself with the
//!   command (bash and busybox do for a final simple command, Debian's dash
//!   does not). pidlab shows which happened; it never assumes.
//!
//! A JSON array that does not parse (single quotes, a missing bracket) is
//! silently shell form, exactly as in Docker; an array holding anything but
//! strings is an error, as in Docker's parser ("when using JSON array syntax,
//! arrays must be comprised of strings only").
//!
//! The daemon then runs `ENTRYPOINT + CMD`, both already turned into argv
//! arrays; arguments after the image name (`docker run IMAGE ARG...`) replace
//! CMD, and `docker run --entrypoint` replaces ENTRYPOINT and clears the
//! image's CMD. Every cell of the reference's ENTRYPOINT × CMD table follows
//! from those few rules (see the tests at the end of this file).

use anyhow::{Context, Result, bail};

use crate::signals;

/// The default `SHELL` on Linux.
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// How a CMD or ENTRYPOINT was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// A JSON array of strings: the argv itself.
    Exec(Vec<String>),
    /// Any other string: run by the shell.
    Shell(String),
}

/// Parse the text of a CMD or ENTRYPOINT (or `--cmd` / `--entrypoint`).
/// Empty text means "not set".
pub fn parse_form(text: &str) -> Result<Option<Form>> {
    let rest = text.trim_start();
    if rest.is_empty() {
        return Ok(None);
    }
    // Not valid JSON: Docker silently treats it as shell form, and so do we.
    if let (true, Ok(serde_json::Value::Array(items))) = (rest.starts_with('['), serde_json::from_str(rest)) {
        let mut argv = Vec::with_capacity(items.len());
        for item in items {
            match item {
                serde_json::Value::String(word) => argv.push(word),
                other => bail!(
                    "{text:?}: when using JSON array syntax, arrays must be comprised of strings only \
                     (Docker refuses this too; {other} is not a string). Quote every element: \
                     [\"prog\", \"1\"], or drop the brackets to use shell form"
                ),
            }
        }
        return Ok(Some(Form::Exec(argv)));
    }
    Ok(Some(Form::Shell(text.to_string())))
}

/// Parse `--shell`: a JSON array is the whole SHELL (`["/bin/bash", "-c"]`);
/// anything else is the shell program and its words, to which `-c` is added
/// (`/bin/bash`, `/bin/busybox sh`).
pub fn parse_shell(text: &str) -> Result<Vec<String>> {
    match parse_form(text)? {
        Some(Form::Exec(argv)) if !argv.is_empty() => Ok(argv),
        Some(Form::Shell(words)) => {
            let mut argv: Vec<String> = words.split_whitespace().map(str::to_string).collect();
            argv.push("-c".to_string());
            Ok(argv)
        }
        _ => bail!("--shell is empty: give a shell such as /bin/bash or [\"/bin/bash\", \"-c\"]"),
    }
}

/// A CMD or ENTRYPOINT after the shell form has been expanded, remembering
/// how it was written so pidlab can explain who becomes PID 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub argv: Vec<String>,
    /// `Some(n)`: shell form; the first `n` words are the SHELL.
    pub shell_words: Option<usize>,
}

impl Command {
    /// Expand a form with the SHELL in force, as BuildKit does when it
    /// dispatches the instruction.
    pub fn new(form: Form, shell: &[String]) -> Command {
        match form {
            Form::Exec(argv) => Command { argv, shell_words: None },
            Form::Shell(text) => {
                let mut argv = shell.to_vec();
                argv.push(text);
                Command { argv, shell_words: Some(shell.len()) }
            }
        }
    }
}

/// What an image contributes to a run: the part of a container's config that
/// the Dockerfile instructions pidlab applies can set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub shell: Vec<String>,
    pub entrypoint: Option<Command>,
    pub cmd: Option<Command>,
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    /// By number (real-time signals have no `Signal`).
    pub stop_signal: Option<i32>,
    /// `USER name[:group]`, resolved in the root when the sandbox starts.
    pub user: Option<String>,
}

impl Image {
    pub fn new(shell: Vec<String>) -> Image {
        Image {
            shell,
            entrypoint: None,
            cmd: None,
            env: Vec::new(),
            workdir: None,
            stop_signal: None,
            user: None,
        }
    }
}

/// What the `pidlab run` command line says, on top of the image
/// (like `docker run`'s flags on top of an image's config).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--entrypoint PROG`: `Form::Exec([PROG])`, or `Form::Exec([])` for
    /// `--entrypoint ''` (no ENTRYPOINT).
    pub entrypoint: Option<Form>,
    pub cmd: Option<Form>,
    /// Trailing arguments: they replace CMD, as `docker run IMAGE ARG...`.
    pub args: Vec<String>,
}

/// Who will be PID 1, as far as can be known before the process starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pid1 {
    /// The first word is a program run directly (exec form).
    Program,
    /// The first word is the shell of a shell-form command.
    Shell,
    /// The first word is an init given with `--init=PATH`.
    Init,
}

/// The final argv and who comes first in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub argv: Vec<String>,
    pub pid1: Pid1,
    /// Words a shell-form ENTRYPOINT receives after its `-c` string (the
    /// CMD): they become `$0`, `$1`, ... of the string, which ignores them.
    pub ignored: Vec<String>,
}

impl Launch {
    /// Combine image and command line into the argv, as the Docker daemon
    /// does: `ENTRYPOINT + CMD`.
    pub fn resolve(image: &Image, run: &Overrides) -> Result<Launch> {
        let (entrypoint, image_cmd) = match &run.entrypoint {
            // `docker run --entrypoint` replaces the image's ENTRYPOINT and
            // clears its CMD; an empty one leaves no ENTRYPOINT at all.
            Some(form) => {
                (Some(Command::new(form.clone(), &image.shell)).filter(|c| !c.argv.is_empty()), None)
            }
            None => (image.entrypoint.clone(), image.cmd.clone()),
        };
        let cmd = if !run.args.is_empty() {
            Some(Command::new(Form::Exec(run.args.clone()), &image.shell))
        } else if let Some(form) = &run.cmd {
            Some(Command::new(form.clone(), &image.shell))
        } else {
            image_cmd
        };

        let ignored = match (&entrypoint, &cmd) {
            (Some(e), Some(c)) if e.shell_words.is_some() => c.argv.clone(),
            _ => Vec::new(),
        };
        let first = entrypoint.as_ref().or(cmd.as_ref());
        let pid1 = match first {
            Some(command) if command.shell_words.is_some() => Pid1::Shell,
            _ => Pid1::Program,
        };
        let mut argv = Vec::new();
        for part in [entrypoint, cmd].into_iter().flatten() {
            argv.extend(part.argv);
        }
        if argv.is_empty() {
            bail!(
                "no command to run: give one after `--` (pidlab run -- ps -ef), with --cmd or \
                 --entrypoint, or with -f FILE holding CMD or ENTRYPOINT (an empty CMD and \
                 ENTRYPOINT are an error in Docker too)"
            );
        }
        Ok(Launch { argv, pid1, ignored })
    }

    /// Put an init (its argv) in front, as `docker run --init` puts
    /// `docker-init --`.
    pub fn with_init(self, init: &[String]) -> Launch {
        let mut argv = init.to_vec();
        argv.push("--".to_string());
        argv.extend(self.argv);
        Launch { argv, pid1: Pid1::Init, ignored: self.ignored }
    }
}

/// A Dockerfile as pidlab reads it: the image config its runtime
/// instructions produce, and the build-time instructions it did not apply.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    pub image: Image,
    /// `(line, instruction)` for FROM, RUN, COPY, ...: pidlab runs, it does
    /// not build; the root comes from `--rootfs`.
    pub not_applied: Vec<(usize, String)>,
}

/// Instructions that only matter when building an image (or that pidlab
/// does not model): accepted, listed, not applied.
const NOT_APPLIED: &[&str] = &[
    "FROM",
    "RUN",
    "COPY",
    "ADD",
    "ARG",
    "LABEL",
    "EXPOSE",
    "VOLUME",
    "HEALTHCHECK",
    "ONBUILD",
    "MAINTAINER",
];

impl Dockerfile {
    /// Parse a Dockerfile. `base` is the image config before the first
    /// instruction (pidlab's `--shell` acts as the base image's SHELL).
    pub fn parse(text: &str, base: &Image) -> Result<Dockerfile> {
        let mut image = base.clone();
        let mut not_applied = Vec::new();
        let mut cmd_set = false;
        // Named build stages (`FROM ... AS name`), for a later `FROM name`.
        let mut stages: Vec<(String, Image)> = Vec::new();
        let mut stage_name: Option<String> = None;
        for (line, instruction, rest) in logical_lines(text) {
            let upper = instruction.to_ascii_uppercase();
            let at = || format!("line {line}: {instruction}");
            // Environment replacement (Dockerfile reference): in these
            // instructions, `$VAR` and `${VAR}` are the values of earlier ENV.
            let expand = |text: &str| word(text, &image.env).with_context(at);
            match upper.as_str() {
                "CMD" => {
                    image.cmd = parse_form(&rest).with_context(at)?.map(|f| Command::new(f, &image.shell));
                    cmd_set = true;
                }
                "ENTRYPOINT" => {
                    image.entrypoint =
                        parse_form(&rest).with_context(at)?.map(|f| Command::new(f, &image.shell));
                    // BuildKit: an ENTRYPOINT clears the CMD inherited from the
                    // base image, unless this stage sets CMD itself.
                    if !cmd_set {
                        image.cmd = None;
                    }
                }
                "SHELL" => match parse_form(&rest).with_context(at)? {
                    Some(Form::Exec(argv)) if !argv.is_empty() => image.shell = argv,
                    _ => bail!(
                        "line {line}: SHELL requires the arguments to be in JSON form, e.g. SHELL [\"/bin/bash\", \"-c\"]"
                    ),
                },
                "STOPSIGNAL" => {
                    image.stop_signal = Some(signals::parse_number(&expand(&rest)?).with_context(at)?)
                }
                "ENV" => {
                    // Every value is expanded with the environment from
                    // *before* this line: `ENV A=1 B=$A` gives B the old A.
                    let pairs = parse_env(&rest, &image.env).with_context(at)?;
                    for (key, value) in pairs {
                        match image.env.iter_mut().find(|(k, _)| *k == key) {
                            Some(var) => var.1 = value,
                            None => image.env.push((key, value)),
                        }
                    }
                }
                "USER" => image.user = Some(expand(rest.trim())?),
                "WORKDIR" => {
                    // Relative to the previous WORKDIR, or to / if none.
                    let dir = expand(rest.trim())?;
                    let previous = image.workdir.as_deref().unwrap_or("/");
                    image.workdir = Some(match dir.starts_with('/') {
                        true => dir,
                        false => format!("{}/{dir}", previous.trim_end_matches('/')),
                    });
                }
                "FROM" => {
                    // A new build stage: from an earlier stage, it inherits
                    // that stage's config; from an image pidlab cannot read,
                    // it starts afresh.
                    if let Some(name) = stage_name.take() {
                        stages.push((name, image.clone()));
                    }
                    let words: Vec<&str> = rest.split_whitespace().filter(|w| !w.starts_with("--")).collect();
                    let from = words.first().map(|w| w.to_ascii_lowercase()).unwrap_or_default();
                    image = match stages.iter().rev().find(|(name, _)| *name == from) {
                        Some((_, earlier)) => earlier.clone(),
                        None => base.clone(),
                    };
                    if let [_, as_word, name] = words[..]
                        && as_word.eq_ignore_ascii_case("as")
                    {
                        stage_name = Some(name.to_ascii_lowercase());
                    }
                    cmd_set = false;
                    not_applied.push((line, upper));
                }
                known if NOT_APPLIED.contains(&known) => not_applied.push((line, upper)),
                _ => bail!(
                    "line {line}: unknown instruction {instruction:?}: pidlab reads CMD, ENTRYPOINT, SHELL, \
                     STOPSIGNAL, ENV, WORKDIR and USER, and skips build-time ones ({})",
                    NOT_APPLIED.join(", ")
                ),
            }
        }
        Ok(Dockerfile { image, not_applied })
    }
}

/// Split a Dockerfile into `(first line number, instruction, arguments)`,
/// joining continuation lines (a line ending in the escape character, `\` or
/// the one set by a `# escape=` directive) and dropping comment lines, even
/// in the middle of a continued instruction, as Docker does.
fn logical_lines(text: &str) -> Vec<(usize, String, String)> {
    // A UTF-8 byte-order mark, as some editors write, is not part of line 1.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut escape = '\\';
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    let mut in_directives = true;
    // Here-documents still to skip (`RUN <<EOF` ... `EOF`): their lines
    // are the body of a build step, not instructions.
    let mut heredocs: Vec<(String, bool)> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = raw.trim();
        if let Some((word, strip_tabs)) = heredocs.first() {
            let line = if *strip_tabs { raw.trim_start_matches('\t') } else { raw };
            if line == word {
                heredocs.remove(0);
            }
            continue;
        }
        if in_directives {
            if let Some(value) = directive(trimmed, "escape") {
                if let Some(c) = value.chars().next() {
                    escape = c;
                }
                continue;
            }
            if directive(trimmed, "syntax").is_some() || directive(trimmed, "check").is_some() {
                continue;
            }
            in_directives = false;
        }
        // Comment lines, and blank lines, even inside a continued
        // instruction (BuildKit accepts those, with a warning).
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        let (start, mut joined) = pending.take().unwrap_or((number, String::new()));
        let continued = raw.trim_end().ends_with(escape);
        let body = if continued {
            let t = raw.trim_end();
            &t[..t.len() - escape.len_utf8()]
        } else {
            raw
        };
        joined.push_str(body);
        if continued {
            pending = Some((start, joined));
            continue;
        }
        let joined = joined.trim();
        let (instruction, rest) = match joined.split_once(char::is_whitespace) {
            Some((i, r)) => (i.to_string(), r.trim_start().to_string()),
            None => (joined.to_string(), String::new()),
        };
        if ["RUN", "COPY", "ADD"].contains(&instruction.to_ascii_uppercase().as_str()) {
            heredocs = heredoc_words(&rest);
        }
        out.push((start, instruction, rest));
    }
    if let Some((start, joined)) = pending {
        let joined = joined.trim().to_string();
        if let Some((i, r)) = joined.split_once(char::is_whitespace) {
            out.push((start, i.to_string(), r.trim_start().to_string()));
        } else if !joined.is_empty() {
            out.push((start, joined, String::new()));
        }
    }
    out
}

/// The here-documents a RUN, COPY or ADD line opens, in order: `<<EOF`,
/// `<<-EOF` (leading tabs of the body and end word dropped), `<<"EOF"`,
/// `<<'EOF'`; each ends at a line holding only its word.
fn heredoc_words(rest: &str) -> Vec<(String, bool)> {
    let mut words = Vec::new();
    let mut text = rest;
    while let Some(at) = text.find("<<") {
        text = &text[at + 2..];
        let strip_tabs = text.starts_with('-');
        let body = text.trim_start_matches('-');
        let body = body.trim_start_matches(['"', '\'']);
        let word: String = body.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !word.is_empty() {
            words.push((word, strip_tabs));
        }
    }
    words
}

/// `# name=value` parser directive at the top of a Dockerfile.
fn directive<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let body = line.strip_prefix('#')?.trim_start();
    let (key, value) = body.split_once('=')?;
    key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
}

/// `ENV KEY=value KEY2="two words"` or the legacy `ENV KEY value words`.
/// Quotes and backslash escapes are honoured, and `$VAR` is replaced with
/// its value in `env` (the image's ENV so far).
fn parse_env(rest: &str, env: &[(String, String)]) -> Result<Vec<(String, String)>> {
    let rest = rest.trim();
    let first = rest.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (key, value) = rest
            .split_once(char::is_whitespace)
            .with_context(|| format!("ENV {rest:?} has no value: write ENV KEY=value"))?;
        return Ok(vec![(key.to_string(), word(value.trim(), env)?)]);
    }
    let mut pairs = Vec::new();
    for word in words(rest, env, true)? {
        let (key, value) =
            word.split_once('=').with_context(|| format!("ENV word {word:?} is not KEY=value"))?;
        if key.is_empty() {
            bail!("ENV {word:?} has no variable name before '='");
        }
        pairs.push((key.to_string(), value.to_string()));
    }
    Ok(pairs)
}

/// `text` as one word: quotes removed, escapes and `$VAR` applied.
fn word(text: &str, env: &[(String, String)]) -> Result<String> {
    Ok(words(text, env, false)?.concat())
}

/// Split `text` into words on unquoted whitespace (if `split`), removing
/// quotes and backslash escapes, and replacing `$NAME`, `${NAME}`,
/// `${NAME:-default}` and `${NAME:+alternative}` with values from `env`
/// (an unset NAME is empty), outside single quotes, as BuildKit's
/// `ProcessWord` does. `\$` is a literal `$`.
fn words(text: &str, env: &[(String, String)], split: bool) -> Result<Vec<String>> {
    let value = |name: &str| env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => word.push(c),
            (Some('"') | None, '\\') => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            (Some('"') | None, '$') => {
                let (name, modifier) = if chars.peek() == Some(&'{') {
                    chars.next();
                    let inner: String = chars.by_ref().take_while(|c| *c != '}').collect();
                    match inner.split_once(':') {
                        Some((name, modifier)) => (name.to_string(), Some(modifier.to_string())),
                        None => (inner, None),
                    }
                } else {
                    let mut name = String::new();
                    while let Some(c) = chars.peek().filter(|c| c.is_ascii_alphanumeric() || **c == '_') {
                        name.push(*c);
                        chars.next();
                    }
                    (name, None)
                };
                if name.is_empty() {
                    word.push('$');
                } else {
                    let set = value(&name).filter(|v| !v.is_empty());
                    word.push_str(&match modifier.as_deref() {
                        None => value(&name).unwrap_or_default(),
                        Some(m) if m.starts_with('-') => set.unwrap_or_else(|| m[1..].to_string()),
                        Some(m) if m.starts_with('+') => set.map(|_| m[1..].to_string()).unwrap_or_default(),
                        Some(m) => bail!(
                            "${{{name}:{m}}}: pidlab knows ${{NAME:-default}} and ${{NAME:+alternative}}"
                        ),
                    });
                }
            }
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() && split => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
        if quote.is_some() || !word.is_empty() {
            in_word = true;
        }
    }
    if let Some(q) = quote {
        bail!("unterminated {q} quote in {text:?}");
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh() -> Vec<String> {
        DEFAULT_SHELL.iter().map(|s| s.to_string()).collect()
    }

    fn v(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    fn argv(entrypoint: Option<&str>, cmd: Option<&str>) -> Result<Vec<String>> {
        let mut text = String::new();
        if let Some(e) = entrypoint {
            text.push_str(&format!("ENTRYPOINT {e}\n"));
        }
        if let Some(c) = cmd {
            text.push_str(&format!("CMD {c}\n"));
        }
        let file = Dockerfile::parse(&text, &Image::new(sh()))?;
        Ok(Launch::resolve(&file.image, &Overrides::default())?.argv)
    }

    // The Dockerfile reference's table, "Understand how CMD and ENTRYPOINT
    // interact", one assertion per cell.
    #[test]
    fn no_entrypoint_column() {
        assert!(argv(None, None).is_err(), "no CMD and no ENTRYPOINT is not allowed");
        assert_eq!(argv(None, Some(r#"["exec_cmd", "p1_cmd"]"#)).unwrap(), v(&["exec_cmd", "p1_cmd"]));
        assert_eq!(argv(None, Some("exec_cmd p1_cmd")).unwrap(), v(&["/bin/sh", "-c", "exec_cmd p1_cmd"]));
    }

    #[test]
    fn shell_form_entrypoint_column() {
        let e = Some("exec_entry p1_entry");
        assert_eq!(argv(e, None).unwrap(), v(&["/bin/sh", "-c", "exec_entry p1_entry"]));
        // The CMD is not dropped from argv: it follows the -c string and
        // becomes $0, $1... of it, which the string ignores.
        assert_eq!(
            argv(e, Some(r#"["exec_cmd", "p1_cmd"]"#)).unwrap(),
            v(&["/bin/sh", "-c", "exec_entry p1_entry", "exec_cmd", "p1_cmd"])
        );
        assert_eq!(
            argv(e, Some("exec_cmd p1_cmd")).unwrap(),
            v(&["/bin/sh", "-c", "exec_entry p1_entry", "/bin/sh", "-c", "exec_cmd p1_cmd"])
        );
    }

    #[test]
    fn exec_form_entrypoint_column() {
        let e = Some(r#"["exec_entry", "p1_entry"]"#);
        assert_eq!(argv(e, None).unwrap(), v(&["exec_entry", "p1_entry"]));
        assert_eq!(
            argv(e, Some(r#"["exec_cmd", "p1_cmd"]"#)).unwrap(),
            v(&["exec_entry", "p1_entry", "exec_cmd", "p1_cmd"])
        );
        assert_eq!(
            argv(e, Some("exec_cmd p1_cmd")).unwrap(),
            v(&["exec_entry", "p1_entry", "/bin/sh", "-c", "exec_cmd p1_cmd"])
        );
    }

    #[test]
    fn malformed_json_is_shell_form() {
        for text in ["['redis-server']", "[\"redis-server\"", "[redis-server]"] {
            assert_eq!(parse_form(text).unwrap(), Some(Form::Shell(text.to_string())), "{text}");
        }
    }

    #[test]
    fn json_array_of_non_strings_is_refused_as_docker_does() {
        let err = parse_form("[1,2]").unwrap_err().to_string();
        assert!(err.contains("strings only"), "{err}");
    }

    #[test]
    fn run_arguments_replace_cmd_and_entrypoint_flag_clears_it() {
        let text = "ENTRYPOINT [\"e\"]\nCMD [\"c\"]\n";
        let image = Dockerfile::parse(text, &Image::new(sh())).unwrap().image;
        let with_args = Overrides { args: v(&["a"]), ..Default::default() };
        assert_eq!(Launch::resolve(&image, &with_args).unwrap().argv, v(&["e", "a"]));
        let new_entry = Overrides { entrypoint: Some(Form::Exec(v(&["x"]))), ..Default::default() };
        assert_eq!(Launch::resolve(&image, &new_entry).unwrap().argv, v(&["x"]));
    }

    #[test]
    fn entrypoint_clears_only_a_cmd_this_stage_did_not_set() {
        // Same stage: CMD before ENTRYPOINT is kept (BuildKit's cmdSet).
        let kept = Dockerfile::parse("CMD [\"c\"]\nENTRYPOINT [\"e\"]\n", &Image::new(sh())).unwrap();
        assert_eq!(Launch::resolve(&kept.image, &Overrides::default()).unwrap().argv, v(&["e", "c"]));
        // A CMD from the base image (here: pidlab's base) is cleared.
        let mut base = Image::new(sh());
        base.cmd = Some(Command::new(Form::Exec(v(&["base"])), &sh()));
        let cleared = Dockerfile::parse("ENTRYPOINT [\"e\"]\n", &base).unwrap();
        assert_eq!(Launch::resolve(&cleared.image, &Overrides::default()).unwrap().argv, v(&["e"]));
    }

    #[test]
    fn last_cmd_wins_and_shell_applies_to_later_instructions() {
        let text = "CMD first\nSHELL [\"/bin/bash\", \"-c\"]\nCMD second\n";
        let file = Dockerfile::parse(text, &Image::new(sh())).unwrap();
        assert_eq!(file.image.cmd.unwrap().argv, v(&["/bin/bash", "-c", "second"]));
    }

    #[test]
    fn continuation_lines_comments_and_escape_directive() {
        let text = "# a comment\nCMD redis-server \\\n# comment inside\n    --save \"3600 1\"\nRUN apt-get install x\n";
        let file = Dockerfile::parse(text, &Image::new(sh())).unwrap();
        assert_eq!(file.image.cmd.unwrap().argv[2], "redis-server     --save \"3600 1\"");
        assert_eq!(file.not_applied, vec![(5, "RUN".to_string())]);
        let backtick = "# escape=`\nCMD a `\n  b\n";
        let file = Dockerfile::parse(backtick, &Image::new(sh())).unwrap();
        assert_eq!(file.image.cmd.unwrap().argv[2], "a   b");
    }

    #[test]
    fn unknown_instruction_names_its_line() {
        let err = Dockerfile::parse("CMD x\n\nFROBNICATE y\n", &Image::new(sh())).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn env_workdir_stopsignal() {
        let text =
            "ENV A=1 B=\"two words\"\nENV C legacy value\nWORKDIR /srv\nWORKDIR data\nSTOPSIGNAL SIGINT\n";
        let image = Dockerfile::parse(text, &Image::new(sh())).unwrap().image;
        assert_eq!(
            image.env,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "legacy value".into())
            ]
        );
        assert_eq!(image.workdir.as_deref(), Some("/srv/data"));
        assert_eq!(image.stop_signal, Some(libc::SIGINT));
    }

    #[test]
    fn shell_flag_spellings() {
        assert_eq!(parse_shell("/bin/bash").unwrap(), v(&["/bin/bash", "-c"]));
        assert_eq!(parse_shell("/bin/busybox sh").unwrap(), v(&["/bin/busybox", "sh", "-c"]));
        assert_eq!(parse_shell(r#"["/bin/bash", "-ec"]"#).unwrap(), v(&["/bin/bash", "-ec"]));
    }

    /// A small deterministic generator, so the property tests below need
    /// no extra crate and fail the same way every time.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            self.0 >> 33
        }

        fn text(&mut self, alphabet: &[char], max: usize) -> String {
            let len = (self.next() as usize) % (max + 1);
            (0..len).map(|_| alphabet[(self.next() as usize) % alphabet.len()]).collect()
        }
    }

    const NASTY: &[char] = &[
        '[', ']', '"', '\'', '\\', ',', ' ', '\t', '\n', 'a', 'Z', '0', '#', '`', '=', '$', 'é', '{', '}',
        ':',
    ];

    #[test]
    fn no_input_makes_the_parsers_panic() {
        let mut rng = Lcg(7);
        let words = [
            "CMD ",
            "ENTRYPOINT ",
            "SHELL ",
            "ENV ",
            "WORKDIR ",
            "STOPSIGNAL ",
            "FROM ",
            "RUN ",
            "# escape=`\n",
        ];
        for _ in 0..20_000 {
            let spec = rng.text(NASTY, 24);
            let _ = parse_form(&spec);
            let _ = parse_shell(&spec);
            let mut file = String::new();
            for _ in 0..(rng.next() % 6) {
                file.push_str(words[(rng.next() as usize) % words.len()]);
                file.push_str(&rng.text(NASTY, 16));
                file.push('\n');
            }
            if let Ok(parsed) = Dockerfile::parse(&file, &Image::new(sh())) {
                let _ = Launch::resolve(&parsed.image, &Overrides::default());
            }
        }
    }

    #[test]
    fn any_json_array_of_strings_is_exec_form_verbatim() {
        let mut rng = Lcg(11);
        for _ in 0..5_000 {
            let argv: Vec<String> = (0..(rng.next() % 5)).map(|_| rng.text(NASTY, 8)).collect();
            let json = serde_json::to_string(&argv).unwrap();
            assert_eq!(parse_form(&json).unwrap(), Some(Form::Exec(argv.clone())), "{json}");
            // Docker's table: exec-form ENTRYPOINT + exec-form CMD is their concatenation.
            let image = Image::new(sh());
            let run = Overrides {
                entrypoint: Some(Form::Exec(argv.clone())),
                cmd: Some(Form::Exec(v(&["c"]))),
                args: vec![],
            };
            let mut expected = argv.clone();
            expected.push("c".into());
            assert_eq!(Launch::resolve(&image, &run).unwrap().argv, expected);
        }
    }

    #[test]
    fn who_is_pid1() {
        let image = Image::new(sh());
        let shell = Overrides { cmd: Some(Form::Shell("x".into())), ..Default::default() };
        assert_eq!(Launch::resolve(&image, &shell).unwrap().pid1, Pid1::Shell);
        let exec = Overrides { cmd: Some(Form::Exec(v(&["x"]))), ..Default::default() };
        assert_eq!(Launch::resolve(&image, &exec).unwrap().pid1, Pid1::Program);
        let init = Launch::resolve(&image, &exec).unwrap().with_init(&v(&["/sbin/tini"]));
        assert_eq!(init.argv, v(&["/sbin/tini", "--", "x"]));
    }
}
