//! The parser proper: one file's bytes into a [`Scope`], as dash reads them.
//!
//! Every recursion here is bounded: `${` by [`MAX_NESTING`] (counted in
//! `braced`, the one place a reference nests; quotes inside braces recurse
//! only through it), `. FILE` by [`MAX_SOURCE_DEPTH`]. Literal runs are
//! scanned as slices up to the next byte that means something, not pushed a
//! byte at a time.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use super::Warning;
use super::{Assignment, MAX_NESTING, MAX_SHOWN, MAX_SOURCE_DEPTH, MAX_VALUES_SIZE, Pos, Scope};
use super::{is_name, read_bounded, shown};
use crate::error::describe;

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

/// A 256-entry set of bytes, for scanning literal runs.
struct ByteSet([bool; 256]);

impl ByteSet {
    const fn new(bytes: &[u8]) -> ByteSet {
        let mut t = [false; 256];
        let mut i = 0;
        while i < bytes.len() {
            t[bytes[i] as usize] = true;
            i += 1;
        }
        ByteSet(t)
    }

    fn has(&self, c: u8) -> bool {
        self.0[c as usize]
    }
}

/// Bytes that end a literal run in an unquoted word.
static UNQUOTED_SPECIAL: ByteSet = ByteSet::new(b" \t\n;&|<>()`\0'\"\\$~=");
/// Bytes that end a literal run inside "...".
static DQUOTED_SPECIAL: ByteSet = ByteSet::new(b"\"\\$`\0");
/// Bytes that end a literal run in the word of `${NAME-word}`.
static OPWORD_SPECIAL: ByteSet = ByteSet::new(b"}$\"'\\~`\0");

/// A piece of a word, before expansion.
#[derive(Debug)]
enum Part<'a> {
    /// Bytes from the source (quotes and escapes removed): a slice of it
    /// while they are one run of it, a copy once they are not.
    Lit(Cow<'a, [u8]>),
    Param(Param<'a>),
}

#[derive(Debug)]
struct Param<'a> {
    name: String,
    pos: Pos,
    op: Op<'a>,
    /// Inside "..." (its expansion is not split into fields).
    quoted: bool,
}

/// What `${NAME...}` does; `colon`: the empty value counts as unset.
#[derive(Debug)]
enum Op<'a> {
    Plain,
    /// `-` or `:-`: the word when unset.
    Default {
        colon: bool,
        word: Vec<Part<'a>>,
    },
    /// `+` or `:+`: the word when set.
    Alt {
        colon: bool,
        word: Vec<Part<'a>>,
    },
    /// `=` or `:=`: when unset, assign the word and expand to it.
    Assign {
        colon: bool,
        word: Vec<Part<'a>>,
    },
    /// `?` or `:?`: when unset, sh stops with the word as its message.
    Error {
        colon: bool,
        word: Vec<Part<'a>>,
    },
}

/// A word of a command line, with what assignment detection needs: how many
/// leading bytes were plain, unquoted, unescaped source.
#[derive(Debug)]
struct Word<'a> {
    pos: At,
    parts: Vec<Part<'a>>,
    /// The leading unquoted, unescaped literal bytes (dash decides "is an
    /// assignment" on these alone).
    bare_prefix: Cow<'a, [u8]>,
    /// The whole word was bare literal text.
    all_bare: bool,
    /// Where the value starts, after the first bare `=` (if any).
    value_pos: Option<At>,
    /// Where that `=` is in `bare_prefix`.
    eq: Option<usize>,
    /// An unquoted `*`, `?` or `[` (a pattern, in a word sh globs).
    glob: bool,
}

/// Where the parts of a plain `NAME=value` word are in the source.
struct Plain {
    name: std::ops::Range<usize>,
    value: std::ops::Range<usize>,
    /// Just after the word.
    end: usize,
}

/// A line and column in the file being read.
#[derive(Clone, Copy, Debug)]
struct At {
    line: u32,
    col: u32,
}

/// Where a `~` would be expanded by sh, so that we refuse it.
#[derive(Clone, Copy, PartialEq)]
enum Tilde {
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
    /// How many `${` deep the reader is.
    nest: u32,
    /// An empty vector for the next word's parts: the words of a command
    /// are read one at a time, so one allocation serves them all.
    spare: Vec<Part<'a>>,
}

type R<T> = anyhow::Result<T>;

/// Read `src` (named `file` in positions) into `scope`.
pub(super) fn read(scope: &mut Scope, file: Arc<str>, src: &[u8]) -> R<()> {
    Parser {
        src,
        i: 0,
        line: 1,
        col: 1,
        file,
        scope,
        nest: 0,
        spare: Vec::new(),
    }
    .file_()
}

