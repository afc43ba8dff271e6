//! The config files in the rc's inner scope, and the rc's own
//! assignments in its outer scope.

use std::path::PathBuf;

use crate::config::{Assignment, Scope};
use crate::envdir;
use crate::environ::{self, Environ};
use crate::error::{Problem, Subject};
use crate::settings::{Name, Settings};

use super::Inherit;

/// A service table's predefined words as scope entries.
pub(super) fn words(v: Vec<(&'static str, String)>) -> impl Iterator<Item = (String, Vec<u8>)> {
    v.into_iter().map(|(n, v)| (n.to_string(), v.into_bytes()))
}

/// What reading the config files gave.
pub(super) struct Configs {
    /// The config files named, in order.
    pub(super) files: Vec<PathBuf>,
    /// Their variables (what the envdir holds), in order.
    pub(super) vars: Vec<Assignment>,
    /// A config file is not world-readable.
    pub(super) private: bool,
    /// Every file read, the files they source included.
    pub(super) sources: Vec<PathBuf>,
    /// The files read without a problem, for the rc's outer scope.
    pub(super) read: Vec<ConfigRead>,
}

/// The config's variables after the rc's own assignments, and the rc's
/// outer scope those assignments read.
pub(super) struct RcScope {
    pub(super) vars: Vec<Assignment>,
    pub(super) outer: Scope,
    /// The names the rc assigns after the files (the last of `vars`).
    pub(super) names: Vec<&'static str>,
}

/// The config files, in one scope, with the kept environment and Courier's
/// rc variables predefined for references (not exported, so not in the
/// envdir). A file with a problem is reported and the next one still read.
pub(super) fn read_configs(
    settings: &Settings,
    environ: &Environ,
    inherit: &Inherit,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Configs {
    let configs: Vec<PathBuf> = settings
        .str(Name::Config)
        .split_ascii_whitespace()
        .map(PathBuf::from)
        .collect();
    let kept: Environ = environ
        .iter()
        .filter(|(n, _)| inherit.keeps(n))
        .cloned()
        .collect();
    // The rc's inner shell: what it assigns before sourcing the files.
    let mut visible = environ::visible(&kept);
    visible.extend(words(
        settings
            .service
            .predefined(settings.layout, settings.prefix.as_str()),
    ));
    let mut scope = Scope::new(visible);
    let mut private = false;
    let mut read: Vec<ConfigRead> = Vec::new();
    for path in &configs {
        // The bytes are kept: the rc's outer scope reads the same files.
        let got = crate::config::read_bounded(path, "config file").and_then(|(src, meta)| {
            let (mode, memo) = scope.read_traced(path, &src, &meta)?;
            read.push(ConfigRead {
                path: path.clone(),
                src,
                meta,
                memo,
            });
            Ok(mode)
        });
        match got {
            Ok(mode) => private |= mode & 0o004 == 0,
            Err(e) => {
                let mut p = Problem::from_error(config_subject(&path.to_string_lossy()), &e);
                if crate::settings::not_found(&e) {
                    p.fix = "install Courier's config, or set config= to the files to read".into();
                }
                problems.push(p)
            }
        }
    }
    warnings.extend(scope.warnings.iter().map(|w| w.to_string()));
    let vars: Vec<Assignment> = scope.vars().into_iter().cloned().collect();
    for a in &vars {
        if let Err(e) = envdir::check_carriable(a) {
            problems.push(Problem::from_error(config_subject(&a.pos.file), &e));
        }
    }
    Configs {
        files: configs,
        vars,
        private,
        sources: scope.files().to_vec(),
        read,
    }
}

/// A config file read without a problem, with its bytes and what reading
/// it did (for the rc's outer scope).
pub(super) struct ConfigRead {
    pub(super) path: PathBuf,
    src: Vec<u8>,
    meta: std::fs::Metadata,
    memo: Option<crate::config::Memo>,
}

/// The service rc's own assignments after the config files
/// (`IMAP_STARTTLS=$IMAPDSTARTTLS`, `IMAP_TLS=1`, ...), appended to the
/// config's variables (so the envdir carries them, as the rc's `set -a`
/// exports them), with the rc's outer scope their `$NAME`s read.
pub(super) fn rc_assignments(
    settings: &Settings,
    configs: &[PathBuf],
    read: &[ConfigRead],
    environ: &Environ,
    mut vars: Vec<Assignment>,
    warnings: &mut Vec<String>,
) -> RcScope {
    let service = settings.service;
    let mut visible = environ::visible(environ);
    visible.extend(words(
        service.outer_predefined(settings.layout, settings.prefix.as_str()),
    ));
    let mut outer = Scope::new(visible);
    for path in service.outer_files(settings.layout, configs) {
        // Problems of these files are reported by read_configs already.
        // A file read there is not read again: replayed when every
        // reference it makes reads the same in this scope (the usual case:
        // Courier's configs refer to little), else its bytes parsed again.
        let _ = match read.iter().find(|c| c.path == path) {
            Some(c) => match &c.memo {
                Some(m) if outer.replay(&c.path, m) => Ok(0),
                _ => outer.read_opened(&c.path, &c.src, &c.meta),
            },
            None => crate::config::read_file(&mut outer, &path),
        };
    }
    let file: std::sync::Arc<str> = std::sync::Arc::from(format!("<{} rc>", service.name()));
    let mut names = Vec::new();
    for (i, (name, value)) in service
        .rc_values(settings.layout, &outer)
        .into_iter()
        .enumerate()
    {
        // The rc pastes the outer value into its inner script's text,
        // where sh would parse it again (split it, expand `$`); courier-run
        // keeps the value as the config wrote it, and says so.
        if !crate::service::plain_word(&value) {
            warnings.push(format!(
                "{name}: Courier's {} script pastes the value {} into a shell command, where it would be parsed again; courier-run uses it as written",
                service.name(),
                crate::shown::value(&value)
            ));
        }
        let pos = crate::config::Pos {
            file: file.clone(),
            line: i as u32 + 1,
            col: 1,
        };
        vars.retain(|a| a.name != name);
        names.push(name);
        vars.push(Assignment {
            name: name.to_string(),
            value,
            pos: pos.clone(),
            value_pos: pos,
        });
    }
    RcScope { vars, outer, names }
}

/// The `--check` subject of a config file's problems.
pub fn config_subject(file: &str) -> Subject {
    Subject::config_file(file)
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{one, settings};
    use super::*;
    use crate::frontend::tests_support::tempdir;

    #[test]
    fn a_missing_config_is_reported_and_the_next_still_read() {
        let d = tempdir("configs").expect("a temp dir");
        let good = d.join("imapd");
        std::fs::write(&good, "MAXDAEMONS=7\n").unwrap();
        let s = settings(&format!("config='/nonexistent/imapd {}'\n", good.display()));
        let (mut p, mut w) = (Vec::new(), Vec::new());
        let c = read_configs(&s, &Vec::new(), &Inherit::All, &mut p, &mut w);
        let p = one(&p);
        assert_eq!(p.subject, Subject::ConfigFile("/nonexistent/imapd".into()));
        assert!(p.fix.starts_with("install Courier's config"), "{}", p.fix);
        assert_eq!(c.files.len(), 2);
        assert_eq!(c.read.len(), 1);
        assert!(c.vars.iter().any(|a| a.name == "MAXDAEMONS"));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_private_config_makes_a_private_envdir() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempdir("configs-private").expect("a temp dir");
        let f = d.join("imapd");
        std::fs::write(&f, "X=1\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        let s = settings(&format!("config={}\n", f.display()));
        let (mut p, mut w) = (Vec::new(), Vec::new());
        let c = read_configs(&s, &Vec::new(), &Inherit::All, &mut p, &mut w);
        assert!(p.is_empty(), "{p:?}");
        assert!(c.private);
        let _ = std::fs::remove_dir_all(&d);
    }
}
