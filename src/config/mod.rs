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
//! `${NAME}`, `${NAME-w}`, `${NAME:-w}`, `${NAME+w}`, `${NAME:+w}`,
//! `${NAME=w}`, `${NAME:=w}`, `${NAME?w}`, `${NAME:?w}` (with quotes,
//! escapes and nested references in `w`), and `. FILE` when FILE holds a `/`.
//! Refused: everything else sh would execute or interpret, tilde expansion,
//! reading a name dash owns (`$PWD`, `$IFS`, ... before the config assigns
//! it) and assigning OPTIND (see README).
//!
//! Bounded: files must be regular files of at most [`MAX_FILE_SIZE`] bytes,
//! `${` nests at most [`MAX_NESTING`] deep and `. FILE` at most
//! [`MAX_SOURCE_DEPTH`] deep; nothing recurses further, so no input can
//! exhaust the stack. Messages quote at most [`MAX_SHOWN`] bytes of a file,
//! escaped (see [`shown`]).

mod input;
mod names;
mod parse;

use std::cell::{OnceCell, RefCell};
use std::fmt;
use std::sync::Arc;

pub(crate) use input::kind as file_kind;
pub use input::{MAX_FILE_SIZE, MAX_SOURCE_DEPTH, read_bounded, read_limited, shown, shown_path};

/// How deep `${...}` may nest inside `${NAME-...}` words. Real configs nest
/// two deep at most; dash has no limit (and neither did we: 20,000 levels
/// overflowed the stack). The limit keeps every recursion of the reader
/// bounded.
pub const MAX_NESTING: u32 = 64;

/// The most bytes all values read may hold together: 64 MiB. A config's
/// values are a few KB (the kernel passes at most a few MB to a program),
/// but references can double a value on every line; this bounds the memory
/// a config can make the reader take.
pub const MAX_VALUES_SIZE: u64 = 64 << 20;

/// The most bytes of a file's text a message quotes (then `...`): enough to
/// recognise a word, never a whole line of a wrong file (`config=/etc/shadow`
/// must not put a password hash into the service log).
pub use crate::shown::MAX_SHOWN;

/// A position in an input: `file:line:col`, 1-based, columns in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pos {
    /// The file's name as shown (escaped: safe to log).
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

/// One scope shared by all files read, in order, as one `sh` would have it.
#[derive(Debug, Default)]
pub struct Scope {
    /// Every assignment in the order read (later ones win).
    assigned: Vec<Assignment>,
    /// name -> index of its latest assignment in `assigned`.
    latest: names::Index,
    /// Index in `assigned` of each name's first assignment, in order.
    first: Vec<usize>,
    /// The environment references fall back to, as given (a later copy of
    /// a name wins), and its index, built at the first lookup: most scopes
    /// never look a name up there.
    inherited: Vec<(String, Vec<u8>)>,
    inherited_index: OnceCell<names::Index>,
    pub warnings: Vec<Warning>,
    /// (device, inode) of the files being read, outermost first: a `. FILE`
    /// of one of them is a loop.
    reading: Vec<(u64, u64)>,
    /// How many `. FILE` deep the reader is.
    depth: usize,
    /// The permission bits of the files `. FILE` read, ANDed together.
    sourced_mode: u32,
    /// The bytes of all values assigned so far (see [`MAX_VALUES_SIZE`]).
    value_bytes: u64,
    /// Every file read from the filesystem, in order: the files given and
    /// the files they source.
    files: Vec<std::path::PathBuf>,
    /// While [`Scope::read_traced`] reads a file: the index in `assigned`
    /// of its first assignment, and what its references found outside it.
    trace: Option<(usize, RefCell<Reads>)>,
}

/// (name, value found) of each reference a file made to a name it had not
/// assigned itself yet.
type Reads = Vec<(String, Option<Vec<u8>>)>;

/// What reading one file did, for [`Scope::replay`]: what its references
/// found outside the file, and its assignments in order.
#[derive(Debug, Clone)]
pub struct Memo {
    reads: Reads,
    assigned: Vec<Assignment>,
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

