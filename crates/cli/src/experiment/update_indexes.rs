//! Not written yet.

use anyhow::{Result, bail};

use super::{Ctx, Report};

/// Runs the experiment.
pub fn run(_ctx: &mut Ctx) -> Result<Report> {
    bail!("not written yet")
}
