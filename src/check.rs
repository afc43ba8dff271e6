//! `--check` (issue 5; not yet).
use crate::error::Exit;
use crate::launch::Args;

pub fn main(_args: &Args) -> anyhow::Result<Exit> {
    anyhow::bail!("--check is not implemented yet")
}
