//! Courier's IP access list (`IMAPACCESSFILE`, what `makeimapaccess` feeds
//! to `makedat -cidr`), converted into the rules of the front end that
//! replaces couriertcpd: a tcprules cdb for tcpserver, an ipsvd-cdb database
//! for tcpsvd.
//!
//! Source syntax (couriertcpd(1) "ACCESS FILE", makedat(1)): a file, or a
//! directory whose regular files are read (makedat skips names ending in
//! `~` and `.dpkg-*`; we read them in name order). Blank lines and lines
//! starting with `#` are ignored. Each other line is an address, a blank
//! (Courier wants one tab; any run of blanks is accepted), and an action:
//!
//! - address: `*` (every client), `192.168.0.1`, a prefix of whole octets
//!   (`192.168` or `192.168.`), a CIDR block `10.0.0.0/23` or a range
//!   `10.0.0.0-10.0.1.255` (makedat -cidr expands those into octet
//!   prefixes, as we do), Courier's IPv6 form `:2001:0db8` (whole 16-bit
//!   words) or `2001:db8::/32` (a block on a 16-bit boundary);
//! - action: `deny`, `allow`, or `allow,NAME=VALUE,NAME,...` (`NAME` alone
//!   sets it to the empty string).
//!
//! Both couriertcpd and the front ends use the most specific match, so a
//! list of octet prefixes means the same to all three. `MAXCPERIP=n` (a
//! per-IP limit couriertcpd reads from the list) becomes ipsvd's `Cn`
//! instruction for tcpsvd; tcpserver has no per-IP limit.
//!
//! NOT supported (an error with its position): anything else in the
//! address (host names, `1.2.3.4.25` local-port keys of -accesslocal),
//! blocks not on an octet (IPv4, widened to up to 128 prefixes) or 16-bit
//! word (IPv6) boundary, IPv6 prefixes containing a zero word for
//! tcpserver (its IPv6 rules match prefixes of the compressed text form,
//! where a zero word disappears), and the same address on two lines.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cdb::Record;
use crate::config::{MAX_FILE_SIZE, shown, shown_path};
use crate::error::bad_input;
use crate::frontend::RulesFormat;
use crate::safefile::{Dir, FileKind, remove_stale_temps, write_atomic_at};

/// Where a line of an access list came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPos {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl ListPos {
    pub fn at(&self, msg: &str) -> String {
        format!(
            "{}:{}:{}: {msg}",
            shown_path(&self.file),
            self.line,
            self.col
        )
    }
}

/// Which clients a line is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Net {
    /// `*`: every client not matched otherwise.
    Default,
    /// 1 to 4 leading octets.
    V4(Vec<u8>),
    /// 1 to 8 leading 16-bit words.
    V6(Vec<u16>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Deny,
    /// Variables to set, in order.
    Allow(Vec<(String, String)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub net: Net,
    pub action: Action,
    pub pos: ListPos,
}

// ---------------------------------------------------------------------------
// reading

/// The access list at `path`: a file, or a directory of files.
///
/// Read as config files are ([`crate::config::read_bounded`]): regular
/// files only (a FIFO is never opened blocking, a device never read), at
/// most [`MAX_FILE_SIZE`] bytes in all. A list that is missing or
/// unreadable is a system error (111), one that is a FIFO, a device or
/// too large is bad input (100): either way the launch stops, since a
/// configured access list that cannot be read must never mean "no rules".
pub fn read(path: &Path) -> anyhow::Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut total = 0u64;
    for file in source_files(path)? {
        let (text, _) = crate::config::read_bounded(&file, "access list")?;
        total += text.len() as u64;
        if total > MAX_FILE_SIZE {
            return Err(bad_input(format!(
                "access list {} is larger than {} MiB in all: is this the right directory?",
                shown_path(path),
                MAX_FILE_SIZE >> 20
            )));
        }
        out.extend(parse(&text, &file).map_err(bad_input)?);
    }
    no_duplicates(&out).map_err(bad_input)?;
    Ok(out)
}

fn refuse_special(path: &Path, m: &std::fs::Metadata) -> anyhow::Error {
    bad_input(format!(
        "access list {} is {}, not a regular file or a directory of them (a FIFO would block the start, a device would never end)",
        shown_path(path),
        crate::config::file_kind(m)
    ))
}

