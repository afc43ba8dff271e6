//! The config reader: the shell-assignment subset of Courier's config files.
//!
//! Courier's rc script runs `set -a; . /etc/courier/imapd` with `/bin/sh`.
//! This module reads the same bytes the way dash does, without running
//! anything: a construct is either read exactly as dash reads it or refused
//! with its position. It never touches the process environment; references
//! resolve against a [`Scope`] (earlier assignments of all files read so far,
//! then the inherited environment).
//!
//! Supported (dash semantics): blank lines, `#` comments at the start of a
//! word, `NAME=value` (several per line), `export NAME` and
//! `export NAME=value ...`, backslash escapes, backslash-newline
//! continuation, single and double quotes (values may span lines), `$NAME`,
//! `${NAME}`, `${NAME-w}`, `${NAME:-w}`, `${NAME+w}`, `${NAME:+w}`.
//! Refused: everything else sh would execute or interpret, tilde expansion,
//! reading a name dash owns (`$PWD`, `$IFS`, ... before the config assigns
//! it) and assigning OPTIND (see README).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::error::bad_input;

/// A position in an input: `file:line:col`, 1-based, columns in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// One `NAME=value` as read, with the positions of NAME and of the value
/// (errors about a value point at the value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub name: String,
    pub value: Vec<u8>,
    pub pos: Pos,
    pub value_pos: Pos,
}

/// Something worth telling that is not an error (unset reference, CRLF).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub pos: Pos,
    pub msg: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.msg)
    }
}

/// Names dash gives a value of its own (so `$NAME` would not read the
/// config or the inherited environment). Reading one before the config
/// assigns it is refused.
const SHELL_OWNED: &[&str] = &[
    "IFS", "LINENO", "OPTIND", "PPID", "PS1", "PS2", "PS4", "PWD",
];

/// A NUL byte cannot be in an environment value, and sh drops or mangles it.
const NUL_MSG: &str =
    "NUL byte in the input (a value cannot hold one: is this a binary file? remove the byte)";

/// Reserved words: a line starting with one is shell code, not an assignment.
const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "case", "esac", "for", "while", "until", "do", "done",
    "in", "{", "}", "!", "function", "select", "[[", "]]",
];

/// One scope shared by all files read, in order, as one `sh` would have it.
#[derive(Debug, Default)]
pub struct Scope {
    /// Every assignment in the order read (later ones win).
    assigned: Vec<Assignment>,
    /// name -> index of its latest assignment in `assigned`.
    latest: HashMap<String, usize>,
    inherited: HashMap<String, Vec<u8>>,
    pub warnings: Vec<Warning>,
}

impl Scope {
    /// A scope whose references fall back to `inherited` (the environment
    /// sh would have started with).
    pub fn new(inherited: impl IntoIterator<Item = (String, Vec<u8>)>) -> Scope {
        Scope {
            inherited: inherited.into_iter().collect(),
            ..Scope::default()
        }
    }

    /// Read one file's bytes into the scope. `file` is the name used in
    /// positions. On error the scope may hold part of this file: callers
    /// that fail stop using it.
    pub fn read(&mut self, file: &str, src: &[u8]) -> anyhow::Result<()> {
        let mut p = Parser {
            src,
            i: 0,
            line: 1,
            col: 1,
            file: Arc::from(file),
            scope: self,
        };
        p.file_()
    }

    /// The value `$name` has now, if set.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        match self.latest.get(name) {
            Some(&i) => Some(&self.assigned[i].value),
            None => self.inherited.get(name).map(|v| v.as_slice()),
        }
    }

    /// Every assignment as read, in order (a name may appear more than once).
    pub fn assignments(&self) -> &[Assignment] {
        &self.assigned
    }

    /// The final value of each assigned name, in order of first assignment,
    /// each with the position of its latest assignment.
    pub fn vars(&self) -> Vec<&Assignment> {
        let mut seen = std::collections::HashSet::new();
        self.assigned
            .iter()
            .filter(|a| seen.insert(a.name.as_str()))
            .map(|a| &self.assigned[self.latest[&a.name]])
            .collect()
    }

    fn assign(&mut self, a: Assignment) {
        if a.value.last() == Some(&b'\r') {
            self.warnings.push(Warning {
                pos: a.pos.clone(),
                msg: format!(
                    "the value of {} ends in a carriage return, as sh reads it (CRLF line ends? convert the file with dos2unix)",
                    a.name
                ),
            });
        }
        self.latest.insert(a.name.clone(), self.assigned.len());
        self.assigned.push(a);
    }
}