    /// The inherited value of `name`, if any.
    fn inherited(&self, name: &str) -> Option<&[u8]> {
        crate::environ::note_read(name.as_bytes());
        let env = &self.inherited;
        // A supervised service's environment is a handful of names: reading
        // them all costs less than an index. A large one gets an index, so
        // that many references stay linear.
        if env.len() <= 64 {
            return env
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_slice());
        }
        let ix = self.inherited_index.get_or_init(|| {
            let mut ix = names::Index::with_capacity(env.len());
            for (i, (n, _)) in env.iter().enumerate() {
                ix.set(n.as_bytes(), i, |j| env[j].0.as_bytes());
            }
            ix
        });
        ix.get(name.as_bytes(), |j| env[j].0.as_bytes())
            .map(|i| env[i].1.as_slice())
    }

    /// The index in `assigned` of the latest assignment of `name`.
    fn latest(&self, name: &str) -> Option<usize> {
        self.latest
            .get(name.as_bytes(), |j| self.assigned[j].name.as_bytes())
    }

    /// Read one file's bytes into the scope. `file` is the name used in
    /// positions (shown escaped). On error the scope may hold part of this
    /// file: callers that fail stop using it. A `. FILE` in it reads FILE
    /// from the filesystem, relative to the current directory as sh does.
    pub fn read(&mut self, file: &str, src: &[u8]) -> anyhow::Result<()> {
        let name: Arc<str> = Arc::from(shown(file.as_bytes(), usize::MAX));
        parse::read(self, name, src)
    }

    /// The value `$name` has now, if set.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        match self.latest(name) {
            Some(i) => Some(&self.assigned[i].value),
            None => self.inherited(name),
        }
    }

    /// The value the config assigned to `name`, if it did.
    fn assigned(&self, name: &str) -> Option<&[u8]> {
        self.latest(name).map(|i| self.assigned[i].value.as_slice())
    }

    /// Every file read from the filesystem so far, in the order read: those
    /// given to [`read_file`] and those they source with `. FILE` (paths as
    /// written, relative ones relative to the current directory). The
    /// envdir must be none of them.
    pub fn files(&self) -> &[std::path::PathBuf] {
        &self.files
    }

    /// Every assignment as read, in order (a name may appear more than once).
    pub fn assignments(&self) -> &[Assignment] {
        &self.assigned
    }

    /// The final value of each assigned name, in order of first assignment,
    /// each with the position of its latest assignment. O(assignments).
    pub fn vars(&self) -> Vec<&Assignment> {
        self.first
            .iter()
            .map(|&i| &self.assigned[self.latest(&self.assigned[i].name).expect("indexed")])
            .collect()
    }

    fn assign(&mut self, a: Assignment) {
        if a.value.last() == Some(&b'\r') {
            self.warnings.push(Warning {
                pos: a.pos.clone(),
                msg: format!(
                    "the value of {} ends in a carriage return, as sh reads it (CRLF line ends? convert the file with dos2unix)",
                    shown(a.name.as_bytes(), MAX_SHOWN)
                ),
            });
        }
        let i = self.assigned.len();
        let assigned = &self.assigned;
        if self
            .latest
            .set(a.name.as_bytes(), i, |j| assigned[j].name.as_bytes())
            .is_none()
        {
            self.first.push(i);
        }
        self.assigned.push(a);
    }
}

pub fn is_name(s: &[u8]) -> bool {
    match s.split_first() {
        Some((c, rest)) => {
            !c.is_ascii_digit()
                && NAME_BYTE[*c as usize]
                && rest.iter().all(|c| NAME_BYTE[*c as usize])
        }
        None => false,
    }
}

/// The bytes of a name: ASCII letters, digits and `_`.
static NAME_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b == b'_';
        c += 1;
    }
    t
};

/// Read `src` as file `file` with an empty inherited environment.
pub fn read_str(file: &str, src: &[u8]) -> anyhow::Result<Scope> {
    let mut s = Scope::new([]);
    s.read(file, src)?;
    Ok(s)
}

/// Read the config file at `path` into `scope`; returns its permission bits,
/// ANDed with those of every file it sources with `. FILE` (the envdir is
/// private when a config file is). Each file is read from one open
/// descriptor, so the mode and bytes belong to the same file; only a regular
/// file of at most [`MAX_FILE_SIZE`] bytes is read (see [`read_bounded`]).
pub fn read_file(scope: &mut Scope, path: &std::path::Path) -> anyhow::Result<u32> {
    read_named(scope, path, "config file")
}