/// The files of the access list, as makedat reads them: the file itself,
/// or the regular files of a directory in name order (subdirectories are
/// skipped as makedat skips them; a FIFO, device or socket is refused).
pub fn source_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("unable to open access list {}", shown_path(path)))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !meta.is_dir() {
        return Err(refuse_special(path, &meta));
    }
    let mut files = Vec::new();
    let unreadable = || format!("unable to read access list {}", shown_path(path));
    for e in std::fs::read_dir(path).with_context(unreadable)? {
        let e = e.with_context(unreadable)?;
        let name = e.file_name().to_string_lossy().to_string();
        if name.ends_with('~') || name.contains(".dpkg-") {
            continue;
        }
        let m = std::fs::metadata(e.path())
            .with_context(|| format!("unable to open access list {}", shown_path(&e.path())))?;
        if m.is_file() {
            files.push(e.path());
        } else if !m.is_dir() {
            return Err(refuse_special(&e.path(), &m));
        }
    }
    files.sort();
    Ok(files)
}

/// How long a quoted piece of a line may be in a message.
const QUOTE_MAX: usize = 32;

/// A value from the list as a message quotes it: escaped, cut.
fn q(s: &str) -> String {
    shown(s.as_bytes(), QUOTE_MAX)
}

/// An address field as a message quotes it. Cut at [`QUOTE_MAX`], and
/// also where a line stops looking like an address or a host name: a file
/// of another format given by mistake (`/etc/shadow`'s
/// `root:$6$salt$hash:...`) shows `root...`, never its secret part.
fn qkey(key: &str) -> String {
    let mut end = 0;
    let mut named = false; // a letter past f: a name, not hex
    for (i, c) in key.char_indices() {
        let ok = match c {
            '0'..='9' | 'a'..='f' | 'A'..='F' | '.' | '/' | '*' | '-' => true,
            ':' => !named,
            c if c.is_ascii_alphabetic() => {
                named = true;
                true
            }
            '_' => true,
            _ => false,
        };
        if !ok {
            break;
        }
        end = i + c.len_utf8();
    }
    let mut out = shown(&key.as_bytes()[..end], QUOTE_MAX);
    if end < key.len() && !out.ends_with("...") {
        out.push_str("...");
    }
    out
}

/// Parse one file's bytes; `file` only names it in errors.
pub fn parse(text: &[u8], file: &Path) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for (n, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = String::from_utf8_lossy(raw);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        let start = line.len() - line.trim_start().len();
        let body = line.trim();
        let pos = |col: usize| ListPos {
            file: file.to_path_buf(),
            line: n + 1,
            col: col + 1,
        };
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let key_end = body.find([' ', '\t']).unwrap_or(body.len());
        let key = &body[..key_end];
        let rest = &body[key_end..];
        let value_at = start + key_end + (rest.len() - rest.trim_start().len());
        let value = rest.trim_start();
        let nets = parse_net(key).map_err(|m| pos(start).at(&m))?;
        if value.is_empty() {
            return Err(pos(value_at).at(&format!(
                "\"{}\" has no action: write a tab and deny, allow, or allow,NAME=VALUE",
                qkey(key)
            )));
        }
        let action = parse_action(value, value_at, &pos)?;
        out.extend(nets.into_iter().map(|net| Entry {
            net,
            action: action.clone(),
            pos: pos(start),
        }));
    }
    Ok(out)
}

fn parse_action(value: &str, at: usize, pos: &dyn Fn(usize) -> ListPos) -> Result<Action, String> {
    let mut items = value.split(',');
    let verb = items.next().unwrap_or("");
    let mut col = at + verb.len() + 1;
    match verb {
        "deny" => match items.next() {
            None => Ok(Action::Deny),
            Some(_) => Err(pos(col).at("deny takes no variables (only allow does)")),
        },
        "allow" => {
            let mut vars = Vec::new();
            for item in items {
                let (name, val) = item.split_once('=').unwrap_or((item, ""));
                let ok = name
                    .bytes()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
                    && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
                if !ok {
                    return Err(pos(col).at(&format!(
                        "\"{}\" is not a variable name (letters, digits and _)",
                        q(name)
                    )));
                }
                vars.push((name.to_string(), val.to_string()));
                col += item.len() + 1;
            }
            Ok(Action::Allow(vars))
        }
        _ => Err(pos(at).at(&format!(
            "\"{}\" is not an action: write deny, allow, or allow,NAME=VALUE",
            q(verb)
        ))),
    }
}

