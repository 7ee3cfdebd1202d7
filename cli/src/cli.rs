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
    /// Create a new service: a Rust api (axum) in front of Python, both run by supervisord
    New(NewArgs),
    /// Adopt an existing Python service: wrap it in a workspace whose api forwards everything
    Init(InitArgs),
    /// Declare every operation of the Python service's OpenAPI document as a proxied route
    ImportRoutes(ImportRoutesArgs),
    /// Show the route table of the project: method, path, mode, handler, settings, fallback
    Routes(RoutesArgs),
    /// Declare a route: served by Rust (--native) or forwarded to Python (--proxy)
    AddRoute(AddRouteArgs),
    /// Remove a declared route; its requests then go to the fallback
    RemoveRoute(RemoveRouteArgs),
    /// Choose what happens to requests no route matches: forward to Python, or 404 from Rust
    SetFallback(SetFallbackArgs),
    /// Check that the project is consistent: manifest, handlers, route conflicts
    Check,
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
pub struct InitArgs {
    /// The Python project to adopt; its files move into its `python/` folder [default: .]
    pub path: Option<PathBuf>,

    /// Project name (default: the folder's name)
    #[arg(long)]
    pub name: Option<String>,

    /// How the api reaches Python: a loopback TCP port, or a Unix domain socket [default: tcp]
    #[arg(long, value_enum, value_name = "TRANSPORT")]
    pub transport: Option<Transport>,

    /// Loopback port the Python service listens on (tcp transport) [default: 8000]
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub python_port: Option<u16>,

    /// The command that starts the Python service, run in `python/` [default: detected: uvicorn
    /// for an ASGI app, gunicorn for a WSGI app]
    #[arg(long, value_name = "COMMAND")]
    pub python_cmd: Option<String>,

    /// Show every move and new file, and write nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Every operation (GET, PUT, POST, DELETE, OPTIONS, HEAD, PATCH) becomes a `mode = \"proxy\"` route
in rspy.toml, in the document's order; routes already declared are kept as they are, and TRACE
operations are skipped. The document is JSON: OpenAPI 3.x, or Swagger 2.0 (its paths under its
basePath); YAML is not read, so convert it or point at the service's /openapi.json. Nothing is
written unless axum can route every path.")]
pub struct ImportRoutesArgs {
    /// The OpenAPI document, in JSON: a file, or an http:// URL [default: /openapi.json of the
    /// running Python service, at rspy.toml's [upstream] url]
    pub source: Option<String>,

    /// Show the change to rspy.toml as a diff and write nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct RoutesArgs {
    /// Print JSON for scripts instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("mode").required(true).args(["native", "proxy"]))]
pub struct AddRouteArgs {
    /// GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY
    pub method: String,
    /// axum 0.8 syntax: /users/{id}, /files/{*rest}
    pub path: String,
    /// Served by a Rust handler (a new handler starts as a pass-through to Python)
    #[arg(long)]
    pub native: bool,
    /// Forwarded to Python, as a declared part of the API
    #[arg(long)]
    pub proxy: bool,
    /// Handler name, `function` or `module::function` (native) [default: from the path]
    #[arg(long, value_name = "HANDLER")]
    pub name: Option<String>,
    /// How long to wait for Python's response headers, in milliseconds
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// The path Python serves the route under, with the route's parameters: /users/{id}
    #[arg(long, value_name = "PATH")]
    pub upstream_path: Option<String>,
    /// Show the changes as diffs and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Change an existing route's mode or settings; write into a module rspy did not make
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RemoveRouteArgs {
    /// The route's method
    pub method: String,
    /// The route's path, as declared
    pub path: String,
    /// Also delete the handler's module when it has your edits
    #[arg(long)]
    pub force: bool,
    /// Show the changes as diffs and write nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct SetFallbackArgs {
    /// `proxy`: forward to Python (while migrating); `none`: 404 from Rust (when done)
    #[arg(value_enum)]
    pub mode: FallbackArg,
    /// Show the change as a diff and write nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FallbackArg {
    /// Requests no route matches go to Python
    Proxy,
    /// Requests no route matches get 404 from Rust and never reach Python
    None,
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
