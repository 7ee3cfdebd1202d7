//! Takes back what a writing command created, on an error or when the user interrupts it.
//!
//! Steps are recorded just before the change they undo, and undone newest first. On Ctrl-C
//! (or SIGTERM) the handler, on its own thread, only raises a flag and kills the child process
//! at work; the command sees the flag at its next step ([`check_interrupted`]) and returns
//! [`Error::Interrupted`], so the undoing happens on the error path, never while the command
//! is still writing. Should the command not get there within two seconds, the handler undoes
//! and exits by itself.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// How long the handler waits for the command to undo its own steps.
const GRACE: Duration = Duration::from_secs(2);

/// One change to take back.
#[derive(Debug)]
enum Step {
    /// A directory that did not exist: removed only while empty, so nothing of anyone
    /// else's that appeared in it meanwhile is lost.
    Dir(PathBuf),
    /// A file or tree that is entirely ours (a staging folder, an entry moved into place).
    Tree(PathBuf),
    /// A file of the user's that is about to be replaced: its contents before.
    Restore(PathBuf, Vec<u8>),
    /// An entry of the user's about to be moved from the first path to the second.
    Moved(PathBuf, PathBuf),
}

static STEPS: Mutex<Vec<Step>> = Mutex::new(Vec::new());
/// The pid of a child process writing into recorded paths (0: none).
static CHILD: AtomicI32 = AtomicI32::new(0);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static HANDLER: Once = Once::new();

fn steps() -> MutexGuard<'static, Vec<Step>> {
    // A panic while holding the lock leaves a valid list; keep using it.
    STEPS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The steps of one command; dropping it without [`Transaction::commit`] undoes them.
#[derive(Debug)]
pub struct Transaction(());

impl Transaction {
    /// Starts recording; on the first call, installs the interrupt handler.
    pub fn begin() -> Self {
        HANDLER.call_once(|| {
            // If a handler cannot be installed, an interrupt leaves the staging folder behind:
            // worth a warning, not a refusal to work.
            if let Err(err) = ctrlc::set_handler(|| {
                INTERRUPTED.store(true, Ordering::SeqCst);
                stop_child();
                std::thread::sleep(GRACE);
                undo_all();
                std::process::exit(Error::Interrupted.exit_code().into());
            }) {
                eprintln!("warning: cannot clean up on Ctrl-C: {err}");
            }
        });
        Self(())
    }

    /// Records that `dir` is about to be created (it does not exist yet).
    pub fn created_dir(&self, dir: PathBuf) {
        steps().push(Step::Dir(dir));
    }

    /// Records that `path` is about to be made, entirely by this command.
    pub fn created_tree(&self, path: PathBuf) {
        steps().push(Step::Tree(path));
    }

    /// Records that `path`, whose contents are `original`, is about to be replaced.
    pub fn replacing_file(&self, path: PathBuf, original: Vec<u8>) {
        steps().push(Step::Restore(path, original));
    }

    /// Records that `from` is about to be renamed to `to`.
    pub fn moving(&self, from: PathBuf, to: PathBuf) {
        steps().push(Step::Moved(from, to));
    }

    /// Keeps everything recorded.
    pub fn commit(self) {
        steps().clear();
        std::mem::forget(self);
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        undo_all();
    }
}

/// `Err(Error::Interrupted)` once the user has interrupted the command.
pub fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}

/// Runs `command` to completion with its output captured, as the child that an interrupt
/// kills first.
pub fn output(command: &mut Command) -> io::Result<Output> {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    CHILD.store(i32::try_from(child.id()).unwrap_or(0), Ordering::SeqCst);
    let output = child.wait_with_output();
    CHILD.store(0, Ordering::SeqCst);
    output
}

/// Kills the child, if any, and waits (at most a second) until it has exited, so that it
/// cannot recreate what is about to be removed.
fn stop_child() {
    let pid = CHILD.swap(0, Ordering::SeqCst);
    if pid == 0 || kill(Pid::from_raw(pid), Signal::SIGKILL).is_err() {
        return;
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        // Gone, or a zombie waiting for the main thread to reap it: either way, done writing.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) if !stat.contains(") Z ") => std::thread::sleep(Duration::from_millis(5)),
            _ => return,
        }
    }
}

fn undo_all() {
    let mut steps = steps();
    while let Some(step) = steps.pop() {
        // Best effort: what cannot be removed is still better left than panicking over.
        let _ = match step {
            Step::Dir(dir) => fs::remove_dir(dir),
            Step::Tree(path) if path.is_dir() => fs::remove_dir_all(path),
            Step::Tree(path) => fs::remove_file(path),
            Step::Restore(path, original) => fs::write(path, original),
            // Only if the move happened: the source is free and the target is there.
            Step::Moved(from, to)
                if fs::symlink_metadata(&from).is_err() && fs::symlink_metadata(&to).is_ok() =>
            {
                fs::rename(to, from)
            }
            Step::Moved(..) => Ok(()),
        };
    }
}