/// The nets one address field stands for (a block may widen to several
/// octet prefixes, as makedat -cidr's Net::CIDR::cidr2octets does).
pub fn parse_net(key: &str) -> Result<Vec<Net>, String> {
    if key == "*" {
        return Ok(vec![Net::Default]);
    }
    // Quoted through qkey only: a line of another format (a password
    // file's) must not show more than its first field.
    let k = qkey(key);
    if let Some(words) = key.strip_prefix(':').filter(|w| !w.contains(['/', '-'])) {
        let words: Result<Vec<u16>, _> = words
            .split(':')
            .map(|w| {
                if w.len() == 4 {
                    u16::from_str_radix(w, 16).map_err(|_| ())
                } else {
                    Err(())
                }
            })
            .collect();
        return match words {
            Ok(w) if (1..=8).contains(&w.len()) => Ok(vec![Net::V6(w)]),
            _ => Err(format!(
                "\"{k}\" is not Courier's IPv6 form (a colon, then 1 to 8 words of 4 hex digits: :2001:0db8)"
            )),
        };
    }
    if let Some((a, b)) = key.split_once('/') {
        let len: u32 = b
            .parse()
            .map_err(|_| format!("\"{k}\": what follows / is not a prefix length"))?;
        if a.contains(':') {
            let addr: Ipv6Addr = a
                .parse()
                .map_err(|_| format!("\"{k}\": what precedes / is not an IPv6 address"))?;
            if len > 128 || !len.is_multiple_of(16) {
                return Err(format!(
                    "\"{k}\": IPv6 blocks must end on a 16-bit word (/16, /32, ... /128)"
                ));
            }
            return Ok(vec![v6_net(addr.segments(), len as usize / 16)]);
        }
        let addr: Ipv4Addr = a.parse().map_err(|_| {
            format!(
                "\"{k}\": what precedes / is not an IPv4 address (write all four octets before /)"
            )
        })?;
        if len > 32 {
            return Err(format!("\"{k}\": /{len} is longer than 32 bits"));
        }
        return Ok(cidr_v4(u32::from(addr), len));
    }
    if let Some((a, b)) = key.split_once('-') {
        let (Ok(lo), Ok(hi)) = (a.parse::<Ipv4Addr>(), b.parse::<Ipv4Addr>()) else {
            return Err(format!(
                "\"{k}\" is not a range of two IPv4 addresses (IPv6 ranges are not supported)"
            ));
        };
        let (lo, hi) = (u32::from(lo), u32::from(hi));
        if lo > hi {
            return Err(format!("\"{k}\": the range ends before it starts"));
        }
        return Ok(range_v4(lo, hi));
    }
    let trimmed = key.strip_suffix('.').unwrap_or(key);
    let octets: Result<Vec<u8>, _> = trimmed
        .split('.')
        .map(|o| {
            if !o.is_empty() && o.len() <= 3 && o.bytes().all(|c| c.is_ascii_digit()) {
                o.parse::<u8>().map_err(|_| ())
            } else {
                Err(())
            }
        })
        .collect();
    match octets {
        Ok(o) if (1..=4).contains(&o.len()) && !(o.len() == 4 && key.ends_with('.')) => {
            Ok(vec![Net::V4(o)])
        }
        _ => Err(format!(
            "\"{k}\" is not an address: write *, an IPv4 address or prefix (192.168.0.1, 192.168), a CIDR block (10.0.0.0/8), a range, or :hhhh:hhhh for IPv6"
        )),
    }
}

fn v6_net(seg: [u16; 8], words: usize) -> Net {
    if words == 0 {
        Net::Default
    } else {
        Net::V6(seg[..words].to_vec())
    }
}

/// A CIDR block as octet prefixes: /0 is `*`; /8, /16, /24, /32 are one
/// prefix; otherwise the block is split into the prefixes of the next
/// whole octet (a /23 is two /24s). Host bits are ignored, as Net::CIDR does.
fn cidr_v4(addr: u32, len: u32) -> Vec<Net> {
    if len == 0 {
        return vec![Net::Default];
    }
    let octets = len.div_ceil(8);
    let shift = 32 - 8 * octets;
    let base = addr & (u32::MAX << (32 - len));
    (0..1u32 << (8 * octets - len))
        .map(|i| {
            let a = (base + (i << shift)).to_be_bytes();
            Net::V4(a[..octets as usize].to_vec())
        })
        .collect()
}

/// An address range as the fewest CIDR blocks, each as octet prefixes.
fn range_v4(lo: u32, hi: u32) -> Vec<Net> {
    let mut out = Vec::new();
    let mut at = u64::from(lo);
    let end = u64::from(hi) + 1;
    while at < end {
        let mut size = if at == 0 {
            1u64 << 32
        } else {
            1u64 << at.trailing_zeros().min(32)
        };
        while at + size > end {
            size /= 2;
        }
        out.extend(cidr_v4(at as u32, 32 - size.trailing_zeros()));
        at += size;
    }
    out
}