pub fn is_name(s: &[u8]) -> bool {
    match s.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => s[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_'),
        _ => false,
    }
}

/// A piece of a word, before expansion.
#[derive(Debug)]
enum Part {
    /// Bytes from the source (quotes and escapes removed).
    Lit(Vec<u8>),
    Param(Param),
}

#[derive(Debug)]
struct Param {
    name: String,
    pos: Pos,
    op: Op,
}

#[derive(Debug)]
enum Op {
    Plain,
    /// `-` or `:-` (colon: empty counts as unset) with the word.
    Default {
        colon: bool,
        word: Vec<Part>,
    },
    /// `+` or `:+`.
    Alt {
        colon: bool,
        word: Vec<Part>,
    },
}

/// A word of a command line, with what assignment detection needs: how many
/// leading bytes were plain, unquoted, unescaped source.
#[derive(Debug)]
struct Word {
    pos: Pos,
    parts: Vec<Part>,
    /// The leading unquoted, unescaped literal bytes (dash decides "is an
    /// assignment" on these alone).
    bare_prefix: Vec<u8>,
    /// The whole word was bare literal text.
    all_bare: bool,
    /// Where the value starts, after the first bare `=` (if any).
    value_pos: Option<Pos>,
}

/// Where a `~` would be expanded by sh, so that we refuse it.
#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Unquoted,
    DoubleQuoted,
}

struct Parser<'a, 's> {
    src: &'a [u8],
    i: usize,
    line: u32,
    col: u32,
    file: Arc<str>,
    scope: &'s mut Scope,
}

type R<T> = anyhow::Result<T>;

impl Parser<'_, '_> {
    fn pos(&self) -> Pos {
        Pos {
            file: self.file.clone(),
            line: self.line,
            col: self.col,
        }
    }

    fn err<T>(&self, pos: &Pos, msg: impl fmt::Display) -> R<T> {
        Err(bad_input(format!("{pos}: {msg}")))
    }

    /// Skip backslash-newline pairs: dash removes them before tokenising,
    /// everywhere except inside single quotes and comments.
    fn eat_bnl(&mut self) {
        while self.src.get(self.i) == Some(&b'\\') && self.src.get(self.i + 1) == Some(&b'\n') {
            self.i += 2;
            self.line += 1;
            self.col = 1;
        }
    }

    /// The next byte, after line continuations.
    fn peek(&mut self) -> Option<u8> {
        self.eat_bnl();
        self.src.get(self.i).copied()
    }

    /// Consume one raw byte (no continuation handling), keeping positions.
    fn bump(&mut self) -> Option<u8> {
        let c = *self.src.get(self.i)?;
        self.i += 1;
        if c == b'\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn file_(&mut self) -> R<()> {
        loop {
            while matches!(self.peek(), Some(b' ' | b'\t')) {
                self.bump();
            }
            match self.peek() {
                None => return Ok(()),
                Some(b'\n') => {
                    self.bump();
                }
                Some(b'#') => self.comment(),
                Some(_) => self.command()?,
            }
        }
    }

    /// A comment runs to the end of the line; a backslash in it is not a
    /// continuation (dash reads comments raw).
    fn comment(&mut self) {
        while let Some(c) = self.src.get(self.i) {
            if *c == b'\n' {
                break;
            }
            self.bump();
        }
    }

    /// One simple command: words up to the end of the line (or a comment).
    fn command(&mut self) -> R<()> {
        let mut first = true;
        // Expansion happens per word, left to right, as dash does for
        // `A=1 B=$A` (B sees A=1): so assign before reading on.
        while let Some(w) = self.next_word()? {
            if first && w.all_bare && w.bare_prefix == b"export" {
                return self.export(w.pos);
            }
            first = false;
            let a = self.assignment_word(w)?;
            self.scope.assign(a);
        }
        Ok(())
    }

