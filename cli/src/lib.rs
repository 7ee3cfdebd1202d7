//! rspy: scaffold and migrate Rust-first, Python-assisted services.
//!
//! `main.rs` parses the command line and maps errors to exit codes; everything else lives
//! here, one module per command.

mod check;
pub mod cli;
mod detect;
mod edit_routes;
pub mod error;
mod fetch;
mod import_routes;
mod init;
mod keep_alive;
pub mod manifest;
pub mod name;
pub mod new;
pub mod plan;
mod render;
pub mod route;
pub mod routes;
pub mod template;
mod undo;

use std::io::IsTerminal;
use std::time::Duration;

use cli::{Cli, Command};
use error::{Error, Result};

/// Runs one rspy command to completion, printing its results to stdout.
pub fn run(cli: Cli) -> Result<()> {
    if let Some(dir) = &cli.directory {
        std::env::set_current_dir(dir).map_err(|e| Error::BadDirectory {
            path: dir.clone(),
            reason: e.to_string(),
        })?;
    }
    match cli.command {
        Command::New(args) => {
            let exe = std::env::current_exe()
                .map_err(|e| Error::Render(format!("cannot locate the rspy binary: {e}")))?;
            let spinner = spinner(&format!("Creating `{}`", args.path.display()));
            let result = new::run(&args, &exe);
            spinner.finish_and_clear();
            print!("{}", next_steps(&result?));
            Ok(())
        }
        Command::Init(args) => {
            let exe = std::env::current_exe()
                .map_err(|e| Error::Render(format!("cannot locate the rspy binary: {e}")))?;
            let spinner = spinner("Adopting the Python service");
            let result = init::run(&args, &exe);
            spinner.finish_and_clear();
            print!("{}", result?);
            Ok(())
        }
        Command::ImportRoutes(args) => import_routes::run(&args),
        Command::Routes(args) => {
            let cwd =
                std::env::current_dir().map_err(Error::io("reading", "the current directory"))?;
            let project = manifest::Project::find(&cwd)?;
            let out = if args.json {
                routes::json(&project.manifest)
            } else {
                routes::table(&project.manifest)
            };
            print!("{out}");
            Ok(())
        }
        Command::AddRoute(args) => {
            let request = edit_routes::AddRoute {
                method: args.method,
                path: args.path,
                mode: if args.native {
                    manifest::Mode::Native
                } else {
                    manifest::Mode::Proxy
                },
                name: args.name,
                timeout_ms: args.timeout,
                upstream_path: args.upstream_path,
                force: args.force,
            };
            let planned = edit_routes::add(&current_project()?, &request)?;
            let verbs = if planned.changes_existing {
                ("change", "Changed")
            } else {
                ("add", "Added")
            };
            report(planned, args.dry_run, verbs)
        }
        Command::RemoveRoute(args) => {
            let planned =
                edit_routes::remove(&current_project()?, &args.method, &args.path, args.force)?;
            report(planned, args.dry_run, ("remove", "Removed"))
        }
        Command::SetFallback(args) => {
            let mode = match args.mode {
                cli::FallbackArg::Proxy => manifest::FallbackMode::Proxy,
                cli::FallbackArg::None => manifest::FallbackMode::None,
            };
            let planned = edit_routes::set_fallback(&current_project()?, mode)?;
            report(planned, args.dry_run, ("set", "Set"))
        }
        Command::Check => {
            let project = current_project()?;
            let problems = check::problems(&project);
            if problems.is_empty() {
                let routes = &project.manifest.routes;
                let native = routes
                    .iter()
                    .filter(|r| r.mode == manifest::Mode::Native)
                    .count();
                println!(
                    "ok: {} routes ({native} native, {} proxy), every native handler found, no conflicts",
                    routes.len(),
                    routes.len() - native
                );
                Ok(())
            } else {
                for problem in &problems {
                    eprintln!("problem: {problem}");
                }
                Err(Error::CheckFailed(problems.len()))
            }
        }
        Command::Render(args) => {
            render::render_in_this_process(&args.destination, &args.name, args.defines)
        }
    }
}

/// The project the current directory is in.
pub(crate) fn current_project() -> Result<manifest::Project> {
    let cwd = std::env::current_dir().map_err(Error::io("reading", "the current directory"))?;
    manifest::Project::find(&cwd)
}

/// Shows a planned route change (`--dry-run`), or applies it and says what changed.
fn report(planned: edit_routes::Planned, dry_run: bool, (verb, done): (&str, &str)) -> Result<()> {
    let edit_routes::Planned {
        plan,
        route,
        description,
        notes,
        ..
    } = planned;
    let mut out = if plan.is_empty() {
        format!("Unchanged: {route} is {description}.\n")
    } else if dry_run {
        format!(
            "Would {verb} {route} ({description}):\n\n{}\nNothing was written (--dry-run).\n",
            plan.diff()
        )
    } else {
        let summary = plan.summary();
        plan.apply()?;
        format!(
            "{done} {route} ({description}):\n{summary}Rebuild the api (`cargo build`) to serve the change.\n"
        )
    };
    for note in notes {
        out.push_str(&note);
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

/// A spinner on stderr while on a terminal; hidden otherwise, so logs and pipes stay clean.
fn spinner(message: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let spinner = indicatif::ProgressBar::new_spinner().with_message(message.to_owned());
    spinner.enable_steady_tick(Duration::from_millis(80));
    spinner
}

/// The closing message of `rspy new`: what was made and how to run it.
fn next_steps(created: &new::Created) -> String {
    let path = created.path.display();
    let python = if created.values["transport"] == "unix" {
        "on the Unix socket run/python.sock".to_owned()
    } else {
        format!("on 127.0.0.1:{}", created.values["python_port"])
    };
    let cd = if created.is_current_dir {
        String::new()
    } else {
        format!("  cd {path}\n")
    };
    let git = if created.git_initialized {
        ", with a git repository"
    } else {
        ""
    };
    let name = &created.name;
    format!(
        "Created service `{name}` in `{path}`{git}.\n\
         Its Rust api listens on port 8080, with Python behind it {python}.\n\
         \n\
         Next steps:\n\
         {cd}\
         \x20 cargo build --release\n\
         \x20 python3 -m venv .venv && . .venv/bin/activate && pip install ./python supervisor\n\
         \x20 supervisord -c deploy/supervisord.conf\n\
         \x20 curl http://127.0.0.1:8080/hello/rust      # answered by Rust\n\
         \x20 curl http://127.0.0.1:8080/hello/python    # forwarded to Python\n",
    )
}
