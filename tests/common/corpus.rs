//! The config reader's corpus (tricky inputs dash accepts, one line each),
//! a small seeded random generator, and the generator of valid config
//! files built on it. Used by tests/config_dash.rs and tests/conf2env.rs.

use super::Env;

// ---------------------------------------------------------------------------
// The corpus: tricky inputs dash accepts, one line each.

pub struct Case {
    pub name: &'static str,
    pub files: Vec<Vec<u8>>,
    pub env: Env,
}

fn c(name: &'static str, f1: &[u8]) -> Case {
    Case {
        name,
        files: vec![f1.to_vec()],
        env: vec![],
    }
}

fn c2(name: &'static str, f1: &[u8], f2: &[u8]) -> Case {
    Case {
        name,
        files: vec![f1.to_vec(), f2.to_vec()],
        env: vec![],
    }
}

fn ce(name: &'static str, env: &[(&str, &[u8])], f1: &[u8]) -> Case {
    Case {
        name,
        files: vec![f1.to_vec()],
        env: env
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
            .collect(),
    }
}

/// Inputs that dash accepts and we must read exactly as dash does.
#[rustfmt::skip]
pub fn corpus() -> Vec<Case> {
    vec![
        c("plain", b"A=1\n"),
        c("two_on_a_line", b"A=1 B=2\n"),
        c("left_to_right", b"A=1 B=$A C=${A}x\n"),
        c("later_wins", b"A=1\nA=2\nA=$A$A\n"),
        c("empty_values", b"A=\nB=''\nC=\"\"\nD=${X-}\n"),
        c("equals_in_value", b"A=b=c==d E==\n"),
        c("dquote_blanks", b"A=\"x  y\tz\"\n"),
        c("squote_specials", b"A='$X `ls` \\ \" ; & | < > ( ) # ~ * $(x) ${y}'\n"),
        c("adjacent_quotes", b"A='it'\"'\"'s'\nB=a\"b\"'c'd\n"),
        c("dquote_escapes", b"A=\"\\$X \\` \\\" \\\\ \\n \\a \\' \\}\"\n"),
        c("unquoted_escapes", b"A=\\a\\$\\ \\;\\&\\|\\<\\>\\(\\)\\'\\\"\\#\\~\\\\\\`\\{\\}\n"),
        c("escaped_blank", b"A=a\\ b\\\tc\n"),
        c("escaped_high_byte", b"A=\\\xc3\\\xa9\\\x81\n"),
        c("continuation_in_value", b"A=ab\\\ncd\n"),
        c("continuation_in_name", b"AB\\\nC=1\n"),
        c("continuation_before_equals", b"A\\\n=1\n"),
        c("continuation_after_equals", b"A=\\\n1\n"),
        c("continuation_in_ref_name", b"NAME=v\nA=$NA\\\nME\n"),
        c("continuation_in_braced_ref", b"NAME=v\nA=${NA\\\nME} B=${NAME\\\n:\\\n-x}\n"),
        c("continuation_after_dollar", b"NAME=v\nA=$\\\n{NAME} B=$\\\nNAME\n"),
        c("continuation_in_dquote", b"A=\"a\\\nb\"\n"),
        c("continuation_in_squote_is_literal", b"A='a\\\nb'\n"),
        c("dquote_escaped_backslash_then_newline", b"A=\"a\\\\\nb\"\n"),
        c("unquoted_escaped_backslash_then_newline", b"A=a\\\\\nB=2\n"),
        c("continuation_between_words", b"A=1 \\\nB=2\n"),
        c("continuation_in_export", b"exp\\\nort A=1\n"),
        c("continuation_then_comment", b"A=1 \\\n# c\nB=2\n"),
        c("continuation_at_eof", b"A=1\\\n"),
        c("double_continuation", b"A=a\\\n\\\nb\n"),
        c("continuation_after_squote", b"A='x'\\\ny\n"),
        c("continuation_in_op_word", b"A=${X-a\\\nb}\n"),
        c("multiline_squote", b"A='line1\nline2\n'\n"),
        c("multiline_dquote_with_ref", b"X=x\nA=\"1\n$X\n3\"\n"),
        c("default_unset", b"A=${X-w} B=${X:-w}\n"),
        c("default_empty", b"X=\nA=${X-w} B=${X:-w}\n"),
        c("default_set", b"X=v\nA=${X-w} B=${X:-w}\n"),
        c("alt_three_states", b"A=${X+w} B=${X:+w}\nX=\nC=${X+w} D=${X:+w}\nX=v\nE=${X+w} F=${X:+w}\n"),
        c("nested_default", b"Y=y\nA=${X-${Y}z} B=${X:-${Z:-${Y}}}\n"),
        c("nested_alt", b"X=1 Y=2\nA=${X+a${Y+b$Y}c}\n"),
        c("op_word_chars", b"A=${X-/a.b,c:d@e%f+g-h=i!j*k?l^m_n[o]p}\n"),
        c("op_word_blanks", b"A=${X-a b\tc}\n"),
        c("op_word_dollar_literal", b"A=${X-$/x}\n"),
        c("op_in_dquote", b"A=\"${X-a b}\" B=\"${X:+y}\" C=\"${X:-~}\"\n"),
        c("braced_then_name_chars", b"AB=1 A=x\nC=${A}B D=$AB E=$A-B\n"),
        c("ref_then_digit", b"A1=x A=y\nB=$A1 C=${A}1\n"),
        c("ref_then_high_byte", b"A=1\nB=$A\xc3\xa9\n"),
        c("dollar_literal", b"A=$ B=\"$\" C=a$ D=$/ E=$. F=\"$'\" G=$}\n"),
        c("hash_inside_word", b"A=a#b B=#c C=\"#\"\n"),
        c("comment_after", b"A=1 # B=2\nC=3\t#x\n"),
        c("comment_lines", b"# comment\n  # indented\n\t# tab\nA=1\n"),
        c("shebang", b"#!/bin/sh\nA=1\n"),
        c("backslash_in_comment", b"# comment \\\nA=1\n"),
        c("blank_lines", b"\n\n  \t\nA=1\n\n"),
        c("no_final_newline", b"A=1"),
        c("leading_trailing_blanks", b"   A=1\t B=2   \n"),
        c("tab_separated", b"A=1\tB=2\n"),
        c("export_forms", b"export A=1\nexport A\nexport B=2 C=3\nexport D\n"),
        c("export_then_assign", b"export D\nD=4\n"),
        c("export_expands_before_assigning", b"A=0\nexport A=1 B=$A\n"),
        c("export_no_split_no_glob", b"X='a  b'\nexport A=$X B=* C=$X\n"),
        c("export_comment", b"export A=1 # c\n"),
        c("export_quoted_values", b"export A=\"x y\" B='z'\n"),
        c("high_bytes", b"A=\xc3\xa9\xff\x80 B='\xfe\xc3' C=\"\xe2\x82\xac\"\n"),
        c("dash_control_bytes_unquoted", b"A=\x81\x82\x83\x84\x85\x86\x87\x88\x89\n"),
        c("dash_control_bytes_quoted", b"A='\x81\x82\x83\x84\x85\x86\x87\x88' B=\"\x81\x82\x83\x84\x85\x86\x87\x88\"\n"),
        c("high_bytes_in_op_word", b"A=${X-\x81\xc3\xa9}\n"),
        c("crlf", b"A=1\r\nB=\"x\"\r\n"),
        c("crlf_comment", b"# c\r\nA=1\r\n"),
        c("carriage_return_inside", b"A='a\rb' B=a\\\rb\n"),
        c("glob_chars", b"A=* B=? C=[a] D=/* E=[!x]\n"),
        c("braces", b"A={} B={a,b} C=} D={\n"),
        c("tilde_not_expanded", b"A=a~b B=\"~\" C='~' D=\\~ E=a/~ F=\"x:\"~\n"),
        c("tilde_after_escaped_colon", b"A=x\\:~\n"),
        c("operators_quoted", b"A=';' B=\";&|<>()\" C=\\;\\&\n"),
        c("keywords_as_names", b"if=1 then=2 done=3 export_=4\n"),
        c("underscore_names", b"_=1 _A_=2 a1=3\n"),
        c("value_newline_at_end", b"A='x\n'\n"),
        c("value_leading_blank", b"A=' x'\n"),
        c("value_trailing_blank", b"A='x ' B=\"y\t\"\n"),
        c("dquote_dollar_end", b"A=\"a$\" B=\"$\"\n"),
        c("only_comment", b"# nothing\n"),
        c("empty_file", b""),
        c("many_on_a_line", b"A=1 B=2 C=3 D=4 E=5 F=$A$B$C$D$E\n"),
        c("assign_ifs_then_read", b"IFS=x A=$IFS\n"),
        c("assign_path_then_read", b"PATH=/x A=$PATH\n"),
        c("assign_ps_vars", b"PS1=a PS2=b PS4=c A=$PS1$PS2$PS4\n"),
        c("unset_refs_empty", b"A=$NOPE B=x${NOPE}y C=\"$NOPE\"\n"),
        c("long_line_of_refs", b"A=a\nB=$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A\nC=$B$B$B$B$B$B$B$B\n"),
        c2("two_files_override", b"A=1 B=2\n", b"A=3 C=$B$A\n"),
        c2("two_files_refs", b"A=1\n", b"B=$A\nA=${A}2\n"),
        c2("two_files_quote_per_file", b"A='1'\n", b"B=\"$A\"\n"),
        c2("two_files_continuation_at_end", b"A=1\\\n", b"B=2\n"),
        ce("inherited_ref", &[("X", b"inh")], b"A=$X B=${X:-d} C=${X+a}\n"),
        ce("inherited_override", &[("X", b"inh")], b"A=$X X=new B=$X\n"),
        ce("inherited_untouched", &[("Y", b"keep")], b"A=1\n"),
        ce("inherited_empty", &[("X", b"")], b"A=${X-d} B=${X:-d} C=${X+a} D=${X:+a}\n"),
        ce("inherited_special_bytes", &[("X", b"a b\n\xff$Y")], b"A=$X B=\"$X\"\n"),
        ce("inherited_path", &[("PATH", b"/nonexistent")], b"A=$PATH:/x\n"),
    ]
}