    /// The next word of this command, or None at its end (a newline, the
    /// end of the input, or a comment).
    fn next_word(&mut self) -> R<Option<Word>> {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.bump();
        }
        match self.peek() {
            None | Some(b'\n') => Ok(None),
            Some(b'#') => {
                self.comment();
                Ok(None)
            }
            Some(_) => self.word().map(Some),
        }
    }

    /// `export NAME ...` or `export NAME=value ...`: with `set -a` every
    /// assigned name is exported anyway, so a bare NAME changes nothing.
    /// Unlike plain assignments, export's arguments are all expanded before
    /// the builtin assigns any (`A=0; export A=1 B=$A` gives B=0 in dash).
    fn export(&mut self, pos: Pos) -> R<()> {
        let mut any = false;
        let mut pending = Vec::new();
        while let Some(w) = self.next_word()? {
            any = true;
            if w.all_bare && is_name(&w.bare_prefix) {
                continue;
            }
            if w.bare_prefix.starts_with(b"-") {
                return self.err(
                    &w.pos,
                    "export options are not supported (write export NAME or export NAME=value)",
                );
            }
            pending.push(self.assignment_word(w)?);
        }
        for a in pending {
            self.scope.assign(a);
        }
        if !any {
            return self.err(
                &pos,
                "export with no name would print the environment (write export NAME=value)",
            );
        }
        Ok(())
    }

    /// A word that must be `NAME=value`: expand it, or refuse.
    fn assignment_word(&mut self, w: Word) -> R<Assignment> {
        let eq = w.bare_prefix.iter().position(|&c| c == b'=');
        let name = match eq {
            Some(n) if is_name(&w.bare_prefix[..n]) => {
                String::from_utf8(w.bare_prefix[..n].to_vec()).expect("names are ASCII")
            }
            _ => return self.not_assignment(&w),
        };
        if name == "OPTIND" {
            // dash checks it as getopts' index: `OPTIND=x` is a fatal
            // "Illegal number", and its idea of a number is its own.
            return self.err(
                &w.pos,
                "OPTIND is the shell's getopts index, not a setting (sh refuses most values: choose another name)",
            );
        }
        let value = self.expand(&w.parts, name.len() + 1)?;
        let value_pos = w.value_pos.unwrap_or_else(|| w.pos.clone());
        Ok(Assignment {
            name,
            value,
            pos: w.pos,
            value_pos,
        })
    }

    fn not_assignment<T>(&self, w: &Word) -> R<T> {
        let shown = String::from_utf8_lossy(&w.bare_prefix).into_owned();
        if w.all_bare && KEYWORDS.contains(&shown.as_str()) {
            return self.err(
                &w.pos,
                format!("shell syntax '{shown}' is not supported (config files may only assign variables: NAME=value)"),
            );
        }
        if w.bare_prefix.first() == Some(&b'\r') {
            return self.err(
                &w.pos,
                "carriage return where a command would start (the file has CRLF line ends: convert it with dos2unix)",
            );
        }
        if let Some(n) = w.bare_prefix.iter().position(|&c| c == b'=') {
            let name = String::from_utf8_lossy(&w.bare_prefix[..n]);
            return self.err(
                &w.pos,
                format!("'{name}' is not a valid variable name (letters, digits and _, not starting with a digit)"),
            );
        }
        if w.all_bare && !shown.is_empty() {
            return self.err(
                &w.pos,
                format!("'{shown}' would run a command; only NAME=value assignments are allowed (courier-run runs nothing from a config file)"),
            );
        }
        self.err(
            &w.pos,
            "this word is not an assignment and would run a command (only NAME=value assignments are allowed; a name must not be quoted or escaped)",
        )
    }

    /// Read one word: unquoted text, quotes, escapes and `$` expansions, up
    /// to a blank, newline or end of input. Operators are refused here.
    fn word(&mut self) -> R<Word> {
        let pos = self.pos();
        let mut parts: Vec<Part> = Vec::new();
        let mut bare_prefix = Vec::new();
        let mut bare = true;
        let mut all_bare = true;
        // Tilde is expanded by sh at the start of an assignment value and
        // after an unquoted ':' in it. We refuse it there; tracking the
        // previous unquoted byte is enough.
        let mut prev: Option<u8> = None;
        let mut value_pos = None;
        loop {
            // Continuations first, so that `here` is where the byte is.
            self.eat_bnl();
            let here = self.pos();
            let Some(c) = self.peek() else { break };
            match c {
                b' ' | b'\t' | b'\n' => break,
                b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')' => {
                    return self.err(
                        &here,
                        format!(
                            "shell operator '{}' is not supported (config files may only assign variables; quote it if it is part of a value)",
                            c as char
                        ),
                    );
                }
                b'`' => {
                    return self.err(
                        &here,
                        "command substitution with backquotes is not supported (courier-run never runs commands)",
                    );
                }
                0 => return self.err(&here, NUL_MSG),
                b'\'' => {
                    bare = false;
                    all_bare = false;
                    self.bump();
                    let mut lit = Vec::new();
                    loop {
                        let at = self.pos();
                        match self.bump() {
                            Some(b'\'') => break,
                            Some(0) => return self.err(&at, NUL_MSG),
                            Some(c) => lit.push(c),
                            None => {
                                return self
                                    .err(&here, "unterminated single quote (add the closing ')");
                            }
                        }
                    }
                    push_lit(&mut parts, &lit);
                    prev = Some(b'\'');
                }
                b'"' => {
                    bare = false;
                    all_bare = false;
                    self.bump();
                    self.double_quoted(&here, &mut parts)?;
                    prev = Some(b'"');
                }
                b'\\' => {
                    bare = false;
                    all_bare = false;
                    self.bump();
                    match self.bump() {
                        None => {
                            return self.err(
                                &here,
                                "backslash at the end of the file (remove it or add a line after it)",
                            );
                        }
                        Some(0) => return self.err(&here, NUL_MSG),
                        Some(c) => push_lit(&mut parts, &[c]),
                    }
                    prev = Some(b'\\');
                }
                b'$' => {
                    bare = false;
                    all_bare = false;
                    self.bump();
                    match self.dollar(&here, Ctx::Unquoted)? {
                        Some(p) => parts.push(Part::Param(p)),
                        None => push_lit(&mut parts, b"$"),
                    }
                    prev = Some(b'$');
                }
                b'~' if self.tilde_position(&bare_prefix, bare, prev) => {
                    return self.err(
                        &here,
                        "tilde expansion is not supported (quote it as '~' for a literal tilde, or write the home directory out)",
                    );
                }
                _ => {
                    self.bump();
                    if bare {
                        if c == b'=' && value_pos.is_none() {
                            self.eat_bnl();
                            value_pos = Some(self.pos());
                        }
                        bare_prefix.push(c);
                    }
                    push_lit(&mut parts, &[c]);
                    prev = Some(c);
                }
            }
        }
        Ok(Word {
            pos,
            parts,
            bare_prefix,
            all_bare,
            value_pos,
        })
    }

    /// Would sh expand a `~` here? Only in an assignment's value: right after
    /// the first `=` of a bare `NAME=` prefix, or after an unquoted `:`.
    fn tilde_position(&self, bare_prefix: &[u8], bare: bool, prev: Option<u8>) -> bool {
        let in_value = match bare_prefix.iter().position(|&c| c == b'=') {
            Some(n) => is_name(&bare_prefix[..n]),
            None => false,
        };
        if !in_value {
            // Not (yet) an assignment word: the word is refused later anyway
            // unless it is a bare export name; a `~` there is just refused
            // as part of a command.
            return false;
        }
        let at_value_start = bare && bare_prefix.last() == Some(&b'=') && prev == Some(b'=')
            // the first '=' is the last byte of the bare prefix
            && bare_prefix.iter().filter(|&&c| c == b'=').count() == 1;
        at_value_start || prev == Some(b':')
    }

    /// The inside of "...", after the opening quote.
    fn double_quoted(&mut self, open: &Pos, parts: &mut Vec<Part>) -> R<()> {
        loop {
            self.eat_bnl();
            let here = self.pos();
            match self.peek() {
                None => {
                    return self.err(open, "unterminated double quote (add the closing \")");
                }
                Some(b'"') => {
                    self.bump();
                    return Ok(());
                }
                Some(0) => return self.err(&here, NUL_MSG),
                Some(b'`') => {
                    return self.err(
                        &here,
                        "command substitution with backquotes is not supported (courier-run never runs commands; write \\` for a literal backquote)",
                    );
                }
                Some(b'\\') => {
                    self.bump();
                    // The byte after the backslash is read raw, as dash's
                    // pgetc() does: in "\\<newline>" the escaped backslash
                    // is not the start of a line continuation.
                    match self.src.get(self.i).copied() {
                        Some(c @ (b'$' | b'`' | b'"' | b'\\')) => {
                            self.bump();
                            push_lit(parts, &[c]);
                        }
                        // Any other backslash stays, and the next byte is
                        // read normally on the next round.
                        _ => push_lit(parts, b"\\"),
                    }
                }
                Some(b'$') => {
                    self.bump();
                    match self.dollar(&here, Ctx::DoubleQuoted)? {
                        Some(p) => parts.push(Part::Param(p)),
                        None => push_lit(parts, b"$"),
                    }
                }
                Some(c) => {
                    self.bump();
                    push_lit(parts, &[c]);
                }
            }
        }
    }

    /// After a `$`: a parameter, or None for a literal `$`.
    fn dollar(&mut self, at: &Pos, ctx: Ctx) -> R<Option<Param>> {
        match self.peek() {
            Some(b'{') => {
                self.bump();
                self.braced(at, ctx).map(Some)
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let name = self.name();
                Ok(Some(Param {
                    name,
                    pos: at.clone(),
                    op: Op::Plain,
                }))
            }
            Some(b'(') => {
                self.bump();
                if self.peek() == Some(b'(') {
                    self.err(at, "arithmetic expansion $((...)) is not supported (write the number out)")
                } else {
                    self.err(at, "command substitution $(...) is not supported (courier-run never runs commands)")
                }
            }
            Some(c @ (b'0'..=b'9' | b'@' | b'*' | b'#' | b'?' | b'-' | b'$' | b'!')) => self.err(
                at,
                format!(
                    "special parameter ${} is not supported (only $NAME and ${{NAME...}} references are)",
                    c as char
                ),
            ),
            Some(b'\'') if ctx == Ctx::Unquoted => self.err(
                at,
                "$'...' quoting is not supported (dash and bash read it differently; use '...')",
            ),
            Some(b'"') if ctx == Ctx::Unquoted => self.err(
                at,
                "$\"...\" quoting is not supported (dash and bash read it differently; use \"...\")",
            ),
            _ => Ok(None),
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'_' {
                self.bump();
                name.push(c as char);
            } else {
                break;
            }
        }
        name
    }

    /// After `${`: NAME, then `}` or one of `-` `:-` `+` `:+` with a word.
    fn braced(&mut self, at: &Pos, ctx: Ctx) -> R<Param> {
        let unsupported = |p: &Self| {
            p.err(
                at,
                "unsupported ${...} form (only ${NAME}, ${NAME-word}, ${NAME:-word}, ${NAME+word} and ${NAME:+word} are)",
            )
        };
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {}
            Some(b'}') => return self.err(at, "empty ${} (write ${NAME})"),
            _ => return unsupported(self),
        }
        let name = self.name();
        let colon = self.peek() == Some(b':');
        if colon {
            self.bump();
        }
        let op = match self.peek() {
            Some(b'}') if !colon => {
                self.bump();
                return Ok(Param {
                    name,
                    pos: at.clone(),
                    op: Op::Plain,
                });
            }
            Some(b'-') => b'-',
            Some(b'+') => b'+',
            Some(b'=' | b'?') => {
                return self.err(
                    at,
                    "${NAME=word} and ${NAME?word} are not supported (they assign or exit; write NAME=${NAME-word} instead)",
                );
            }
            _ => return unsupported(self),
        };
        self.bump();
        let word = self.op_word(at, ctx)?;
        let op = if op == b'-' {
            Op::Default { colon, word }
        } else {
            Op::Alt { colon, word }
        };
        Ok(Param {
            name,
            pos: at.clone(),
            op,
        })
    }

    /// The word of `${NAME-word}`, up to the closing `}`. Only plain text and
    /// nested `$` references: quotes, escapes and braces inside it are read
    /// differently by different shells (and by dash inside "..."), so they
    /// are refused rather than guessed.
    fn op_word(&mut self, at: &Pos, ctx: Ctx) -> R<Vec<Part>> {
        let mut parts = Vec::new();
        loop {
            self.eat_bnl();
            let here = self.pos();
            match self.peek() {
                None => return self.err(at, "unterminated ${ (add the closing })"),
                Some(b'}') => {
                    self.bump();
                    return Ok(parts);
                }
                Some(b'$') => {
                    self.bump();
                    // Nested words keep the context: in an unquoted
                    // `${X-${Y-~}}` sh expands the tilde.
                    match self.dollar(&here, ctx)? {
                        Some(p) => parts.push(Part::Param(p)),
                        None => push_lit(&mut parts, b"$"),
                    }
                }
                Some(b'~') if ctx == Ctx::Unquoted => {
                    return self.err(
                        &here,
                        "tilde expansion is not supported (write the home directory out)",
                    );
                }
                Some(c)
                    if c.is_ascii_alphanumeric()
                        || c >= 0x80
                        || b" \t/.,:@%+-=!*?^_~[]".contains(&c) =>
                {
                    self.bump();
                    push_lit(&mut parts, &[c]);
                }
                Some(c) => {
                    let shown = if c.is_ascii_graphic() {
                        format!("'{}'", c as char)
                    } else {
                        format!("byte 0x{c:02x}")
                    };
                    return self.err(
                        &here,
                        format!("{shown} inside ${{NAME-word}} is not supported (set the default in a variable first: D=...; then ${{NAME-$D}})"),
                    );
                }
            }
        }
    }

    /// Expand a word's parts into bytes (no field splitting, no globbing:
    /// this is an assignment). `skip` bytes of leading literal (`NAME=`) are
    /// dropped.
    fn expand(&mut self, parts: &[Part], mut skip: usize) -> R<Vec<u8>> {
        let mut out = Vec::new();
        for part in parts {
            match part {
                Part::Lit(b) => {
                    let n = skip.min(b.len());
                    skip -= n;
                    out.extend_from_slice(&b[n..]);
                }
                Part::Param(p) => self.expand_param(p, &mut out)?,
            }
        }
        Ok(out)
    }

    fn expand_param(&mut self, p: &Param, out: &mut Vec<u8>) -> R<()> {
        let value = self.lookup(&p.name, &p.pos)?;
        match &p.op {
            Op::Plain => match value {
                Some(v) => out.extend_from_slice(&v),
                None => self.scope.warnings.push(Warning {
                    pos: p.pos.clone(),
                    msg: format!(
                        "{} is not set: ${} expands to the empty string",
                        p.name, p.name
                    ),
                }),
            },
            Op::Default { colon, word } => match value {
                Some(v) if !(*colon && v.is_empty()) => out.extend_from_slice(&v),
                _ => out.extend(self.expand(word, 0)?),
            },
            Op::Alt { colon, word } => match value {
                Some(v) if !(*colon && v.is_empty()) => out.extend(self.expand(word, 0)?),
                _ => {}
            },
        }
        Ok(())
    }

    fn lookup(&self, name: &str, pos: &Pos) -> R<Option<Vec<u8>>> {
        if let Some(&i) = self.scope.latest.get(name) {
            return Ok(Some(self.scope.assigned[i].value.clone()));
        }
        if SHELL_OWNED.contains(&name) {
            return self.err(
                pos,
                format!("${name} is the shell's own variable here, not the environment's (assign {name} earlier in the config to use it)"),
            );
        }
        match self.scope.inherited.get(name) {
            Some(v) => Ok(Some(v.clone())),
            None if name == "PATH" => self.err(
                pos,
                "PATH is not set: sh would substitute its built-in default path (assign PATH earlier in the config)",
            ),
            None => Ok(None),
        }
    }
}

