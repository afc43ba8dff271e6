//! couriertcpd's compiled access list, `LIST.dat`, built by Courier's own
//! `makedat` (the program Debian's `makeimapaccess` runs):
//!
//! ```sh
//! makedat -src=LIST -file=LIST.dat -tmp=TMP -cidr
//! ```
//!
//! We run makedat itself rather than write the database: its format is
//! whatever the installed Courier was built with (gdbm on Debian 12; bdb
//! elsewhere), and its `-cidr` expansion is Perl's Net::CIDR
//! (`libnet-cidr-perl`). makedat writes TMP and renames it over the `.dat`
//! (makedatprog), so a reader sees the old list or the new one, never half;
//! and makedatprog writes nothing unless its input ends with makedat's
//! closing `.` line, so a list that cannot be read leaves the old `.dat`.
//!
//! Traps found on Debian 12 and said by `--check`: without Net::CIDR,
//! makedat's `eval "use Net::CIDR"` fails silently and a CIDR or range line
//! goes into the database as written, where couriertcpd never matches it;
//! a `.dat` older than its list is what couriertcpd reads until it is
//! rebuilt AND couriertcpd gets SIGHUP (`courier-run ./run --rebuild-access`).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;

use crate::error::{Exit, coded};
use crate::settings::Layout;

/// Where the layout installs makedat (Debian: the package's own copy, not
/// the `/usr/bin/makedat` alternative, which another package may own).
pub fn program(layout: Layout, prefix: &str) -> PathBuf {
    match layout {
        Layout::Debian => PathBuf::from("/usr/lib/courier/makedat"),
        Layout::Courier2 => PathBuf::from(format!("{prefix}/bin/makedat")),
    }
}

/// The `.dat` of an access list: `LIST.dat`, as Courier's rc names it.
pub fn dat_path(source: &Path) -> PathBuf {
    let mut s = source.as_os_str().to_os_string();
    s.push(".dat");
    PathBuf::from(s)
}

/// The newest modification time of the list: its files and, for a
/// directory, the directory itself (a removed file changes it).
fn newest(source: &Path) -> anyhow::Result<(i64, i64)> {
    let m = std::fs::metadata(source)
        .with_context(|| format!("unable to read {}", source.display()))?;
    let mut t = (m.mtime(), m.mtime_nsec());
    for f in crate::access::source_files(source)? {
        let m = std::fs::metadata(&f).with_context(|| format!("unable to read {}", f.display()))?;
        t = t.max((m.mtime(), m.mtime_nsec()));
    }
    Ok(t)
}

/// Whether `dat` must be (re)built from `source`: it is missing, or older
/// than the list.
pub fn stale(source: &Path, dat: &Path) -> anyhow::Result<bool> {
    let src = newest(source)?;
    Ok(match std::fs::metadata(dat) {
        // Equal times: the list may have changed after makedat read it
        // (timestamps are coarser than a fast edit).
        Ok(m) => (m.mtime(), m.mtime_nsec()) <= src,
        Err(_) => true,
    })
}

/// Run makedat: `source` into `dat`, atomically (makedat's own temporary
/// and rename). The temporary is a sibling of `dat` named for this process,
/// so two launches never write one file. umask 022, as makeimapaccess sets.
pub fn build(makedat: &Path, source: &Path, dat: &Path) -> anyhow::Result<()> {
    let name = dat
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dat.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    let arg = |k: &str, p: &Path| {
        let mut s = std::ffi::OsString::from(k);
        s.push(p.as_os_str());
        s
    };
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg("umask 022; exec \"$0\" \"$@\"")
        .arg(makedat)
        .arg(arg("-src=", source))
        .arg(arg("-file=", dat))
        .arg(arg("-tmp=", &tmp))
        .arg("-cidr")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("unable to run {}", makedat.display()))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(coded(
            Exit::System,
            format!(
                "unable to build {} from {}: {} exited {}{}",
                dat.display(),
                source.display(),
                makedat.display(),
                out.status.code().unwrap_or(-1),
                if why.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", crate::error::printable(why.trim()))
                }
            ),
        ));
    }
    Ok(())
}

