//! Embeds `../template` into the binary so `rspy new` works offline, with no git and no
//! copy of this repository: every template file becomes a `(path, bytes)` entry.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

/// Folders a developer may leave in the template by building or testing it in place.
const SKIPPED_DIRS: &[&str] = &[
    "target",
    ".venv",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
];

fn main() {
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template");
    let template = template
        .canonicalize()
        .unwrap_or_else(|e| panic!("cannot read the template at {}: {e}", template.display()));
    println!("cargo:rerun-if-changed={}", template.display());

    let mut files = Vec::new();
    collect(&template, &template, &mut files);
    files.sort();

    let mut out = String::from(
        "/// Every file of the template, as `(relative path, contents)`, sorted by path.\n",
    );
    out.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    for (relative, absolute) in &files {
        writeln!(out, "    ({relative:?}, include_bytes!({absolute:?})),").unwrap();
    }
    out.push_str("];\n");
    let dest = PathBuf::from(env::var_os("OUT_DIR").unwrap()).join("template_files.rs");
    fs::write(&dest, out).unwrap_or_else(|e| panic!("cannot write {}: {e}", dest.display()));
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if !SKIPPED_DIRS.contains(&name.as_ref()) {
                collect(root, &path, files);
            }
        } else if !name.ends_with(".pyc") {
            let relative = path.strip_prefix(root).unwrap();
            let relative = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            files.push((relative, path.display().to_string()));
        }
    }
}