fn push_lit(parts: &mut Vec<Part>, b: &[u8]) {
    if let Some(Part::Lit(l)) = parts.last_mut() {
        l.extend_from_slice(b);
    } else {
        parts.push(Part::Lit(b.to_vec()));
    }
}

/// Read `src` as file `file` with an empty inherited environment.
pub fn read_str(file: &str, src: &[u8]) -> anyhow::Result<Scope> {
    let mut s = Scope::new([]);
    s.read(file, src)?;
    Ok(s)
}

/// Read the config file at `path` into `scope`; returns its permission bits
/// (the envdir is private when a config file is). The file is read from one
/// open descriptor, so the mode and bytes belong to the same file.
pub fn read_file(scope: &mut Scope, path: &std::path::Path) -> anyhow::Result<u32> {
    use anyhow::Context;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let mut f = std::fs::File::open(path)
        .with_context(|| format!("unable to open config file {}", path.display()))?;
    let mode = f
        .metadata()
        .with_context(|| format!("unable to stat config file {}", path.display()))?
        .permissions()
        .mode();
    let mut src = Vec::new();
    f.read_to_end(&mut src)
        .with_context(|| format!("unable to read config file {}", path.display()))?;
    scope.read(&path.to_string_lossy(), &src)?;
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(src: &str) -> Vec<(String, String)> {
        let s = read_str("t", src.as_bytes()).unwrap();
        s.vars()
            .iter()
            .map(|a| {
                (
                    a.name.clone(),
                    String::from_utf8_lossy(&a.value).into_owned(),
                )
            })
            .collect()
    }

    fn err(src: &str) -> String {
        format!("{:#}", read_str("t", src.as_bytes()).unwrap_err())
    }

    macro_rules! ok_cases {
        ($($name:ident: $src:expr => [$(($k:expr, $v:expr)),*];)*) => {$(
            #[test]
            fn $name() {
                let want: Vec<(String, String)> = vec![$(($k.to_string(), $v.to_string())),*];
                assert_eq!(vars($src), want);
            }
        )*};
    }

    ok_cases! {
        plain: "A=1\n" => [("A", "1")];
        two_on_a_line: "A=1 B=$A\n" => [("A", "1"), ("B", "1")];
        later_wins: "A=1\nA=2\n" => [("A", "2")];
        dquote: "A=\"x y\"\n" => [("A", "x y")];
        squote_adjacent: "A='it'\"'\"'s'\n" => [("A", "it's")];
        continuation: "A=a\\\nb\n" => [("A", "ab")];
        comment_after: "A=1 # c\n" => [("A", "1")];
        hash_in_word: "A=1#c\n" => [("A", "1#c")];
        default_op: "A=${X-d} B=${X:-e}\n" => [("A", "d"), ("B", "e")];
        alt_op: "X=\nA=${X+y} B=${X:+z}\n" => [("X", ""), ("A", "y"), ("B", "")];
        export_forms: "export A=1\nexport A\nexport B=2 C=3\n" => [("A", "1"), ("B", "2"), ("C", "3")];
        dquote_escapes: "A=\"\\$x\\\\\\\"\\q\"\n" => [("A", "$x\\\"\\q")];
        dollar_literal: "A=$ B=\"$\" C=a$\n" => [("A", "$"), ("B", "$"), ("C", "a$")];
        tilde_mid: "A=a~b\n" => [("A", "a~b")];
    }

    #[test]
    fn refusals_name_position() {
        assert!(err("A=1\nB=$(ls)\n").contains("t:2:3: command substitution"));
        assert!(err("ls\n").contains("t:1:1: 'ls' would run a command"));
        assert!(err("A=1; B=2\n").contains("t:1:4: shell operator ';'"));
        assert!(err("9A=1\n").contains("t:1:1: '9A' is not a valid"));
        assert!(err("A=~\n").contains("t:1:3: tilde"));
        assert!(err("A=x:~/y\n").contains("t:1:5: tilde"));
        assert!(err("A='x\n").contains("t:1:3: unterminated single quote"));
        assert!(err("A=${X#y}\n").contains("unsupported ${...} form"));
        assert!(err("A=$LINENO\n").contains("shell's own variable"));
    }

    #[test]
    fn unset_reference_warns() {
        let s = read_str("t", b"A=$NOPE\n").unwrap();
        assert_eq!(s.warnings.len(), 1);
        assert_eq!(
            s.warnings[0].to_string(),
            "t:1:3: NOPE is not set: $NOPE expands to the empty string"
        );
    }

    #[test]
    fn value_position_is_after_the_equals_sign() {
        let s = read_str("t", b"  PORT=1 X=y\nA=\\\nz\n").unwrap();
        let at = |n: &str| {
            let a = s.assignments().iter().find(|a| a.name == n).unwrap();
            (a.pos.to_string(), a.value_pos.to_string())
        };
        assert_eq!(at("PORT"), ("t:1:3".into(), "t:1:8".into()));
        assert_eq!(at("X"), ("t:1:10".into(), "t:1:12".into()));
        // After a continuation right behind '=', the value starts below.
        assert_eq!(at("A"), ("t:2:1".into(), "t:3:1".into()));
    }
}
