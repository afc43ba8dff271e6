//! The launch (stub until the plan lands).
use crate::cli::Format;
use crate::error::Exit;
use std::path::PathBuf;

pub struct Args {
    pub runfile: Option<PathBuf>,
    pub set: Vec<String>,
    pub dry_run: bool,
    pub format: Format,
    pub explain: bool,
    pub check: bool,
    pub bind: bool,
}

pub fn main(_args: Args) -> anyhow::Result<Exit> {
    anyhow::bail!("not yet")
}
