//! The command line: what users can type, as clap definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Scaffold and migrate Rust-first, Python-assisted services.
#[derive(Debug, Parser)]
#[command(name = "rspy", version, about, max_term_width = 100)]
pub struct Cli {
    /// Run as if rspy was started in DIR
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub directory: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new service: a Rust api (axum) in front of a Python service, run by supervisord
    New(NewArgs),
    /// Show the route table of the project: method, path, mode, handler, settings, fallback
    Routes(RoutesArgs),
    /// Internal: renders the embedded template in a child process (used by `rspy new`)
    #[command(name = "__render", hide = true)]
    Render(RenderArgs),
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// Directory to create (or an empty one to fill); its last component is the project name
    /// unless --name is given
    pub path: PathBuf,

    /// Project name (default: the last component of PATH)
    #[arg(long)]
    pub name: Option<String>,

    /// How the api reaches Python: a loopback TCP port, or a Unix domain socket [default: tcp]
    #[arg(long, value_enum, value_name = "TRANSPORT")]
    pub transport: Option<Transport>,

    /// Loopback port the Python service listens on (tcp transport) [default: 8000]
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub python_port: Option<u16>,

    /// Set any template placeholder, as in `cargo generate --define` (repeatable)
    #[arg(short = 'd', long = "define", value_name = "KEY=VALUE")]
    pub defines: Vec<String>,

    /// Initialize a version control repository
    #[arg(long, value_enum, default_value_t = Vcs::Git)]
    pub vcs: Vcs,
}

#[derive(Debug, Args)]
pub struct RoutesArgs {
    /// Print JSON for scripts instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// Python listens on 127.0.0.1:<python-port>
    Tcp,
    /// Python listens on a Unix domain socket
    Unix,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Unix => "unix",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Vcs {
    /// A fresh git repository, as `cargo new` makes
    Git,
    /// No repository
    None,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[arg(long)]
    pub destination: PathBuf,
    #[arg(long)]
    pub name: String,
    #[arg(long = "define")]
    pub defines: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }
}