/// The lines of the list that makedat -cidr expands with Net::CIDR
/// (`ADDR/LEN` or `ADDR-ADDR`, makedat's own pattern), as `FILE:LINE`.
pub fn cidr_lines(source: &Path) -> Vec<String> {
    let Ok(files) = crate::access::source_files(source) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read(&f) else {
            continue;
        };
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            let line = String::from_utf8_lossy(line);
            let key = line.split([' ', '\t']).next().unwrap_or("");
            let is_addr = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
            };
            if let Some((a, b)) = key.split_once(['/', '-'])
                && is_addr(a)
                && is_addr(b)
            {
                out.push(format!("{}:{}", f.display(), n + 1));
            }
        }
    }
    out
}

/// Whether Perl's Net::CIDR is installed (makedat -cidr needs it).
pub fn net_cidr_installed() -> bool {
    Command::new("perl")
        .args(["-MNet::CIDR", "-e", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::tests_support::{have, tempdir};

    #[test]
    fn names_and_cidr_lines() {
        assert_eq!(
            dat_path(Path::new("/etc/courier/imapaccess")),
            Path::new("/etc/courier/imapaccess.dat")
        );
        let Some(d) = tempdir("makedat-lines") else {
            return;
        };
        let l = d.join("list");
        std::fs::write(
            &l,
            "# c\n10.0.0.0/23\tdeny\n1.2.3.4\tallow\n10.1.0.0-10.1.0.255\tdeny\n*\tallow\n",
        )
        .unwrap();
        let got = cidr_lines(&l);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].ends_with(":2") && got[1].ends_with(":4"), "{got:?}");
        let _ = std::fs::remove_dir_all(d);
    }

    /// The real makedat: builds, is atomic over an existing .dat, leaves
    /// the old one when the list cannot be read, and stale() follows mtimes.
    #[test]
    fn real_makedat() {
        let m = program(Layout::Debian, "/usr");
        if !have("perl") {
            return;
        }
        if !crate::skip::have(&format!("{} (courier-base)", m.display()), m.exists()) {
            return;
        }
        let Some(d) = tempdir("makedat") else { return };
        let l = d.join("imapaccess");
        std::fs::write(&l, "127.0.0.5\tdeny\n10.0.0.0/23\tallow,A=1\n").unwrap();
        let dat = dat_path(&l);
        assert!(stale(&l, &dat).unwrap());
        build(&m, &l, &dat).unwrap();
        assert!(!stale(&l, &dat).unwrap());
        let bytes = std::fs::read(&dat).unwrap();
        let has = |s: &[u8]| bytes.windows(s.len()).any(|w| w == s);
        assert!(has(b"127.0.0.5") && has(b"deny"));
        if net_cidr_installed() {
            // -cidr expanded the /23 into its two /24 prefixes.
            assert!(has(b"10.0.0") && has(b"10.0.1"), "not expanded");
            assert!(!has(b"10.0.0.0/23"));
        }
        let ino = std::fs::metadata(&dat).unwrap().ino();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&l, "127.0.0.6\tdeny\n").unwrap();
        assert!(stale(&l, &dat).unwrap());
        build(&m, &l, &dat).unwrap();
        assert_ne!(
            std::fs::metadata(&dat).unwrap().ino(),
            ino,
            "renamed into place"
        );
        // An unreadable list: makedat fails and the .dat stays as it was.
        let before = std::fs::read(&dat).unwrap();
        let e = build(&m, &d.join("missing"), &dat).unwrap_err();
        assert!(format!("{e:#}").contains("unable to build"), "{e:#}");
        assert_eq!(std::fs::read(&dat).unwrap(), before);
        let names: Vec<_> = std::fs::read_dir(&d).unwrap().flatten().collect();
        assert_eq!(names.len(), 2, "no temporary left: {names:?}");
        let _ = std::fs::remove_dir_all(d);
    }
}