/// [`read_file`], naming the file `what` in messages ("run file").
pub fn read_named(scope: &mut Scope, path: &std::path::Path, what: &str) -> anyhow::Result<u32> {
    let (src, meta) = read_bounded(path, what)?;
    scope.read_opened(path, &src, &meta)
}

impl Scope {
    /// [`Scope::read_opened`], and a [`Memo`] of the file when it sourced
    /// no other file (a `. FILE` reads the filesystem again: never replayed).
    pub fn read_traced(
        &mut self,
        path: &std::path::Path,
        src: &[u8],
        meta: &std::fs::Metadata,
    ) -> anyhow::Result<(u32, Option<Memo>)> {
        let start = self.assigned.len();
        let files = self.files.len();
        self.trace = Some((start, RefCell::default()));
        let r = self.read_opened(path, src, meta);
        let reads = self.trace.take().map(|(_, r)| r.into_inner());
        let mode = r?;
        let memo = (self.files.len() == files + 1).then(|| Memo {
            reads: reads.unwrap_or_default(),
            assigned: self.assigned[start..].to_vec(),
        });
        Ok((mode, memo))
    }

    /// Record, while tracing, what a reference to `name` found, unless the
    /// file being read assigned `name` itself before.
    fn note_read(&self, name: &str, found: Option<&[u8]>) {
        if let Some((start, reads)) = &self.trace
            && self.latest(name).is_none_or(|i| i < *start)
        {
            reads
                .borrow_mut()
                .push((name.to_string(), found.map(<[u8]>::to_vec)));
        }
    }

    /// Read the file at `path` again from its [`Memo`], without parsing,
    /// when every reference it made outside itself reads the same here
    /// (then sh would do the same thing: the file's bytes and what its
    /// references find decide everything it assigns). Returns false, and
    /// changes nothing, when one would read differently (or dash would
    /// refuse it here, or the values would pass [`MAX_VALUES_SIZE`]): the
    /// caller reads the file. Warnings are not repeated.
    pub fn replay(&mut self, path: &std::path::Path, memo: &Memo) -> bool {
        let same = memo
            .reads
            .iter()
            .all(|(n, v)| matches!(self.peek(n), Ok(found) if found == v.as_deref()));
        let more: u64 = memo.assigned.iter().map(|a| a.value.len() as u64).sum();
        if !same || self.value_bytes + more > MAX_VALUES_SIZE {
            return false;
        }
        self.value_bytes += more;
        self.files.push(path.to_path_buf());
        for a in &memo.assigned {
            self.assign(a.clone());
        }
        true
    }

