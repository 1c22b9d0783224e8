//! A Dockerfile's run settings (CMD, ENTRYPOINT, SHELL, STOPSIGNAL, ENV,
//! WORKDIR, USER) as Docker's parser reads them: continuation lines, the
//! escape directive, heredocs, `$VAR` substitution, build stages. pidlab
//! builds nothing: the other instructions are listed as not applied.

use anyhow::{Context, Result, bail};

use super::launch::{Command, Form, Image, parse_form};
use crate::signals;

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
    use crate::runtime::launch::words::{sh, v};
    use crate::runtime::launch::{Launch, Overrides};

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
}
