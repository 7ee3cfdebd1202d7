//! Renders the embedded template with the cargo-generate library, in a child process.
//!
//! cargo-generate prints its own progress lines (naming its temporary folders) straight to
//! stderr, reads identity and values from the environment, and keeps process-wide state.
//! Running it as `rspy __render` in a child keeps rspy's output clean, sets its
//! environment without touching ours, and turns any failure into one line of our own.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use cargo_generate::{GenerateArgs, TemplatePath, Vcs};

use crate::error::{Error, Result};
use crate::{template, undo};

/// Variables cargo-generate reads for the author's name; it fails when none is set.
const IDENTITY_VARS: &[&str] = &[
    "CARGO_NAME",
    "GIT_AUTHOR_NAME",
    "GIT_COMMITTER_NAME",
    "USER",
    "USERNAME",
    "NAME",
];

/// Renders the template as project `name` into `destination/<name>`, by running
/// `exe __render` (`exe` is this rspy binary). Its temporary files go to `destination` too,
/// so a missing or read-only `$TMPDIR` does not matter and one removal cleans up everything.
pub fn render(
    exe: &Path,
    destination: &Path,
    name: &str,
    values: &BTreeMap<String, String>,
) -> Result<()> {
    let mut command = Command::new(exe);
    command
        .arg("__render")
        .arg("--destination")
        .arg(destination)
        .arg("--name")
        .arg(name)
        .env("TMPDIR", destination)
        .stdin(Stdio::null());
    for (key, value) in values {
        command.arg("--define").arg(format!("{key}={value}"));
    }
    // cargo-generate takes values from CARGO_GENERATE_VALUE_* too: only our flags count.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CARGO_GENERATE_") {
            command.env_remove(key);
        }
    }
    if !IDENTITY_VARS
        .iter()
        .any(|var| std::env::var_os(var).is_some())
    {
        command.env("CARGO_NAME", "rspy");
    }
    let output = undo::output(&mut command);
    undo::check_interrupted()?;
    let output =
        output.map_err(|e| Error::Render(format!("could not run `{}`: {e}", exe.display())))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last_line = stderr
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("the renderer exited without a message");
    // The child's last line is its own `error: …` from main.
    let message = last_line.trim().trim_start_matches("error: ");
    Err(Error::Render(message.to_owned()))
}

/// The child's side (`rspy __render`): extract the embedded template and let cargo-generate
/// render it, silently, with no git, no workspace edits and no user configuration.
pub fn render_in_this_process(destination: &Path, name: &str, defines: Vec<String>) -> Result<()> {
    let scratch = tempfile::tempdir().map_err(Error::io(
        "creating a temporary folder in",
        std::env::temp_dir(),
    ))?;
    let template_dir = scratch.path().join("template");
    template::extract(&template_dir)?;
    // An empty configuration file stands in for the user's ~/.cargo/cargo-generate.toml,
    // whose favorites and default values must not change what rspy generates.
    let config = scratch.path().join("cargo-generate-config.toml");
    std::fs::write(&config, "").map_err(Error::io("writing", &config))?;

    let args = GenerateArgs {
        template_path: TemplatePath {
            path: Some(template_dir.to_string_lossy().into_owned()),
            ..TemplatePath::default()
        },
        name: Some(name.to_owned()),
        // Keep the name exactly as given (rspy validated it) instead of kebab-casing it.
        force: true,
        silent: true,
        quiet: true,
        vcs: Some(Vcs::None),
        destination: Some(destination.to_path_buf()),
        no_workspace: true,
        no_fmt: true,
        config: Some(config),
        define: defines,
        ..GenerateArgs::default()
    };
    cargo_generate::generate(args)
        .map(drop)
        .map_err(|e| Error::Render(format!("{e:#}")))
}