    /// Read the bytes `src` of the file at `path`, already read with
    /// [`read_bounded`] (for callers that look at the bytes too, as
    /// `--check` does); returns what [`read_file`] returns.
    pub fn read_opened(
        &mut self,
        path: &std::path::Path,
        src: &[u8],
        meta: &std::fs::Metadata,
    ) -> anyhow::Result<u32> {
        use std::os::unix::fs::MetadataExt;
        self.files.push(path.to_path_buf());
        self.reading.push((meta.dev(), meta.ino()));
        self.sourced_mode = 0o7777;
        let r = parse::read(self, Arc::from(shown_path(path)), src);
        self.reading.pop();
        r?;
        Ok(meta.mode() & (self.sourced_mode | !0o7777))
    }
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
        // Words on both sides of the one-pass path for plain words.
        bare_then_quoted: "A=b\"c\"d\n" => [("A", "bcd")];
        quoted_then_bare: "A=\"x\"y B=1\n" => [("A", "xy"), ("B", "1")];
        quoted_newline: "A=\"a\nb\" B=$A\n" => [("A", "a\nb"), ("B", "a\nb")];
        no_final_newline: "A=1" => [("A", "1")];
        quoted_no_final_newline: "A=\"1 2\"" => [("A", "1 2")];
        empty_values: "A= B=\"\"\n" => [("A", ""), ("B", "")];
        equals_in_value: "A=b=c\n" => [("A", "b=c")];
        tab_separated: "A=1\tB=$A\n" => [("A", "1"), ("B", "1")];
        continued_value: "A=x\\\ny B=\"p\"\\\nq\n" => [("A", "xy"), ("B", "pq")];
        comment_backslash_is_raw: "# x\\\n#y\nA=1 # z\\\nB=2\n" => [("A", "1"), ("B", "2")];
        name_digits_underscore: "_a1=x a_2=\"y\"\n" => [("_a1", "x"), ("a_2", "y")];
    }

    /// A scope that read `src` as file `name` (a real file, for the
    /// metadata), and its memo.
    fn traced(scope: &mut Scope, dir: &std::path::Path, name: &str, src: &str) -> Option<Memo> {
        let path = dir.join(name);
        std::fs::write(&path, src).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        scope.read_traced(&path, src.as_bytes(), &meta).unwrap().1
    }

    fn env(vars: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        vars.iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn replay_is_the_read_when_references_read_the_same() {
        let dir = std::env::temp_dir().join(format!("courier-run-memo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = "X=1\nY=\"$X $A ${B-b}\"\nZ=${C:=c}\nW=$Z\n";
        let mut inner = Scope::new(env(&[("A", "a")]));
        let memo = traced(&mut inner, &dir, "f", src).expect("no . FILE");
        // X and Z are the file's own: only A, B and C were read outside it.
        let names: Vec<&str> = memo.reads.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["A", "B", "C"]);
        let path = dir.join("f");
        let read = |e: &[(&str, &str)]| {
            let mut s = Scope::new(env(e));
            read_file(&mut s, &path).unwrap();
            s
        };
        let got = |s: &Scope| -> Vec<(String, Vec<u8>)> {
            s.vars()
                .iter()
                .map(|a| (a.name.clone(), a.value.clone()))
                .collect()
        };
        // Same environment: replayed, and the same as reading it.
        let mut outer = Scope::new(env(&[("A", "a"), ("UNREAD", "x")]));
        assert!(outer.replay(&path, &memo));
        assert_eq!(got(&outer), got(&read(&[("A", "a")])));
        assert_eq!(outer.files(), std::slice::from_ref(&path));
        // A reference that reads differently: not replayed, nothing changed.
        for e in [
            &[("A", "other")][..],
            &[],
            &[("A", "a"), ("B", "set")],
            &[("A", "a"), ("C", "")],
        ] {
            let mut s = Scope::new(env(e));
            assert!(!s.replay(&path, &memo), "{e:?}");
            assert!(s.vars().is_empty() && s.files().is_empty());
        }
        // What dash would refuse is not replayed: $IFS assigned before the
        // file when traced, not in the scope replayed into.
        let mut a = Scope::new(vec![]);
        a.read("pre", b"IFS=:\n").unwrap();
        let memo = traced(&mut a, &dir, "g", "V=$IFS\n").unwrap();
        assert!(!Scope::new(vec![]).replay(&dir.join("g"), &memo));
        // A file that sources another has no memo.
        std::fs::write(dir.join("h"), "S=1\n").unwrap();
        let src = format!(". {}\nT=2\n", dir.join("h").display());
        assert!(traced(&mut Scope::new(vec![]), &dir, "i", &src).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
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
        let s = read_str("t", b"# c\n\n  Q=\"x y\"\tR=z\n#\nS=\"a\nb\" T=1\n").unwrap();
        let at = |n: &str| {
            let a = s.assignments().iter().find(|a| a.name == n).unwrap();
            (a.pos.to_string(), a.value_pos.to_string())
        };
        assert_eq!(at("Q"), ("t:3:3".into(), "t:3:5".into()));
        assert_eq!(at("R"), ("t:3:11".into(), "t:3:13".into()));
        assert_eq!(at("S"), ("t:5:1".into(), "t:5:3".into()));
        assert_eq!(at("T"), ("t:6:4".into(), "t:6:6".into()));
    }

    #[test]
    fn refusals_after_plain_words_keep_positions() {
        assert!(err("A=1 OPTIND=2\n").contains("t:1:5: OPTIND is the shell's getopts index"));
        assert!(err("A=\"1\"; B=2\n").contains("t:1:6: shell operator ';'"));
        assert!(err("A=1 B=~\n").contains("t:1:7: tilde"));
        let s = read_str("t", b"A=1\r\n").unwrap();
        assert_eq!(s.warnings.len(), 1);
        assert!(
            s.warnings[0]
                .to_string()
                .starts_with("t:1:1: the value of A ends in a carriage return")
        );
    }
}
