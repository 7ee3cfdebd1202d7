//! Plans: the files a command would create, change or delete, shown before anything is
//! written (`--dry-run` prints them as unified diffs) and then applied all at once.
//!
//! Applying writes each new file beside its target and renames it into place, recording
//! every step in an undo transaction: if any step fails, or the user interrupts, every file
//! is back as it was.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use similar::TextDiff;

use crate::error::{Error, Result};
use crate::undo::{Transaction, check_interrupted};

/// One file's change. `None` means the file does not exist (before) or is deleted (after).
#[derive(Debug, Clone)]
pub struct Change {
    /// Relative to the project root, slash-separated: how the change is shown.
    pub path: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// The changes of one command, relative to a project root.
#[derive(Debug, Clone)]
pub struct Plan {
    root: PathBuf,
    changes: Vec<Change>,
}

impl Plan {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            changes: Vec::new(),
        }
    }

    /// Reads `path` (relative to the root) as the plan sees it: with this plan's earlier
    /// changes applied. `None` when it does not exist.
    pub fn read(&self, path: &str) -> Result<Option<String>> {
        if let Some(change) = self.changes.iter().rev().find(|c| c.path == path) {
            return Ok(change.after.clone());
        }
        let absolute = self.root.join(path);
        match fs::read_to_string(&absolute) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading", absolute)(e)),
        }
    }

    /// Sets `path` (relative to the root) to `after` (`None`: delete it).
    pub fn set(&mut self, path: &str, after: Option<String>) -> Result<()> {
        if let Some(change) = self.changes.iter_mut().find(|c| c.path == path) {
            change.after = after;
            return Ok(());
        }
        let before = self.read(path)?;
        self.changes.push(Change {
            path: path.to_owned(),
            before,
            after,
        });
        Ok(())
    }

    /// The changes that change something, in the order they were planned.
    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.before != c.after)
    }

    /// Whether applying would leave every file as it is.
    pub fn is_empty(&self) -> bool {
        self.changes().next().is_none()
    }

    /// Unified diffs of every change, as `git diff` shows them.
    pub fn diff(&self) -> String {
        let mut out = String::new();
        for change in self.changes() {
            let before = change.before.as_deref().unwrap_or("");
            let after = change.after.as_deref().unwrap_or("");
            let old = if change.before.is_some() {
                format!("a/{}", change.path)
            } else {
                "/dev/null".to_owned()
            };
            let new = if change.after.is_some() {
                format!("b/{}", change.path)
            } else {
                "/dev/null".to_owned()
            };
            let diff = TextDiff::from_lines(before, after);
            write!(
                out,
                "{}",
                diff.unified_diff().context_radius(3).header(&old, &new)
            )
            .unwrap();
        }
        out
    }

    /// One line per changed file: `created`, `changed` or `deleted`, and its path.
    pub fn summary(&self) -> String {
        self.changes()
            .map(|change| {
                let verb = match (&change.before, &change.after) {
                    (None, _) => "created",
                    (_, None) => "deleted",
                    _ => "changed",
                };
                format!("  {verb} {}\n", change.path)
            })
            .collect()
    }

    /// Writes every change, or none: on any failure or an interrupt, every file is restored.
    pub fn apply(self) -> Result<()> {
        let transaction = Transaction::begin();
        for change in self.changes.iter().filter(|c| c.before != c.after) {
            check_interrupted()?;
            let target = self.root.join(&change.path);
            match (&change.before, &change.after) {
                (Some(before), _) => {
                    transaction.replacing_file(target.clone(), before.clone().into_bytes())
                }
                (None, _) => transaction.created_tree(target.clone()),
            }
            match &change.after {
                Some(contents) => write_file(&target, contents)?,
                None => fs::remove_file(&target).map_err(Error::io("deleting", &target))?,
            }
        }
        check_interrupted()?;
        transaction.commit();
        Ok(())
    }
}

/// Writes `contents` beside `target` and renames it into place, so a reader never sees half
/// a file. The parent folder must exist.
fn write_file(target: &Path, contents: &str) -> Result<()> {
    let parent = target.parent().unwrap_or(Path::new("."));
    let mut temporary = tempfile::Builder::new()
        .prefix(".rspy-write-")
        .tempfile_in(parent)
        .map_err(Error::io("writing into", parent))?;
    std::io::Write::write_all(&mut temporary, contents.as_bytes())
        .map_err(Error::io("writing", target))?;
    // A temporary file is private (0600); the result keeps the mode of the file it replaces,
    // and a new file gets the usual 0644.
    let mode = fs::metadata(target).map_or(0o644, |meta| meta.permissions().mode());
    temporary
        .as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(Error::io("writing", target))?;
    temporary
        .persist(target)
        .map_err(|e| Error::io("writing", target)(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Undo steps are process-wide (the Ctrl-C handler must see them): a test whose apply
    /// fails would otherwise undo the other test's writes when both run at once.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    #[test]
    fn written_files_get_the_usual_mode_or_keep_their_own() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("kept.sh");
        fs::write(&kept, "old\n").unwrap();
        fs::set_permissions(&kept, fs::Permissions::from_mode(0o755)).unwrap();
        let mut plan = Plan::new(dir.path());
        plan.set("kept.sh", Some("new\n".to_owned())).unwrap();
        plan.set("new.rs", Some("fn f() {}\n".to_owned())).unwrap();
        plan.apply().unwrap();
        let mode = |name: &str| {
            fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode()
        };
        assert_eq!(mode("kept.sh") & 0o777, 0o755);
        assert_eq!(mode("new.rs") & 0o777, 0o644);
    }

    #[test]
    fn plans_show_diffs_and_apply_all_changes() {
        let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("kept.txt"), "one\ntwo\n").unwrap();
        fs::write(dir.path().join("gone.txt"), "bye\n").unwrap();
        let mut plan = Plan::new(dir.path());
        plan.set("kept.txt", Some("one\n2\n".to_owned())).unwrap();
        plan.set("new.txt", Some("hello\n".to_owned())).unwrap();
        plan.set("gone.txt", None).unwrap();
        plan.set("same.txt", None).unwrap();

        let diff = plan.diff();
        assert!(diff.contains("--- a/kept.txt\n+++ b/kept.txt\n"), "{diff}");
        assert!(diff.contains("-two\n+2\n"), "{diff}");
        assert!(diff.contains("--- /dev/null\n+++ b/new.txt\n"), "{diff}");
        assert!(diff.contains("--- a/gone.txt\n+++ /dev/null\n"), "{diff}");
        assert_eq!(
            plan.summary(),
            "  changed kept.txt\n  created new.txt\n  deleted gone.txt\n"
        );

        plan.apply().unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("kept.txt")).unwrap(),
            "one\n2\n"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("new.txt")).unwrap(),
            "hello\n"
        );
        assert!(!dir.path().join("gone.txt").exists());
    }

    #[test]
    fn a_failed_apply_restores_every_file() {
        let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.txt"), "original\n").unwrap();
        let mut plan = Plan::new(dir.path());
        plan.set("a.txt", Some("changed\n".to_owned())).unwrap();
        plan.set("b.txt", Some("new\n".to_owned())).unwrap();
        // Its folder does not exist: the third write fails after two succeeded.
        plan.set("missing/c.txt", Some("never\n".to_owned()))
            .unwrap();

        assert!(plan.apply().is_err());
        assert_eq!(
            fs::read_to_string(dir.path().join("a.txt")).unwrap(),
            "original\n"
        );
        assert!(!dir.path().join("b.txt").exists());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.txt"], "no temporary files left");
    }
}
