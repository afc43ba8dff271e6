//! Input as a message may show it: the one escaping of the crate.
//!
//! Every message (the fatal line, a `--check` line, a warning, `init`'s
//! lines, the text dry run) is one line of text in a service log that an
//! admin reads on a terminal. What it quotes comes from files, settings
//! and the command line, which may hold any byte: a newline would forge a
//! second `courier-run:` line, `\r` or `ESC [2K` would rewrite what the
//! terminal shows, and a wrong file (`config=/etc/shadow`) must not put a
//! line of itself into the log. So:
//!
//! - [`shown`] quotes a value: at most [`MAX_SHOWN`] bytes, then `...`,
//!   with a backslash doubled and every control byte escaped, so that the
//!   quote is unambiguous;
//! - [`shown_path`] quotes a path: the same escaping, cut at
//!   [`MAX_SHOWN_PATH`] bytes (a path is what the admin needs to find the
//!   file, so it is cut later than a value);
//! - [`line`] makes a whole message one line: control characters escaped,
//!   backslashes kept (the values in it were already quoted by [`shown`],
//!   and must not be escaped twice). Every place that prints a message
//!   passes it through `line` last, so a value quoted without [`shown`]
//!   somewhere can still make the message long, never two lines or a
//!   terminal escape.
//!
//! Escaped: C0 controls (`\n`, `\t`, `\r`, others `\xNN`), DEL and the C1
//! controls (U+0080..U+009F, which some terminals take as ESC sequences:
//! U+009B is CSI), and every byte of invalid UTF-8 (`\xNN`).

use std::fmt::Write;
use std::path::Path;

/// The most bytes of a value a message quotes (README: "quoted text in a
/// message"): enough for a port, an account or a keyword, too little for
/// a password hash or a line of a wrong file.
pub const MAX_SHOWN: usize = 32;

/// The most bytes of a path a message quotes.
pub const MAX_SHOWN_PATH: usize = 256;

/// `bytes` as a message may quote them: at most `max` bytes of the input,
/// then `...`; printable ASCII and valid non-control UTF-8 as they are, a
/// backslash doubled, and every other byte escaped (`\n`, `\t`, `\r`,
/// `\x1b`), so that a message is one line of text whatever the input holds.
pub fn shown(bytes: &[u8], max: usize) -> String {
    let cut = bytes.len() > max;
    let mut end = bytes.len().min(max);
    // Do not cut a UTF-8 sequence in two (it would show as escapes).
    while cut && end > 0 && end < bytes.len() && (bytes[end] & 0xc0) == 0x80 && max - end < 4 {
        end -= 1;
    }
    let mut out = String::with_capacity(end + 8);
    escape(&bytes[..end], true, &mut out);
    if cut {
        out.push_str("...");
    }
    out
}

/// A value read from input, quoted: [`shown`] at [`MAX_SHOWN`].
pub fn value(bytes: impl AsRef<[u8]>) -> String {
    shown(bytes.as_ref(), MAX_SHOWN)
}

/// A path (or a list of paths, a program name) as messages and positions
/// show it: escaped, cut at [`MAX_SHOWN_PATH`].
pub fn path(p: impl AsRef<std::ffi::OsStr>) -> String {
    use std::os::unix::ffi::OsStrExt;
    shown(p.as_ref().as_bytes(), MAX_SHOWN_PATH)
}

/// [`path`] of a `Path`, under the name the config reader uses.
pub fn shown_path(p: &Path) -> String {
    path(p)
}

/// A whole message made one line: control characters escaped, nothing
/// cut, backslashes as they are (see the module's notes).
pub fn line(s: &str) -> String {
    if !s.chars().any(is_escaped) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    escape(s.as_bytes(), false, &mut out);
    out
}

/// Is `c` written as an escape?
fn is_escaped(c: char) -> bool {
    c.is_control()
}

/// Append `bytes` to `out`, escaped; `backslash`: double `\` too.
fn escape(bytes: &[u8], backslash: bool, out: &mut String) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' if backslash => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if is_escaped(c) => {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        let _ = write!(out, "\\x{b:02x}");
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_escapes_and_cuts() {
        assert_eq!(shown(b"a\x1b[2Jb\n\\", 100), "a\\x1b[2Jb\\n\\\\");
        assert_eq!(shown(b"abcdef", 3), "abc...");
        assert_eq!(shown("é\u{85}".as_bytes(), 100), "é\\xc2\\x85");
        assert_eq!(shown(b"\xff\x7f\x00\r", 10), "\\xff\\x7f\\x00\\r");
        // A cut inside a UTF-8 sequence moves back to its start.
        assert_eq!(shown("aé".as_bytes(), 2), "a...");
        assert_eq!(value([b'x'; 600]), format!("{}...", "x".repeat(32)));
    }

    #[test]
    fn line_escapes_and_keeps_backslashes() {
        assert_eq!(line("plain text"), "plain text");
        assert_eq!(
            line("a\nb\r\x1b[2K\x7f\u{9b}c"),
            "a\\nb\\r\\x1b[2K\\x7f\\xc2\\x9bc"
        );
        // A value already quoted by `shown` is not escaped twice.
        let q = value(b"a\nb\\");
        assert_eq!(line(&format!("x {q}")), format!("x {q}"));
    }

    #[test]
    fn paths_are_cut_later_than_values() {
        let long = Path::new("/").join("d".repeat(600));
        let s = shown_path(&long);
        assert_eq!(s.len(), MAX_SHOWN_PATH + 3);
        assert!(s.ends_with("..."));
        assert_eq!(shown_path(Path::new("/a\nb")), "/a\\nb");
    }
}