/// The same address on two lines is an error: makedat keeps one of them,
/// and which one depends on the directory order.
fn no_duplicates(entries: &[Entry]) -> Result<(), String> {
    let mut seen: std::collections::BTreeMap<&Net, &ListPos> = Default::default();
    for e in entries {
        if let Some(first) = seen.insert(&e.net, &e.pos) {
            return Err(e.pos.at(&format!(
                "this address is already listed at {}:{}: keep one line",
                first.file.display(),
                first.line
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// converting

/// The converted rules, and what could not be carried over.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Converted {
    pub records: Vec<Record>,
    pub warnings: Vec<String>,
}

/// Convert for a front end reading `format` (a cdb: tcprules' or
/// ipsvd-cdb's). `ipv6`: the front end can bind IPv6; if not, IPv6 lines
/// can never match and are left out with a warning.
pub fn convert(entries: &[Entry], format: RulesFormat, ipv6: bool) -> Result<Converted, String> {
    let mut c = Converted::default();
    for e in entries {
        if matches!(e.net, Net::V6(_)) && (!ipv6 || format != RulesFormat::Tcprules) {
            c.warnings.push(e.pos.at(
                "IPv6 line left out: the front end binds IPv4 only, so no IPv6 client can connect",
            ));
            continue;
        }
        let rec = match format {
            RulesFormat::Tcprules => (tcprules_key(e)?, tcprules_data(&e.action)),
            // CourierDat: couriertcpd's list is makedat's to build, never
            // converted (crate::makedat).
            RulesFormat::IpsvdCdb | RulesFormat::IpsvdDir | RulesFormat::CourierDat => {
                (ipsvd_key(&e.net).into_bytes(), ipsvd_data(&e.action))
            }
        };
        if format == RulesFormat::Tcprules
            && let Action::Allow(v) = &e.action
            && v.iter().any(|(n, _)| n == "MAXCPERIP")
        {
            c.warnings.push(e.pos.at(
                "MAXCPERIP is not enforced: tcpserver has no per-IP limit (tcpsvd's is set from it)",
            ));
        }
        c.records.push(rec);
    }
    Ok(c)
}

fn tcprules_key(e: &Entry) -> Result<Vec<u8>, String> {
    Ok(match &e.net {
        Net::Default => Vec::new(),
        Net::V4(o) => {
            let s = o.iter().map(u8::to_string).collect::<Vec<_>>().join(".");
            if o.len() < 4 { format!("{s}.") } else { s }.into_bytes()
        }
        Net::V6(w) if w.len() == 8 => {
            let seg: [u16; 8] = w[..].try_into().expect("8 words");
            Ipv6Addr::from(seg).to_string().into_bytes()
        }
        Net::V6(w) => {
            if w.contains(&0) {
                return Err(e.pos.at(
                    "an IPv6 prefix with a zero word cannot be a tcprules prefix (tcpserver matches the compressed text, where zero words vanish)",
                ));
            }
            let s: Vec<String> = w.iter().map(|x| format!("{x:x}")).collect();
            format!("{}:", s.join(":")).into_bytes()
        }
    })
}

/// tcprules' data: NUL-terminated instructions; empty means allow.
fn tcprules_data(a: &Action) -> Vec<u8> {
    match a {
        Action::Deny => b"D\0".to_vec(),
        Action::Allow(vars) => vars
            .iter()
            .flat_map(|(n, v)| format!("+{n}={v}\0").into_bytes())
            .collect(),
    }
}

fn ipsvd_key(net: &Net) -> String {
    match net {
        Net::Default => "0".into(),
        Net::V4(o) => o.iter().map(u8::to_string).collect::<Vec<_>>().join("."),
        Net::V6(_) => unreachable!("left out above"),
    }
}

/// ipsvd-cdb's data: `D`, or NUL-separated instructions ending in `I`.
fn ipsvd_data(a: &Action) -> Vec<u8> {
    match a {
        Action::Deny => b"D".to_vec(),
        Action::Allow(vars) => {
            let mut lines: Vec<String> = vars.iter().map(|(n, v)| format!("+{n}={v}")).collect();
            if let Some((_, n)) = vars.iter().rev().find(|(n, _)| n == "MAXCPERIP")
                && !n.is_empty()
                && n.bytes().all(|c| c.is_ascii_digit())
            {
                lines.push(format!("C{n}"));
            }
            let mut d = lines.join("\0").into_bytes();
            d.push(b'I');
            d
        }
    }
}

/// The tcprules(1) source text for IPv4 entries (for people, and to compare
/// with the real tcprules in tests). Values holding `"` or `,` cannot be
/// written in that syntax; they are left as they are.
pub fn tcprules_source(entries: &[Entry]) -> String {
    let mut s = String::new();
    for e in entries {
        let key = match tcprules_key(e) {
            Ok(k) => String::from_utf8_lossy(&k).to_string(),
            Err(_) => continue,
        };
        let action = match &e.action {
            Action::Deny => "deny".to_string(),
            Action::Allow(v) => std::iter::once("allow".to_string())
                .chain(v.iter().map(|(n, x)| format!("{n}=\"{x}\"")))
                .collect::<Vec<_>>()
                .join(","),
        };
        s.push_str(&format!("{key}:{action}\n"));
    }
    s
}

// ---------------------------------------------------------------------------
// writing

/// Where the converted rules of `source` go: beside the service, named
/// after the source and the format (so switching front ends never reads a
/// stale file of the other format): `./imapaccess.tcprules.cdb`,
/// `./imapaccess.ipsvd.cdb`.
pub fn output_path(service_dir: &Path, source: &Path, format: RulesFormat) -> PathBuf {
    let stem = source
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "access".into());
    let tag = match format {
        RulesFormat::Tcprules => "tcprules",
        _ => "ipsvd",
    };
    service_dir.join(format!("{stem}.{tag}.cdb"))
}

/// The conversion a launch does before exec (decided by resolve).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub source: PathBuf,
    /// The compiled rules, in the service directory (see [`output_path`]).
    pub output: PathBuf,
    pub format: RulesFormat,
    /// Keep IPv6 lines (the front end binds IPv6).
    pub ipv6: bool,
    /// The output already holds exactly what the source compiles to (when
    /// resolve read them): the launch will write nothing.
    pub fresh: bool,
    /// The source's files as they were when resolve read them: the launch
    /// compiles again only when they changed (or the output was stale).
    pub stamp: Vec<Stamp>,
}

/// A file's identity and state: when two are equal, its bytes are the
/// same (a write changes the ctime, with nanoseconds; a replacing rename
/// changes the inode). Unlike an mtime alone, a `cp -p` or a clock set back
/// cannot fake it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

/// The stamps of the source (for a directory: itself, a file added or
/// removed changes it, and each of its files).
pub fn stamp(source: &Path) -> anyhow::Result<Vec<Stamp>> {
    use std::os::unix::fs::MetadataExt;
    let one = |p: &Path| -> anyhow::Result<Stamp> {
        let m = std::fs::metadata(p)
            .with_context(|| format!("unable to open access list {}", shown_path(p)))?;
        Ok(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    };
    let mut out = vec![one(source)?];
    if std::fs::metadata(source).is_ok_and(|m| m.is_dir()) {
        for f in source_files(source)? {
            out.push(one(&f)?);
        }
    }
    Ok(out)
}

/// What [`build`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Built {
    /// The output already held exactly these rules: left alone.
    UpToDate,
    /// Written, with these warnings.
    Written(Vec<String>),
}

/// The cdb bytes `source` compiles to, and the conversion's warnings.
pub fn compile(
    source: &Path,
    format: RulesFormat,
    ipv6: bool,
) -> anyhow::Result<(Vec<u8>, Vec<String>)> {
    let entries = read(source)?;
    let c = convert(&entries, format, ipv6).map_err(bad_input)?;
    Ok((crate::cdb::write(&c.records), c.warnings))
}

/// The directory and file name of an output path.
fn split(out: &Path) -> anyhow::Result<(PathBuf, String)> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| bad_input(format!("{} names no file", shown_path(out))))?;
    Ok((dir, name.to_string()))
}

/// Whether the file `name` in `dir` holds exactly `bytes` (a symlink
/// there is not followed and counts as no).
fn holds(dir: &Dir, name: &str, bytes: &[u8]) -> std::io::Result<bool> {
    Ok(dir.read_regular(name, bytes.len() as u64)?.as_deref() == Some(bytes))
}

/// The state of the compiled rules before a launch, found without
/// writing anything: are they what the source compiles to now, and if not,
/// can they be rewritten? `bytes`: what the source compiles to. An error
/// is what stops the launch (and fails the dry run and --check alike):
/// stale rules that cannot be rebuilt are never used, since that would
/// enforce an access list other than the configured one.
pub fn probe(out: &Path, bytes: &[u8]) -> anyhow::Result<bool> {
    let (dir_path, name) = split(out)?;
    let shown_out = shown_path(out);
    let dir = Dir::open(&dir_path).with_context(|| {
        format!(
            "unable to open {}, the directory of the compiled rules {shown_out}",
            shown_path(&dir_path)
        )
    })?;
    if holds(&dir, &name, bytes).with_context(|| format!("unable to read {shown_out}"))? {
        return Ok(true);
    }
    if let Some(st) = dir
        .stat(&name)
        .with_context(|| format!("unable to stat {shown_out}"))?
        && !matches!(FileKind::of(&st), FileKind::Regular | FileKind::Symlink)
    {
        return Err(bad_input(format!(
            "the compiled rules {shown_out} would replace {}: remove it",
            FileKind::describe(&st)
        )));
    }
    dir.writable().with_context(|| {
        format!(
            "the compiled rules {shown_out} are missing or older than the access list, and cannot be rebuilt: {} is not writable",
            shown_path(&dir_path)
        )
    })?;
    Ok(false)
}

/// Compile `source` into `out` (a cdb in `format`) unless `out` already
/// holds exactly those bytes: freshness by content, so a list copied in
/// with an older mtime (`cp -p`, rsync -t, a package) is compiled, and a
/// list edited during a start is compiled again (the source is read once
/// more after the write, until it reads the same: bounded).
///
/// Written with [`write_atomic_at`] in the output's directory (see
/// [`crate::safefile`]): a reader sees the old rules or the new, never
/// half, and nothing planted at a temporary name is followed. The
/// temporaries killed runs left are removed first.
pub fn build(source: &Path, out: &Path, format: RulesFormat, ipv6: bool) -> anyhow::Result<Built> {
    build_unless(source, out, format, ipv6, None)
}

/// The launch's [`build`]: nothing is read again when resolve found the
/// output fresh and the source has not changed since (its [`Stamp`]s).
pub fn build_step(step: &Step) -> anyhow::Result<Built> {
    let known = step.fresh.then_some(step.stamp.as_slice());
    build_unless(
        step.source.as_path(),
        &step.output,
        step.format,
        step.ipv6,
        known,
    )
}

fn build_unless(
    source: &Path,
    out: &Path,
    format: RulesFormat,
    ipv6: bool,
    fresh_at: Option<&[Stamp]>,
) -> anyhow::Result<Built> {
    let (dir_path, name) = split(out)?;
    let shown_out = shown_path(out);
    let dir = Dir::open(&dir_path)
        .with_context(|| format!("unable to open {}", shown_path(&dir_path)))?;
    remove_stale_temps(&dir, &name);
    let mut before = stamp(source)?;
    if fresh_at == Some(before.as_slice()) {
        return Ok(Built::UpToDate);
    }
    let mut written = None;
    // Until the source reads the same before and after (an edit made
    // while we compiled is compiled too); bounded: a list rewritten
    // without pause is compiled again by the next start (by content).
    for _ in 0..8 {
        let (bytes, warnings) = compile(source, format, ipv6)?;
        if !holds(&dir, &name, &bytes).with_context(|| format!("unable to read {shown_out}"))? {
            write_atomic_at(&dir, &name, &bytes)
                .with_context(|| format!("unable to write {shown_out}"))?;
            written = Some(warnings);
        }
        let after = stamp(source)?;
        if after == before {
            break;
        }
        before = after;
    }
    Ok(match written {
        Some(w) => Built::Written(w),
        None => Built::UpToDate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::tests_support::{have, tempdir};

    fn p(text: &str) -> Result<Vec<Entry>, String> {
        parse(text.as_bytes(), Path::new("imapaccess"))
    }

    fn nets(key: &str) -> Vec<Net> {
        parse_net(key).unwrap()
    }

    #[test]
    fn addresses() {
        let v4 = |o: &[u8]| Net::V4(o.to_vec());
        assert_eq!(nets("*"), [Net::Default]);
        assert_eq!(nets("192.168.0.1"), [v4(&[192, 168, 0, 1])]);
        assert_eq!(nets("192.168"), [v4(&[192, 168])]);
        assert_eq!(nets("192.168."), [v4(&[192, 168])]);
        assert_eq!(nets("10.0.0.0/8"), [v4(&[10])]);
        assert_eq!(nets("10.0.0.0/23"), [v4(&[10, 0, 0]), v4(&[10, 0, 1])]);
        assert_eq!(nets("10.0.0.7/23"), [v4(&[10, 0, 0]), v4(&[10, 0, 1])]);
        assert_eq!(nets("0.0.0.0/0"), [Net::Default]);
        assert_eq!(nets("1.2.3.4/32"), [v4(&[1, 2, 3, 4])]);
        assert_eq!(nets("128.0.0.0/1").len(), 128);
        assert_eq!(
            nets("10.0.0.0-10.0.2.255"),
            [v4(&[10, 0, 0]), v4(&[10, 0, 1]), v4(&[10, 0, 2])]
        );
        assert_eq!(
            nets("10.0.0.4-10.0.0.5"),
            [v4(&[10, 0, 0, 4]), v4(&[10, 0, 0, 5])]
        );
        assert_eq!(nets(":2001:0db8"), [Net::V6(vec![0x2001, 0xdb8])]);
        assert_eq!(nets("2001:db8::/32"), [Net::V6(vec![0x2001, 0xdb8])]);
        for bad in [
            "host.example",
            "256.1",
            "1.2.3.4.5",
            "1.2.3.4.",
            "10.0.0.0/33",
            "10/8",
            ":2001:db8",
            "2001:db8::/33",
            "10.0.0.9-10.0.0.1",
            "1..2",
            "",
        ] {
            assert!(parse_net(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lines_and_positions() {
        let e = p("# comment\n\n127.0.0.1\tdeny\n192.168\tallow,RELAYCLIENT,SIZE=10\n*\tdeny\n")
            .unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].action, Action::Deny);
        assert_eq!(
            e[1].action,
            Action::Allow(vec![
                ("RELAYCLIENT".into(), "".into()),
                ("SIZE".into(), "10".into())
            ])
        );
        assert_eq!((e[1].pos.line, e[1].pos.col), (4, 1));
        assert_eq!(p("  10 deny\n").unwrap()[0].pos.col, 3);
        let err = |t: &str| p(t).unwrap_err();
        assert_eq!(
            err("1.2.3.4\tdeny\nbad.host\tdeny\n").split(": ").next(),
            Some("imapaccess:2:1")
        );
        assert!(err("1.2.3.4\tdenny\n").starts_with("imapaccess:1:9: \"denny\" is not an action"));
        assert!(err("1.2.3.4\tallow,A=1,9X=2\n").starts_with("imapaccess:1:19: \"9X\""));
        assert!(err("1.2.3.4\n").contains("no action"));
        assert!(err("1.2.3.4\tdeny,A=1\n").contains("deny takes no variables"));
    }

    #[test]
    fn quoted_pieces_are_short_and_hide_other_formats() {
        assert_eq!(qkey("host.example"), "host.example");
        assert_eq!(qkey("root:$6$salt$hash:1:2"), "root...");
        assert_eq!(qkey("root:abXyZ12/3Q.wE:1"), "root...");
        assert_eq!(qkey(":2001:0db8:zz"), ":2001:0db8:zz");
        assert_eq!(qkey("1.2.3.4\x1b[2K"), "1.2.3.4...");
        assert_eq!(
            qkey(&"1".repeat(5000)),
            format!("{}...", "1".repeat(QUOTE_MAX))
        );
        let e = p(&format!("1.2.3.4\t{}\n", "x\r".repeat(1000))).unwrap_err();
        assert!(e.len() < 200 && !e.contains('\r'), "{e}");
    }

    #[test]
    fn duplicates_are_errors() {
        let e = p("10.0.0.0/23\tdeny\n10.0.1\tallow\n").unwrap();
        let msg = no_duplicates(&e).unwrap_err();
        assert!(
            msg.starts_with("imapaccess:2:1: this address is already listed at imapaccess:1"),
            "{msg}"
        );
    }

    #[test]
    fn records_per_format() {
        let e =
            p("127.0.0.1\tdeny\n10\tallow,A=1,MAXCPERIP=3\n*\tallow\n:2001:0db8\tdeny\n").unwrap();
        let t = convert(&e, RulesFormat::Tcprules, true).unwrap();
        let r = |k: &str, d: &[u8]| (k.as_bytes().to_vec(), d.to_vec());
        assert_eq!(
            t.records,
            [
                r("127.0.0.1", b"D\0"),
                r("10.", b"+A=1\0+MAXCPERIP=3\0"),
                r("", b""),
                r("2001:db8:", b"D\0")
            ]
        );
        assert_eq!(t.warnings.len(), 1); // MAXCPERIP
        let t4 = convert(&e, RulesFormat::Tcprules, false).unwrap();
        assert_eq!(t4.records.len(), 3);
        assert!(
            t4.warnings
                .iter()
                .any(|w| w.starts_with("imapaccess:4:1: IPv6 line left out"))
        );
        let i = convert(&e, RulesFormat::IpsvdCdb, false).unwrap();
        assert_eq!(
            i.records,
            [
                r("127.0.0.1", b"D"),
                r("10", b"+A=1\0+MAXCPERIP=3\0C3I"),
                r("0", b"I")
            ]
        );
        let z = p(":2001:0000\tdeny\n").unwrap();
        assert!(
            convert(&z, RulesFormat::Tcprules, true)
                .unwrap_err()
                .contains("zero word")
        );
    }

    /// The tcprules records are what the real tcprules makes of the same
    /// rules, byte for byte; the ipsvd records are what ipsvd-cdb makes of
    /// the equivalent instructions directory.
    #[test]
    fn same_as_real_tools() {
        let Some(dir) = tempdir("access") else { return };
        if !have("tcprules") || !have("ipsvd-cdb") {
            return;
        }
        let e =
            p("127.0.0.1\tdeny\n10.1\tallow,A=1,B=x y\n192.168.0.0/23\tallow\n*\tdeny\n").unwrap();
        let ours = crate::cdb::write(&convert(&e, RulesFormat::Tcprules, false).unwrap().records);
        let src = dir.join("r");
        std::fs::write(&src, tcprules_source(&e)).unwrap();
        let cdb = dir.join("r.cdb");
        let ok = std::process::Command::new("tcprules")
            .arg(&cdb)
            .arg(dir.join("r.tmp"))
            .stdin(std::fs::File::open(&src).unwrap())
            .status()
            .unwrap();
        assert!(ok.success());
        assert_eq!(std::fs::read(&cdb).unwrap(), ours);

        let inst = dir.join("inst");
        std::fs::create_dir(&inst).unwrap();
        let w = |n: &str, t: &str, mode: u32| {
            std::fs::write(inst.join(n), t).unwrap();
            std::fs::set_permissions(
                inst.join(n),
                std::os::unix::fs::PermissionsExt::from_mode(mode),
            )
            .unwrap();
        };
        w("127.0.0.1", "", 0o000);
        w("10.1", "+A=1\n+B=x y\n", 0o644);
        w("192.168.0", "", 0o644);
        w("192.168.1", "", 0o644);
        w("0", "", 0o000);
        let icdb = dir.join("i.cdb");
        assert!(
            std::process::Command::new("ipsvd-cdb")
                .arg(&icdb)
                .arg(dir.join("i.tmp"))
                .arg(&inst)
                .status()
                .unwrap()
                .success()
        );
        let mut real = crate::cdb::records(&std::fs::read(&icdb).unwrap()).unwrap();
        let mut mine = convert(&e, RulesFormat::IpsvdCdb, false).unwrap().records;
        real.sort();
        mine.sort();
        assert_eq!(mine, real);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn build_atomic_and_only_when_changed() {
        let Some(dir) = tempdir("build") else { return };
        let src = dir.join("imapaccess");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("a"), "127.0.0.1\tdeny\n").unwrap();
        std::fs::write(src.join("b~"), "garbage\n").unwrap(); // skipped like makedat
        let out = output_path(&dir, &src, RulesFormat::IpsvdCdb);
        assert!(out.ends_with("imapaccess.ipsvd.cdb"));
        assert_eq!(
            build(&src, &out, RulesFormat::IpsvdCdb, false).unwrap(),
            Built::Written(vec![])
        );
        let recs = crate::cdb::records(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(recs, [(b"127.0.0.1".to_vec(), b"D".to_vec())]);
        assert_eq!(
            build(&src, &out, RulesFormat::IpsvdCdb, false).unwrap(),
            Built::UpToDate
        );
        // A changed source is rebuilt; a bad line is an error with its
        // position and leaves the old rules in place.
        std::fs::write(src.join("c"), "1.2.3.4\tallow\nnope\tdeny\n").unwrap();
        let e = build(&src, &out, RulesFormat::IpsvdCdb, false).unwrap_err();
        assert!(
            format!("{e:#}").contains("imapaccess/c:2:1: \"nope\""),
            "{e:#}"
        );
        assert_eq!(
            crate::cdb::records(&std::fs::read(&out).unwrap())
                .unwrap()
                .len(),
            1
        );
        std::fs::write(src.join("c"), "1.2.3.4\tallow\n").unwrap();
        assert!(matches!(
            build(&src, &out, RulesFormat::IpsvdCdb, false).unwrap(),
            Built::Written(_)
        ));
        assert_eq!(
            crate::cdb::records(&std::fs::read(&out).unwrap())
                .unwrap()
                .len(),
            2
        );
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp.")
            })
            .collect();
        assert!(leftovers.is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
