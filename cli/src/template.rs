//! The cargo-generate template embedded in the binary, and the placeholders it declares.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

include!(concat!(env!("OUT_DIR"), "/template_files.rs"));

/// The template's own settings file, which declares the placeholders.
const CONFIG_FILE: &str = "cargo-generate.toml";

/// Writes every embedded template file below `dir`.
pub fn extract(dir: &Path) -> Result<()> {
    for (relative, contents) in FILES {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(Error::io("creating", parent))?;
        }
        fs::write(&path, contents).map_err(Error::io("writing", &path))?;
    }
    Ok(())
}

/// One `[placeholders.<key>]` entry of the template's `cargo-generate.toml`.
#[derive(Debug, Deserialize)]
pub struct Placeholder {
    #[serde(default)]
    pub choices: Vec<String>,
    pub regex: Option<String>,
    pub default: Option<String>,
    pub prompt: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Config {
    #[serde(default)]
    placeholders: BTreeMap<String, Placeholder>,
}

/// The placeholders the embedded template declares, by key.
pub fn placeholders() -> BTreeMap<String, Placeholder> {
    let (_, bytes) = FILES
        .iter()
        .find(|(path, _)| *path == CONFIG_FILE)
        .expect("the embedded template has a cargo-generate.toml (checked by tests)");
    let text = std::str::from_utf8(bytes).expect("cargo-generate.toml is UTF-8");
    let config: Config =
        toml::from_str(text).expect("cargo-generate.toml parses (checked by tests)");
    config.placeholders
}

impl Placeholder {
    /// Checks `value` the way cargo-generate would, so a bad value is refused before
    /// anything is written, with a message of our own.
    pub fn check(&self, key: &str, value: &str) -> Result<()> {
        let invalid = |reason: String| Error::InvalidPlaceholder {
            key: key.to_owned(),
            value: value.to_owned(),
            reason,
        };
        if !self.choices.is_empty() && !self.choices.iter().any(|c| c == value) {
            return Err(invalid(format!(
                "choose one of {}",
                self.choices.join(", ")
            )));
        }
        if let Some(pattern) = &self.regex {
            let regex =
                regex::Regex::new(pattern).expect("placeholder regexes compile (checked by tests)");
            if !regex.is_match(value) {
                let expected = self
                    .prompt
                    .clone()
                    .unwrap_or_else(|| format!("a value matching `{pattern}`"));
                return Err(invalid(format!("expected {}", lowercase_first(&expected))));
            }
        }
        Ok(())
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeds_the_template_config_and_placeholders() {
        let placeholders = placeholders();
        assert_eq!(placeholders["transport"].choices, ["tcp", "unix"]);
        assert_eq!(placeholders["python_port"].default.as_deref(), Some("8000"));
    }

    #[test]
    fn placeholder_defaults_pass_their_own_checks() {
        for (key, placeholder) in placeholders() {
            let default = placeholder
                .default
                .clone()
                .expect("every placeholder has a default");
            placeholder.check(&key, &default).unwrap();
        }
    }

    #[test]
    fn python_port_range_is_enforced() {
        let port = &placeholders()["python_port"];
        for good in ["1", "8000", "65535"] {
            assert!(port.check("python_port", good).is_ok(), "{good}");
        }
        for bad in ["0", "65536", "80a", "", "-1", "08000"] {
            assert!(port.check("python_port", bad).is_err(), "{bad}");
        }
    }
}