impl<'a> Parser<'a, '_> {
    /// Where the reader is, cheaply (a [`Pos`] is made only when needed).
    fn at(&self) -> At {
        At {
            line: self.line,
            col: self.col,
        }
    }

    fn pos_of(&self, at: At) -> Pos {
        Pos {
            file: self.file.clone(),
            line: at.line,
            col: at.col,
        }
    }

    fn err_at<T>(&self, at: At, msg: impl fmt::Display) -> R<T> {
        self.err(&self.pos_of(at), msg)
    }

    /// A refusal as data: its position a field of the Problem, so that
    /// the fatal line and --check (and its JSON) render the same fields.
    fn err<T>(&self, pos: &Pos, msg: impl fmt::Display) -> R<T> {
        Err(crate::error::Problem::bad(
            crate::error::Subject::Config,
            crate::error::Position::At(pos.to_string()),
            msg.to_string(),
            "",
        )
        .into())
    }

    /// A recursion refused for want of stack: a system limit, not bad
    /// input (exit 111), with the limit and the way out.
    fn low_stack<T>(&self, pos: &Pos, what: &str, depth: u32) -> R<T> {
        Err(crate::error::Problem::new(
            crate::error::Exit::System,
            crate::error::Subject::Config,
            crate::error::Position::At(pos.to_string()),
            format!(
                "{what} {depth} deep, and the stack limit ({}) leaves too little stack to go deeper",
                crate::stack::limit_text()
            ),
            "raise the limit (ulimit -s 8192), or set the inner defaults in variables first",
        )
        .into())
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

    /// Consume `n` raw bytes, keeping positions; returns them.
    fn take(&mut self, n: usize) -> &'a [u8] {
        let src: &'a [u8] = self.src;
        let run = &src[self.i..self.i + n];
        self.i += n;
        match crate::bytes::rfind(b'\n', run) {
            Some(last) => {
                self.line += crate::bytes::count(b'\n', run) as u32;
                self.col = (n - last) as u32;
            }
            None => self.col += n as u32,
        }
        run
    }

    /// [`take`](Self::take) for a run known to hold no newline.
    fn take_line(&mut self, n: usize) {
        self.i += n;
        self.col += n as u32;
    }

    /// The byte just consumed, as a slice of the source (a literal byte is
    /// always one of the source's).
    fn byte_before(&self) -> &'a [u8] {
        let src: &'a [u8] = self.src;
        &src[self.i - 1..self.i]
    }

    /// Consume the run of bytes not in `stop` (possibly empty).
    fn run(&mut self, stop: &ByteSet) -> &'a [u8] {
        let n = self.src[self.i..]
            .iter()
            .position(|&c| stop.has(c))
            .unwrap_or(self.src.len() - self.i);
        if stop.has(b'\n') {
            let src: &'a [u8] = self.src;
            self.take_line(n);
            &src[self.i - n..self.i]
        } else {
            self.take(n)
        }
    }

    fn file_(&mut self) -> R<()> {
        loop {
            self.blanks();
            match self.src.get(self.i) {
                None => return Ok(()),
                Some(b'\n') => self.newline(),
                Some(b'#') => self.comment_lines(),
                Some(_) => self.command()?,
            }
        }
    }

    /// Whole comment lines, one after the other: most of a Courier config.
    fn comment_lines(&mut self) {
        let src = self.src;
        loop {
            self.comment();
            if self.i == src.len() {
                return;
            }
            self.newline();
            if src.get(self.i) != Some(&b'#') {
                return;
            }
        }
    }

    /// Skip blanks and line continuations.
    fn blanks(&mut self) {
        loop {
            match self.src.get(self.i) {
                Some(b' ' | b'\t') => {
                    self.i += 1;
                    self.col += 1;
                }
                Some(b'\\') if self.src.get(self.i + 1) == Some(&b'\n') => {
                    self.i += 2;
                    self.line += 1;
                    self.col = 1;
                }
                _ => return,
            }
        }
    }

    /// Consume the newline at the reading position.
    fn newline(&mut self) {
        self.i += 1;
        self.line += 1;
        self.col = 1;
    }

    /// A comment runs to the end of the line; a backslash in it is not a
    /// continuation (dash reads comments raw).
    fn comment(&mut self) {
        let n = line_len(&self.src[self.i..]);
        self.take_line(n);
    }

    /// Give a word's vector of parts back for the next word.
    fn recycle(&mut self, mut parts: Vec<Part<'a>>) {
        parts.clear();
        self.spare = parts;
    }

    /// One simple command: words up to the end of the line (or a comment).
    fn command(&mut self) -> R<()> {
        let mut first = true;
        // Expansion happens per word, left to right, as dash does for
        // `A=1 B=$A` (B sees A=1): so assign before reading on.
        loop {
            self.blanks();
            if let Some(p) = self.plain_assignment() {
                let a = self.read_plain(p);
                self.assign(a)?;
                first = false;
                continue;
            }
            let Some(w) = self.next_word()? else {
                return Ok(());
            };
            if first && w.all_bare && *w.bare_prefix == *b"export" {
                return self.export(w.pos);
            }
            if first && w.all_bare && *w.bare_prefix == *b"." {
                return self.dot(w.pos);
            }
            first = false;
            let a = self.assignment_word(w)?;
            self.assign(a)?;
        }
    }

    /// The word at the reading position when it is `NAME=value` or
    /// `NAME="value"` with nothing in the value that sh interprets (no
    /// quote, escape, `$`, backquote, `~`, `=`, operator, NUL, nor a newline
    /// inside the quotes), followed by a blank, a newline or the end: most
    /// of a Courier config, read here in one pass with the same result as
    /// [`word`](Self::word) and [`assignment_word`](Self::assignment_word).
    /// None, having consumed nothing, for any other word.
    fn plain_assignment(&self) -> Option<Plain> {
        let src = self.src;
        let start = self.i;
        if !src
            .get(start)
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        {
            return None;
        }
        let name_end = start
            + src[start..]
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))?;
        if src[name_end] != b'=' || &src[start..name_end] == b"OPTIND" {
            return None;
        }
        let (value, end) = if src.get(name_end + 1) == Some(&b'"') {
            let v = name_end + 2;
            let n = src[v..]
                .iter()
                .position(|&c| DQUOTED_SPECIAL.has(c) || c == b'\n')?;
            if src[v + n] != b'"' {
                return None;
            }
            (v..v + n, v + n + 1)
        } else {
            let v = name_end + 1;
            let n = src[v..]
                .iter()
                .position(|&c| UNQUOTED_SPECIAL.has(c))
                .unwrap_or(src.len() - v);
            (v..v + n, v + n)
        };
        match src.get(end) {
            None | Some(b' ' | b'\t' | b'\n') => Some(Plain {
                name: start..name_end,
                value,
                end,
            }),
            _ => None,
        }
    }

    /// Consume the word [`plain_assignment`](Self::plain_assignment) found.
    fn read_plain(&mut self, p: Plain) -> Assignment {
        let src: &'a [u8] = self.src;
        let at = self.at();
        let value_at = At {
            line: at.line,
            col: at.col + (p.name.len() + 1) as u32,
        };
        self.take_line(p.end - self.i);
        Assignment {
            name: std::str::from_utf8(&src[p.name])
                .expect("names are ASCII")
                .to_owned(),
            value: src[p.value].to_vec(),
            pos: self.pos_of(at),
            value_pos: self.pos_of(value_at),
        }
    }

    /// The next word of this command, or None at its end (a newline, the
    /// end of the input, or a comment).
    fn next_word(&mut self) -> R<Option<Word<'a>>> {
        self.blanks();
        match self.src.get(self.i) {
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
    fn export(&mut self, pos: At) -> R<()> {
        let mut any = false;
        let mut pending = Vec::new();
        while let Some(w) = self.next_word()? {
            any = true;
            if w.all_bare && is_name(&w.bare_prefix) {
                self.recycle(w.parts);
                continue;
            }
            if w.bare_prefix.starts_with(b"-") {
                return self.err_at(
                    w.pos,
                    "export options are not supported (write export NAME or export NAME=value)",
                );
            }
            pending.push(self.assignment_word(w)?);
        }
        for a in pending {
            self.assign(a)?;
        }
        if !any {
            return self.err_at(
                pos,
                "export with no name would print the environment (write export NAME=value)",
            );
        }
        Ok(())
    }

    /// `. FILE`: read FILE into the same scope, as sh does. FILE must hold a
    /// `/` (otherwise sh searches PATH for it) and is expanded as sh expands
    /// a command's argument, or refused where that would split or glob it.
    fn dot(&mut self, at: At) -> R<()> {
        let pos = self.pos_of(at);
        let Some(w) = self.next_word()? else {
            return self.err(
                &pos,
                "'.' with no file name (write . /path/to/file, or remove the line)",
            );
        };
        if let Some(extra) = self.next_word()? {
            return self.err_at(
                extra.pos,
                "'. FILE' takes one file name (sh would pass the rest as positional parameters: remove them)",
            );
        }
        if w.bare_prefix.first() == Some(&b'~') {
            return self.err_at(
                w.pos,
                "tilde expansion is not supported (write the home directory out)",
            );
        }
        if w.glob {
            return self.err_at(
                w.pos,
                "unquoted *, ? or [ in the file name of '.' (sh would expand it as a pattern: quote it, or write the name out)",
            );
        }
        let path = self.expand_argument(&w)?;
        if path.is_empty() {
            return self.err_at(
                w.pos,
                "'.' with an empty file name (sh would fail: write the path)",
            );
        }
        if path.first() == Some(&b'-') {
            return self.err_at(
                w.pos,
                "a file name of '.' starting with - would be read as an option by sh (write ./ before it)",
            );
        }
        if !path.contains(&b'/') {
            return self.err_at(
                w.pos,
                format!(
                    "'. {}' makes sh search PATH for the file (write the path with a /, e.g. ./{} or /etc/courier/{})",
                    shown(&path, MAX_SHOWN),
                    shown(&path, MAX_SHOWN),
                    shown(&path, MAX_SHOWN)
                ),
            );
        }
        self.source(&pos, &path)
    }

    /// Expand a command argument (the FILE of `. FILE`). sh would split an
    /// unquoted expansion on IFS and glob it: refuse the values where that
    /// would change anything, rather than guess.
    fn expand_argument(&mut self, w: &Word<'a>) -> R<Vec<u8>> {
        let mut out = Vec::new();
        for part in &w.parts {
            match part {
                Part::Lit(b) => out.extend_from_slice(b),
                Part::Param(p) if p.quoted => self.expand_param(p, &mut out)?,
                Part::Param(p) => {
                    let mut v = Vec::new();
                    self.expand_param(p, &mut v)?;
                    let ifs = self.scope.assigned("IFS").unwrap_or(b" \t\n");
                    if v.iter().any(|c| ifs.contains(c) || b"*?[".contains(c)) {
                        return self.err(
                            &p.pos,
                            format!(
                                "the value of {} holds a blank or a pattern character, which sh would split or expand in an unquoted '. FILE' (put the reference in double quotes)",
                                shown(p.name.as_bytes(), MAX_SHOWN)
                            ),
                        );
                    }
                    out.extend_from_slice(&v);
                }
            }
        }
        Ok(out)
    }

    /// Read the file `. FILE` names into the scope, its positions naming it.
    fn source(&mut self, dot: &Pos, path: &[u8]) -> R<()> {
        if self.scope.depth >= MAX_SOURCE_DEPTH {
            return self.err(
                dot,
                format!("'. FILE' nested more than {MAX_SOURCE_DEPTH} deep (is a file sourcing itself through another?)"),
            );
        }
        // Each level reads a file through the whole parser: past the one
        // level real configs use, ask for stack first (stack.rs).
        if self.scope.depth >= 2 && !crate::stack::enough() {
            return self.low_stack(dot, "'. FILE'", self.scope.depth as u32);
        }
        let p = Path::new(OsStr::from_bytes(path));
        let (src, meta) = read_bounded(p, "file").or_else(|e| {
            self.err(
                dot,
                format!(
                    "'. FILE': {} (sh would stop here: fix the path or remove the line)",
                    describe(&e)
                ),
            )
        })?;
        let id = (meta.dev(), meta.ino());
        if self.scope.reading.contains(&id) {
            return self.err(
                dot,
                format!(
                    "'. {}' reads a file that is already being read (a loop: sh would never end)",
                    crate::shown::path(OsStr::from_bytes(path))
                ),
            );
        }
        self.scope.sourced_mode &= meta.mode();
        self.scope.files.push(p.to_path_buf());
        self.scope.reading.push(id);
        self.scope.depth += 1;
        let r = read(self.scope, Arc::from(shown(path, usize::MAX)), &src);
        self.scope.depth -= 1;
        self.scope.reading.pop();
        r
    }

    /// Assign, within [`MAX_VALUES_SIZE`] for all values read.
    fn assign(&mut self, a: Assignment) -> R<()> {
        self.within_limit(a.value.len(), &a.value_pos)?;
        self.scope.value_bytes += a.value.len() as u64;
        self.scope.assign(a);
        Ok(())
    }

    /// Refuse when `more` bytes of value would take all values read past
    /// [`MAX_VALUES_SIZE`] (`A=$A$A` on every line doubles a value: 40
    /// lines would ask for a terabyte).
    fn within_limit(&self, more: usize, pos: &Pos) -> R<()> {
        if self.scope.value_bytes + more as u64 > MAX_VALUES_SIZE {
            return self.err(
                pos,
                format!(
                    "the values grow past {} MiB in all (does a reference double a value on every line?)",
                    MAX_VALUES_SIZE >> 20
                ),
            );
        }
        Ok(())
    }

    /// A word that must be `NAME=value`: expand it, or refuse.
    fn assignment_word(&mut self, w: Word<'a>) -> R<Assignment> {
        let name = match w.eq {
            Some(n) if is_name(&w.bare_prefix[..n]) => std::str::from_utf8(&w.bare_prefix[..n])
                .expect("names are ASCII")
                .to_owned(),
            _ => return self.not_assignment(&w),
        };
        if name == "OPTIND" {
            // dash checks it as getopts' index: `OPTIND=x` is a fatal
            // "Illegal number", and its idea of a number is its own.
            return self.err_at(
                w.pos,
                "OPTIND is the shell's getopts index, not a setting (sh refuses most values: choose another name)",
            );
        }
        let value = self.expand(&w.parts, name.len() + 1)?;
        self.recycle(w.parts);
        Ok(Assignment {
            name,
            value,
            pos: self.pos_of(w.pos),
            value_pos: self.pos_of(w.value_pos.unwrap_or(w.pos)),
        })
    }

    fn not_assignment<T>(&self, w: &Word<'a>) -> R<T> {
        let word: &[u8] = &w.bare_prefix;
        let shown_word = shown(word, MAX_SHOWN);
        if w.all_bare && KEYWORDS.iter().any(|k| k.as_bytes() == word) {
            return self.err_at(
                w.pos,
                format!("shell syntax '{shown_word}' is not supported (config files may only assign variables: NAME=value)"),
            );
        }
        if word.first() == Some(&b'\r') {
            return self.err_at(
                w.pos,
                "carriage return where a command would start (the file has CRLF line ends: convert it with dos2unix)",
            );
        }
        if let Some(n) = word.iter().position(|&c| c == b'=') {
            return self.err_at(
                w.pos,
                format!(
                    "'{}' is not a valid variable name (letters, digits and _, not starting with a digit)",
                    shown(&word[..n], MAX_SHOWN)
                ),
            );
        }
        if let Some(cmd) = command_name(word).filter(|_| w.all_bare) {
            return self.err_at(
                w.pos,
                format!("'{cmd}' would run a command; only NAME=value assignments are allowed (courier-run runs nothing from a config file)"),
            );
        }
        self.err_at(
            w.pos,
            "this word is not an assignment and would run a command (only NAME=value assignments are allowed; a name must not be quoted or escaped)",
        )
    }

    /// Read one word: unquoted text, quotes, escapes and `$` expansions, up
    /// to a blank, newline or end of input. Operators are refused here.
    fn word(&mut self) -> R<Word<'a>> {
        let pos = self.at();
        let mut parts = std::mem::take(&mut self.spare);
        let mut bare_prefix = Cow::Borrowed(&self.src[..0]);
        let mut bare = true;
        let mut all_bare = true;
        let mut glob = false;
        // Tilde is expanded by sh at the start of an assignment value and
        // after an unquoted ':' in it. We refuse it there; tracking the
        // previous unquoted byte is enough.
        let mut prev: Option<u8> = None;
        let mut value_pos = None;
        let mut eq = None;
        loop {
            // Continuations first, so that `here` is where the byte is.
            self.eat_bnl();
            let here = self.at();
            let Some(c) = self.peek() else { break };
            match c {
                b' ' | b'\t' | b'\n' => break,
                b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')' => {
                    return self.err_at(
                        here,
                        format!(
                            "shell operator '{}' is not supported (config files may only assign variables; quote it if it is part of a value)",
                            c as char
                        ),
                    );
                }
                b'`' => {
                    return self.err_at(
                        here,
                        "command substitution with backquotes is not supported (courier-run never runs commands)",
                    );
                }
                0 => return self.err_at(here, NUL_MSG),
                b'\'' => {
                    bare = false;
                    all_bare = false;
                    self.bump();
                    self.single_quoted(here, &mut parts)?;
                    prev = Some(b'\'');
                }
                b'"' => {
                    bare = false;
                    all_bare = false;
                    self.bump();
                    self.double_quoted(here, &mut parts, false)?;
                    prev = Some(b'"');
                }
                b'\\' => {
                    bare = false;
                    all_bare = false;
                    self.bump();
                    self.escaped(here, &mut parts)?;
                    prev = Some(b'\\');
                }
                b'$' => {
                    bare = false;
                    all_bare = false;
                    self.bump();
                    let d = self.byte_before();
                    match self.dollar(here, Tilde::Unquoted)? {
                        Some(p) => parts.push(Part::Param(p)),
                        None => push_lit(self.src, &mut parts, d),
                    }
                    prev = Some(b'$');
                }
                b'~' if self.tilde_position(&bare_prefix, bare, prev) => {
                    return self.err_at(
                        here,
                        "tilde expansion is not supported (quote it as '~' for a literal tilde, or write the home directory out)",
                    );
                }
                b'=' | b'~' => {
                    self.bump();
                    let b = self.byte_before();
                    if bare {
                        if c == b'=' && value_pos.is_none() {
                            self.eat_bnl();
                            value_pos = Some(self.at());
                            eq = Some(bare_prefix.len());
                        }
                        extend(self.src, &mut bare_prefix, b);
                    }
                    push_lit(self.src, &mut parts, b);
                    prev = Some(c);
                }
                _ => {
                    // A run of bytes that stand for themselves.
                    let run = self.run(&UNQUOTED_SPECIAL);
                    glob |= run.iter().any(|c| matches!(c, b'*' | b'?' | b'['));
                    prev = run.last().copied();
                    if bare {
                        extend(self.src, &mut bare_prefix, run);
                    }
                    push_lit(self.src, &mut parts, run);
                }
            }
        }
        Ok(Word {
            pos,
            parts,
            bare_prefix,
            all_bare,
            value_pos,
            eq,
            glob,
        })
    }

    /// After a backslash outside quotes: the next byte, raw.
    fn escaped(&mut self, at: At, parts: &mut Vec<Part<'a>>) -> R<()> {
        match self.bump() {
            None => self.err_at(
                at,
                "backslash at the end of the file (remove it or add a line after it)",
            ),
            Some(0) => self.err_at(at, NUL_MSG),
            Some(_) => {
                push_lit(self.src, parts, self.byte_before());
                Ok(())
            }
        }
    }

    /// The inside of '...', after the opening quote: raw bytes.
    fn single_quoted(&mut self, open: At, parts: &mut Vec<Part<'a>>) -> R<()> {
        let Some(n) = crate::bytes::find(b'\'', &self.src[self.i..]) else {
            return self.err_at(open, "unterminated single quote (add the closing ')");
        };
        if let Some(z) = crate::bytes::find(0, &self.src[self.i..self.i + n]) {
            self.take(z);
            return self.err_at(self.at(), NUL_MSG);
        }
        let run = self.take(n);
        push_lit(self.src, parts, run);
        self.bump();
        Ok(())
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
            // unless it is a bare export name or the file of `.`, which
            // refuses a leading `~` itself.
            return false;
        }
        let at_value_start = bare && bare_prefix.last() == Some(&b'=') && prev == Some(b'=')
            // the first '=' is the last byte of the bare prefix
            && bare_prefix.iter().filter(|&&c| c == b'=').count() == 1;
        at_value_start || prev == Some(b':')
    }

    /// The inside of "...", after the opening quote. `in_braces`: the quotes
    /// are inside `${NAME-...}`, where dash also removes the backslash of
    /// `\}` (and a `}` does not close the braces).
    fn double_quoted(&mut self, open: At, parts: &mut Vec<Part<'a>>, in_braces: bool) -> R<()> {
        loop {
            self.eat_bnl();
            let here = self.at();
            match self.peek() {
                None => {
                    return self.err_at(open, "unterminated double quote (add the closing \")");
                }
                Some(b'"') => {
                    self.bump();
                    return Ok(());
                }
                Some(0) => return self.err_at(here, NUL_MSG),
                Some(b'`') => {
                    return self.err_at(
                        here,
                        "command substitution with backquotes is not supported (courier-run never runs commands; write \\` for a literal backquote)",
                    );
                }
                Some(b'\\') => {
                    self.bump();
                    self.dquoted_backslash(parts, in_braces);
                }
                Some(b'$') => {
                    self.bump();
                    let d = self.byte_before();
                    match self.dollar(here, Tilde::DoubleQuoted)? {
                        Some(p) => parts.push(Part::Param(p)),
                        None => push_lit(self.src, parts, d),
                    }
                }
                Some(_) => {
                    let run = self.run(&DQUOTED_SPECIAL);
                    push_lit(self.src, parts, run);
                }
            }
        }
    }

    /// After a backslash inside double quotes (or in the word of a
    /// `${NAME-word}` inside them). The byte after it is read raw, as dash's
    /// pgetc() does: in "\\<newline>" the escaped backslash is not the start
    /// of a line continuation.
    fn dquoted_backslash(&mut self, parts: &mut Vec<Part<'a>>, in_braces: bool) {
        match self.src.get(self.i).copied() {
            Some(b'$' | b'`' | b'"' | b'\\') => {
                self.bump();
                let b = self.byte_before();
                push_lit(self.src, parts, b);
            }
            Some(b'}') if in_braces => {
                self.bump();
                let b = self.byte_before();
                push_lit(self.src, parts, b);
            }
            // Any other backslash (the byte before this one) stays, and the
            // next byte is read normally on the next round.
            _ => push_lit(self.src, parts, self.byte_before()),
        }
    }

    /// After a `$`: a parameter, or None for a literal `$`.
    fn dollar(&mut self, at: At, ctx: Tilde) -> R<Option<Param<'a>>> {
        match self.peek() {
            Some(b'{') => {
                self.bump();
                self.braced(at, ctx).map(Some)
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let name = self.name();
                Ok(Some(Param {
                    name,
                    pos: self.pos_of(at),
                    op: Op::Plain,
                    quoted: ctx == Tilde::DoubleQuoted,
                }))
            }
            Some(b'(') => {
                self.bump();
                if self.peek() == Some(b'(') {
                    self.err_at(at, "arithmetic expansion $((...)) is not supported (write the number out)")
                } else {
                    self.err_at(at, "command substitution $(...) is not supported (courier-run never runs commands)")
                }
            }
            Some(c @ (b'0'..=b'9' | b'@' | b'*' | b'#' | b'?' | b'-' | b'$' | b'!')) => self.err_at(
                at,
                format!(
                    "special parameter ${} is not supported (only $NAME and ${{NAME...}} references are)",
                    c as char
                ),
            ),
            Some(b'\'') if ctx == Tilde::Unquoted => self.err_at(
                at,
                "$'...' quoting is not supported (dash and bash read it differently; use '...')",
            ),
            Some(b'"') if ctx == Tilde::Unquoted => self.err_at(
                at,
                "$\"...\" quoting is not supported (dash and bash read it differently; use \"...\")",
            ),
            _ => Ok(None),
        }
    }

    /// A name (after continuations inside it, as dash reads them).
    fn name(&mut self) -> String {
        let mut name = Vec::new();
        loop {
            let n = self.src[self.i..]
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                .unwrap_or(self.src.len() - self.i);
            name.extend_from_slice(self.take(n));
            match self.peek() {
                Some(c) if c.is_ascii_alphanumeric() || c == b'_' => {}
                _ => break,
            }
        }
        String::from_utf8(name).expect("names are ASCII")
    }

    /// After `${`: NAME, then `}` or an operator with a word. The one place
    /// references nest, so the one place nesting is counted.
    fn braced(&mut self, at: At, ctx: Tilde) -> R<Param<'a>> {
        if self.nest >= MAX_NESTING {
            return self.err_at(
                at,
                format!("${{...}} nested more than {MAX_NESTING} deep (set the inner defaults in variables first)"),
            );
        }
        // Under a low `ulimit -s` the bound above is more than the stack
        // holds: refuse while there is stack left to say so (stack.rs).
        if self.nest >= crate::stack::CHECK_FROM && !crate::stack::enough() {
            return self.low_stack(&self.pos_of(at), "${...} nested", self.nest);
        }
        self.nest += 1;
        let r = self.braced_inner(at, ctx);
        self.nest -= 1;
        r
    }

    fn braced_inner(&mut self, at: At, ctx: Tilde) -> R<Param<'a>> {
        let unsupported = |p: &Self| {
            p.err_at(
                at,
                "unsupported ${...} form (only ${NAME} and ${NAME-word} with -, :-, +, :+, =, :=, ? and :? are)",
            )
        };
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {}
            Some(b'}') => return self.err_at(at, "empty ${} (write ${NAME})"),
            _ => return unsupported(self),
        }
        let name = self.name();
        let colon = self.peek() == Some(b':');
        if colon {
            self.bump();
        }
        let quoted = ctx == Tilde::DoubleQuoted;
        let op = match self.peek() {
            Some(b'}') if !colon => {
                self.bump();
                return Ok(Param {
                    name,
                    pos: self.pos_of(at),
                    op: Op::Plain,
                    quoted,
                });
            }
            Some(c @ (b'-' | b'+' | b'=' | b'?')) => c,
            _ => return unsupported(self),
        };
        self.bump();
        let word = self.op_word(at, ctx)?;
        let op = match op {
            b'-' => Op::Default { colon, word },
            b'+' => Op::Alt { colon, word },
            b'=' => Op::Assign { colon, word },
            _ => Op::Error { colon, word },
        };
        Ok(Param {
            name,
            pos: self.pos_of(at),
            op,
            quoted,
        })
    }

    /// The word of `${NAME-word}`, up to the closing `}`, read as dash reads
    /// it: in an unquoted reference, quotes and backslashes work as outside
    /// (`${X-'a b'}` is `a b`); inside "...", a `'` is a plain byte and a
    /// backslash escapes only `$`, backquote, `"`, `\` and `}`. Operators,
    /// blanks, newlines and `{` are plain bytes in both; `"..."` nests (a
    /// `}` inside does not close the braces).
    fn op_word(&mut self, at: At, ctx: Tilde) -> R<Vec<Part<'a>>> {
        let mut parts = Vec::new();
        loop {
            self.eat_bnl();
            let here = self.at();
            match self.peek() {
                None => return self.err_at(at, "unterminated ${ (add the closing })"),
                Some(b'}') => {
                    self.bump();
                    return Ok(parts);
                }
                Some(0) => return self.err_at(here, NUL_MSG),
                Some(b'`') => {
                    return self.err_at(
                        here,
                        "command substitution with backquotes is not supported (courier-run never runs commands)",
                    );
                }
                Some(b'$') => {
                    self.bump();
                    let d = self.byte_before();
                    // Nested words keep the context: in an unquoted
                    // `${X-${Y-~}}` sh expands the tilde.
                    match self.dollar(here, ctx)? {
                        Some(p) => parts.push(Part::Param(p)),
                        None => push_lit(self.src, &mut parts, d),
                    }
                }
                Some(b'"') => {
                    self.bump();
                    self.double_quoted(here, &mut parts, true)?;
                }
                Some(b'\'') if ctx == Tilde::Unquoted => {
                    self.bump();
                    self.single_quoted(here, &mut parts)?;
                }
                Some(b'\\') if ctx == Tilde::Unquoted => {
                    self.bump();
                    self.escaped(here, &mut parts)?;
                }
                Some(b'\\') => {
                    self.bump();
                    self.dquoted_backslash(&mut parts, true);
                }
                Some(b'~') if ctx == Tilde::Unquoted => {
                    return self.err_at(
                        here,
                        "tilde expansion is not supported (write the home directory out)",
                    );
                }
                Some(b'\'' | b'~') => {
                    self.bump();
                    let b = self.byte_before();
                    push_lit(self.src, &mut parts, b);
                }
                Some(_) => {
                    let run = self.run(&OPWORD_SPECIAL);
                    push_lit(self.src, &mut parts, run);
                }
            }
        }
    }

    /// Expand a word's parts into bytes (no field splitting, no globbing:
    /// this is an assignment). `skip` bytes of leading literal (`NAME=`) are
    /// dropped.
    fn expand(&mut self, parts: &[Part<'a>], mut skip: usize) -> R<Vec<u8>> {
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

    fn expand_param(&mut self, p: &Param<'a>, out: &mut Vec<u8>) -> R<()> {
        self.expand_op(p, out)?;
        self.within_limit(out.len(), &p.pos)
    }

    fn expand_op(&mut self, p: &Param<'a>, out: &mut Vec<u8>) -> R<()> {
        let value = self.lookup(&p.name, &p.pos)?;
        // Set, for the operators: with a colon, the empty value is unset.
        let set = |colon: bool| match &value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        match &p.op {
            Op::Plain => match &value {
                Some(v) => out.extend_from_slice(v),
                None => self.scope.warnings.push(Warning {
                    pos: p.pos.clone(),
                    msg: format!(
                        "{0} is not set: ${0} expands to the empty string",
                        shown(p.name.as_bytes(), MAX_SHOWN)
                    ),
                }),
            },
            Op::Default { colon, word } => match set(*colon) {
                true => out.extend_from_slice(value.as_deref().unwrap_or_default()),
                false => out.extend(self.expand(word, 0)?),
            },
            Op::Alt { colon, word } => {
                if set(*colon) {
                    out.extend(self.expand(word, 0)?);
                }
            }
            Op::Assign { colon, word } => match set(*colon) {
                true => out.extend_from_slice(value.as_deref().unwrap_or_default()),
                false => {
                    // sh assigns (and, under `set -a`, exports) the name
                    // right now: later references on the same line see it.
                    let v = self.expand(word, 0)?;
                    out.extend_from_slice(&v);
                    self.assign(Assignment {
                        name: p.name.clone(),
                        value: v,
                        pos: p.pos.clone(),
                        value_pos: p.pos.clone(),
                    })?;
                }
            },
            Op::Error { colon, word } => match set(*colon) {
                true => out.extend_from_slice(value.as_deref().unwrap_or_default()),
                false => {
                    let msg = self.expand(word, 0)?;
                    let name = shown(p.name.as_bytes(), MAX_SHOWN);
                    let state = if value.is_some() { "empty" } else { "not set" };
                    let said = if msg.is_empty() {
                        String::new()
                    } else {
                        format!(" with \"{}\"", shown(&msg, MAX_SHOWN))
                    };
                    return self.err(
                        &p.pos,
                        format!("{name} is {state}, so sh stops here{said} (set {name} before this line, or write ${{{name}-default}})"),
                    );
                }
            },
        }
        Ok(())
    }

    fn lookup(&self, name: &str, pos: &Pos) -> R<Option<Vec<u8>>> {
        match self.scope.peek(name) {
            Ok(v) => {
                let v = v.map(<[u8]>::to_vec);
                self.scope.note_read(name, v.as_deref());
                Ok(v)
            }
            Err(Unreadable::ShellOwned) => self.err(
                pos,
                format!("${name} is the shell's own variable here, not the environment's (assign {name} earlier in the config to use it)"),
            ),
            Err(Unreadable::PathUnset) => self.err(
                pos,
                "PATH is not set: sh would substitute its built-in default path (assign PATH earlier in the config)",
            ),
        }
    }
}

/// Why a `$NAME` cannot be read the way dash would read it.
pub(super) enum Unreadable {
    /// A name dash sets itself (`$PWD`, `$IFS`, ...), not yet assigned.
    ShellOwned,
    /// `$PATH` unset: dash substitutes its built-in default.
    PathUnset,
}

impl Scope {
    /// What `$name` reads now: the latest assignment, else (unless dash
    /// owns the name) the inherited value. The one rule of references,
    /// for the parser and for [`Scope::replay`].
    pub(super) fn peek(&self, name: &str) -> Result<Option<&[u8]>, Unreadable> {
        if let Some(v) = self.assigned(name) {
            return Ok(Some(v));
        }
        if SHELL_OWNED.contains(&name) {
            return Err(Unreadable::ShellOwned);
        }
        match self.inherited(name) {
            None if name == "PATH" => Err(Unreadable::PathUnset),
            v => Ok(v),
        }
    }
}

/// The command a word would run, as a message may quote it: its leading
/// run of the bytes command names are made of, at most 24 of them, then
/// `...` if the word goes on; None when that run is empty. Never more: a
/// wrong file (`config=/etc/shadow`) must not put a line into the log.
fn command_name(word: &[u8]) -> Option<String> {
    let n = word
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || b"_./+-".contains(c)))
        .unwrap_or(word.len());
    if n == 0 {
        return None;
    }
    let shown = &word[..n.min(24)];
    let more = if shown.len() < word.len() { "..." } else { "" };
    Some(format!("{}{more}", String::from_utf8_lossy(shown)))
}

/// The length of the line at the start of `s`, without its newline.
fn line_len(s: &[u8]) -> usize {
    crate::bytes::find(b'\n', s).unwrap_or(s.len())
}

/// Append the source bytes `s` (a slice of `src`) to the literal `lit`:
/// it stays a slice of the source while `s` follows it there, and becomes a
/// copy only when it does not (after an escape, a quote or a continuation).
fn extend<'a>(src: &'a [u8], lit: &mut Cow<'a, [u8]>, s: &'a [u8]) {
    match lit {
        Cow::Borrowed(b) if b.is_empty() => *b = s,
        Cow::Borrowed(b) if b.as_ptr_range().end == s.as_ptr() => {
            let start = b.as_ptr() as usize - src.as_ptr() as usize;
            *b = &src[start..start + b.len() + s.len()];
        }
        _ => lit.to_mut().extend_from_slice(s),
    }
}

/// Append the source bytes `s` to a word's literal text.
fn push_lit<'a>(src: &'a [u8], parts: &mut Vec<Part<'a>>, s: &'a [u8]) {
    match parts.last_mut() {
        Some(Part::Lit(l)) => extend(src, l, s),
        _ => parts.push(Part::Lit(Cow::Borrowed(s))),
    }
}
