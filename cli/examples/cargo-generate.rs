//! cargo-generate's own command line (`cargo-generate generate --path template ...`), built
//! from the library version rspy embeds. Tests run it to check that `rspy new` gives the
//! same tree as `cargo generate --path template` without installing cargo-generate (the
//! published binary also has git support, which a local `--path` template does not use).

use std::process::ExitCode;

use cargo_generate::{Cli, generate};
use clap::Parser;

fn main() -> ExitCode {
    let Cli::Generate(args) = Cli::parse();
    match generate(args) {
        Ok(_) => ExitCode::SUCCESS,
        // cargo-generate has already printed the error.
        Err(_) => ExitCode::FAILURE,
    }
}
