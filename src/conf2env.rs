//! `courier-run conf2env ENVDIR [CONFIG...]`: the recipe's
//! `cat imapd | conf2env ./env`, done right.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::{self, Scope};
use crate::envdir::{self, Modes};
use crate::error::Exit;

/// Convert `configs` (stdin when none) into `dir`. `define`: NAME=VALUE
/// visible to references, not written; `assign`: NAME=VALUE assigned after
/// the files and written, as Courier's rc assigns `IMAP_STARTTLS=...` after
/// sourcing them (`--format sh` uses it for the rc's assignments).
pub fn conf2env(
    dir: &Path,
    configs: &[PathBuf],
    define: &[String],
    assign: &[String],
) -> anyhow::Result<Exit> {
    // The one reader of the inherited environment, under dash's rule.
    let mut visible = crate::environ::visible(&crate::environ::inherited());
    for d in define {
        match d.split_once('=') {
            Some((n, v)) if config::is_name(n.as_bytes()) => {
                visible.retain(|(k, _)| k != n);
                visible.push((n.to_string(), v.as_bytes().to_vec()));
            }
            _ => {
                return Err(crate::error::bad_input(format!(
                    "--define {d}: expected NAME=VALUE"
                )));
            }
        }
    }
    let mut scope = Scope::new(visible);
    let mut private = false;
    if configs.is_empty() {
        // Bounded as a config file is (config::MAX_FILE_SIZE).
        let src = config::read_limited(std::io::stdin().lock(), 0, "standard input")?;
        scope.read("-", &src)?;
    }
    for path in configs {
        private |= config::read_file(&mut scope, path)? & 0o004 == 0;
    }
    for a in assign {
        match a.split_once('=') {
            Some((n, v)) if config::is_name(n.as_bytes()) => {
                // Through the reader, single-quoted: the value is taken
                // literally, and the name is checked as any config name.
                let line = format!("{n}='{}'\n", v.replace('\'', "'\"'\"'"));
                scope.read("--assign", line.as_bytes())?;
            }
            _ => {
                return Err(crate::error::bad_input(format!(
                    "--assign {a}: expected NAME=VALUE"
                )));
            }
        }
    }
    for w in &scope.warnings {
        // Not eprintln!, which panics (abort: 134) when stderr is full.
        let _ = writeln!(
            std::io::stderr(),
            "courier-run: warning: {}",
            crate::shown::line(&w.to_string())
        );
    }
    let vars = scope.vars();
    for a in &vars {
        envdir::check_carriable(a)?;
    }
    let pairs: Vec<(&str, &[u8])> = vars
        .iter()
        .map(|a| (a.name.as_str(), a.value.as_slice()))
        .collect();
    let modes = Modes::for_source(private);
    // The config files are not the envdir's to replace.
    let protected: Vec<&Path> = configs.iter().map(PathBuf::as_path).collect();
    let written = envdir::write_checked(dir, &pairs, modes, &protected);
    drop(pairs);
    drop(vars);
    // The process exits next: freeing every name, value and position one by
    // one (100,000 of each for a big config) was a tenth of the run.
    std::mem::forget(scope);
    written?;
    Ok(Exit::Ok)
}
