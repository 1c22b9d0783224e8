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

use anyhow::{Result, bail};

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

/// Words for the tests here and in `dockerfile.rs`.
#[cfg(test)]
pub mod words {
    /// The default SHELL, as owned words.
    pub fn sh() -> Vec<String> {
        super::DEFAULT_SHELL.iter().map(|s| s.to_string()).collect()
    }

    pub fn v(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::words::{sh, v};
    use super::*;
    use crate::runtime::dockerfile::Dockerfile;

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
