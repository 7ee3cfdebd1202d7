//! `rspy init`: adopt an existing Python service (work in progress).

use crate::cli::InitArgs;
use crate::error::{Error, Result};

pub fn run(_args: &InitArgs) -> Result<()> {
    Err(Error::Refused("`rspy init` is not implemented yet".to_owned()))
}