// ---------------------------------------------------------------------------
// A small seeded PRNG (xorshift64*): deterministic, no dependency.

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `pct`%.
    pub fn pct(&mut self, pct: usize) -> bool {
        self.below(100) < pct
    }

    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// How many times the usual number of random cases to run:
/// $COURIER_TEST_SCALE when set (to explore), else 1.
pub fn scale() -> usize {
    std::env::var("COURIER_TEST_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// The seed: $COURIER_TEST_SEED when set (to explore), else `default`.
pub fn seed(default: u64) -> u64 {
    std::env::var("COURIER_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------
// The generator of valid files.

/// Names dash gives a value or meaning of its own, and PWD (dash sets it):
/// the generator never uses them.
const SPECIAL_NAMES: &[&str] = &[
    "IFS", "LINENO", "OPTIND", "PPID", "PS1", "PS2", "PS4", "PWD", "PATH", "OPTARG",
];

const NAME_FIRST: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";
const NAME_REST: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_0123456789";
/// Unquoted value bytes that stand for themselves in an assignment
/// (no `~`: it expands at the start and after `:`; the corpus covers it).
const UNQUOTED: &[u8] = b"abcXYZ019_/.,:@%+-=!*?[]^{}#";
/// Bytes allowed in a `${NAME-word}` word by the reader.
const OP_WORD: &[u8] = b"abXY09 \t/.,:@%+-=!*?^_[]";
/// Bytes of a `$` that stays literal: followed by one of these.
const AFTER_LITERAL_DOLLAR: &[u8] = b"/.,:%+=";

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// A generated piece of a file: a run of bytes that must stay together (a
/// backslash and what it escapes), and whether a backslash-newline may be
/// put before it.
struct Atom {
    bytes: Vec<u8>,
    bnl_before: bool,
}

pub struct Gen<'r> {
    rng: &'r mut Rng,
    /// Names assigned so far (to refer to and to override).
    assigned: Vec<String>,
    inherited: Vec<String>,
    atoms: Vec<Atom>,
    /// (index of the `$` atom, index of the last name atom) of unbraced
    /// references, to brace them when a name byte follows.
    unbraced: Vec<(usize, usize)>,
}

impl<'r> Gen<'r> {
    pub fn new(rng: &'r mut Rng) -> Gen<'r> {
        Gen {
            rng,
            assigned: Vec::new(),
            inherited: Vec::new(),
            atoms: Vec::new(),
            unbraced: Vec::new(),
        }
    }

    /// One case: 1 or 2 files and 0 to 2 inherited variables.
    pub fn case(&mut self) -> (Vec<Vec<u8>>, Env) {
        let mut env = Vec::new();
        for _ in 0..self.rng.below(3) {
            let name = self.fresh_name();
            if env
                .iter()
                .any(|(k, _): &(Vec<u8>, Vec<u8>)| k == name.as_bytes())
            {
                continue;
            }
            let mut value = Vec::new();
            for _ in 0..self.rng.below(6) {
                value.push(self.any_byte_but(b"\0"));
            }
            self.inherited.push(name.clone());
            env.push((name.into_bytes(), value));
        }
        let nfiles = 1 + self.rng.below(2);
        let files = (0..nfiles).map(|_| self.file()).collect();
        (files, env)
    }

    fn file(&mut self) -> Vec<u8> {
        self.atoms.clear();
        self.unbraced.clear();
        for _ in 0..1 + self.rng.below(8) {
            match self.rng.below(10) {
                0 => self.lit(b"\n", true),
                1 => {
                    self.blanks(0);
                    self.comment();
                    self.lit(b"\n", false);
                }
                2 => self.export_line(),
                _ => self.assignment_line(),
            }
        }
        if self.rng.pct(10) {
            // No final newline.
            if let Some(a) = self.atoms.last()
                && a.bytes == b"\n"
            {
                self.atoms.pop();
            }
        }
        self.render()
    }

    /// Brace unbraced references that a name byte follows, then join the
    /// atoms, putting a backslash-newline before some of them.
    fn render(&mut self) -> Vec<u8> {
        for &(dollar, last) in self.unbraced.iter().rev() {
            let next_is_name = self
                .atoms
                .get(last + 1)
                .and_then(|a| a.bytes.first())
                .is_some_and(|&c| is_name_byte(c));
            if next_is_name {
                self.atoms.insert(
                    last + 1,
                    Atom {
                        bytes: b"}".to_vec(),
                        bnl_before: true,
                    },
                );
                self.atoms[dollar].bytes.push(b'{');
            }
        }
        let mut out = Vec::new();
        let bnl_pct = if self.rng.pct(30) { 15 } else { 2 };
        for a in &self.atoms {
            if a.bnl_before && self.rng.pct(bnl_pct) {
                out.extend_from_slice(b"\\\n");
            }
            out.extend_from_slice(&a.bytes);
        }
        out
    }

    fn lit(&mut self, b: &[u8], bnl_before: bool) {
        self.atoms.push(Atom {
            bytes: b.to_vec(),
            bnl_before,
        });
    }

    fn blanks(&mut self, min: usize) {
        for _ in 0..min + self.rng.below(3) {
            let b = if self.rng.pct(70) { b" " } else { b"\t" };
            self.lit(b, true);
        }
    }

    fn comment(&mut self) {
        let mut c = b"#".to_vec();
        for _ in 0..self.rng.below(10) {
            c.push(self.any_byte_but(b"\0\n"));
        }
        // A comment is one atom: dash reads it raw, a backslash-newline
        // inside would end it.
        self.lit(&c, true);
    }

    fn any_byte_but(&mut self, not: &[u8]) -> u8 {
        loop {
            let c = if self.rng.pct(60) {
                0x20 + self.rng.below(0x5f) as u8
            } else {
                self.rng.below(256) as u8
            };
            if !not.contains(&c) {
                return c;
            }
        }
    }

    fn fresh_name(&mut self) -> String {
        loop {
            let max = if self.rng.pct(70) { 2 } else { 8 };
            let len = 1 + self.rng.below(max);
            let mut s = String::new();
            s.push(*self.rng.pick(NAME_FIRST) as char);
            for _ in 1..len {
                s.push(*self.rng.pick(NAME_REST) as char);
            }
            if !SPECIAL_NAMES.contains(&s.as_str()) && s != "export" {
                return s;
            }
        }
    }

    /// A name to assign: often one assigned before (an override).
    fn target_name(&mut self) -> String {
        if !self.assigned.is_empty() && self.rng.pct(30) {
            return self.rng.pick(&self.assigned).clone();
        }
        self.fresh_name()
    }

    /// A name to refer to: assigned, inherited, or (rarely) unset.
    fn ref_name(&mut self) -> String {
        let r = self.rng.below(10);
        if r < 6 && !self.assigned.is_empty() {
            self.rng.pick(&self.assigned).clone()
        } else if r < 8 && !self.inherited.is_empty() {
            self.rng.pick(&self.inherited).clone()
        } else {
            self.fresh_name()
        }
    }

    fn name_atoms(&mut self, name: &str) {
        for c in name.bytes() {
            self.lit(&[c], true);
        }
    }

    fn assignment_line(&mut self) {
        self.blanks(0);
        let n = 1 + self.rng.below(3);
        // Assignments on one line are made left to right: register each
        // name after its value is generated.
        for i in 0..n {
            if i > 0 {
                self.blanks(1);
            }
            let name = self.target_name();
            self.name_atoms(&name);
            self.lit(b"=", true);
            self.value();
            self.assigned.push(name);
        }
        self.line_end(true);
    }

    fn export_line(&mut self) {
        self.blanks(0);
        self.name_atoms("export");
        let n = 1 + self.rng.below(3);
        // export expands all its arguments before assigning any.
        let mut names = Vec::new();
        let mut last_is_assignment = false;
        for _ in 0..n {
            self.blanks(1);
            let name = self.target_name();
            self.name_atoms(&name);
            last_is_assignment = self.rng.pct(80);
            if last_is_assignment {
                self.lit(b"=", true);
                self.value();
                names.push(name);
            }
        }
        self.assigned.extend(names);
        self.line_end(last_is_assignment);
    }

    /// End of a line: maybe a carriage return (only right after a value, so
    /// it joins the value as in sh), maybe trailing blanks and a comment.
    fn line_end(&mut self, after_value: bool) {
        if after_value && self.rng.pct(5) {
            self.lit(b"\r", true);
        } else if self.rng.pct(30) {
            self.blanks(1);
            if self.rng.pct(50) {
                self.comment();
            }
        }
        self.lit(b"\n", true);
    }

    fn value(&mut self) {
        for _ in 0..self.rng.below(5) {
            match self.rng.below(7) {
                0 => self.unquoted(),
                1 => self.escape(),
                2 => self.single_quoted(),
                3 => self.double_quoted(),
                4 | 5 => self.reference(0),
                _ => {
                    // A literal `$`.
                    let c = *self.rng.pick(AFTER_LITERAL_DOLLAR);
                    self.lit(&[b'$', c], true);
                }
            }
        }
    }

    fn unquoted(&mut self) {
        for _ in 0..1 + self.rng.below(4) {
            let c = if self.rng.pct(15) {
                0x80 + self.rng.below(0x80) as u8
            } else {
                *self.rng.pick(UNQUOTED)
            };
            self.lit(&[c], true);
        }
    }

    fn escape(&mut self) {
        let c = self.any_byte_but(b"\0\n");
        self.lit(&[b'\\', c], true);
    }

    fn single_quoted(&mut self) {
        self.lit(b"'", true);
        for _ in 0..self.rng.below(6) {
            let c = self.any_byte_but(b"\0'");
            self.lit(&[c], true);
        }
        self.lit(b"'", true);
    }

    fn double_quoted(&mut self) {
        self.lit(b"\"", true);
        for _ in 0..self.rng.below(6) {
            match self.rng.below(6) {
                0 => {
                    let c = *self.rng.pick(b"$`\"\\");
                    self.lit(&[b'\\', c], true);
                }
                1 => {
                    // A backslash that stays: before a byte it does not escape.
                    let c = self.any_byte_but(b"\0\n$`\"\\");
                    self.lit(&[b'\\', c], true);
                }
                2 => self.reference(0),
                _ => {
                    let c = self.any_byte_but(b"\0\"\\$`");
                    self.lit(&[c], true);
                }
            }
        }
        self.lit(b"\"", true);
    }

    /// `$NAME`, `${NAME}` or `${NAME op word}`.
    fn reference(&mut self, depth: usize) {
        let name = self.ref_name();
        let form = self.rng.below(if depth > 1 { 2 } else { 4 });
        let dollar = self.atoms.len();
        self.lit(b"$", true);
        if form == 0 {
            self.name_atoms(&name);
            self.unbraced.push((dollar, self.atoms.len() - 1));
            return;
        }
        self.lit(b"{", true);
        self.name_atoms(&name);
        if form >= 2 {
            let ops: [&[u8]; 4] = [b"-", b":-", b"+", b":+"];
            let op = *self.rng.pick(&ops);
            for &c in op {
                self.lit(&[c], true);
            }
            for _ in 0..self.rng.below(4) {
                if self.rng.pct(25) {
                    self.reference(depth + 1);
                } else if self.rng.pct(10) {
                    let c = *self.rng.pick(AFTER_LITERAL_DOLLAR);
                    self.lit(&[b'$', c], true);
                } else {
                    let c = if self.rng.pct(10) {
                        0x80 + self.rng.below(0x80) as u8
                    } else {
                        *self.rng.pick(OP_WORD)
                    };
                    self.lit(&[c], true);
                }
            }
        }
        self.lit(b"}", true);
    }
}
