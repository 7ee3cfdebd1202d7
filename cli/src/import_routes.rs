//! `rspy import-routes`: declare the operations of an OpenAPI document (work in progress).

use crate::cli::ImportRoutesArgs;
use crate::error::{Error, Result};

pub fn run(_args: &ImportRoutesArgs) -> Result<()> {
    Err(Error::Refused(
        "`rspy import-routes` is not implemented yet".to_owned(),
    ))
}
