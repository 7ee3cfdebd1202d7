//! How long the Python server keeps an idle connection open, read from the command that
//! starts it (and, for gunicorn, its config file), and the api's idle timeout that stays
//! below it.
//!
//! The api must close an unused connection before Python does: a request it sends on a
//! connection Python is closing fails with a 502. uvicorn and hypercorn keep connections 5 s,
//! gunicorn 2 s (its threaded and async workers, and uvicorn's worker class run by gunicorn;
//! its sync worker closes every connection after one response).

/// The api's idle timeout when rspy.toml sets none (its build's default).
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 4_000;

/// Python's keep-alive, as the command shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepAlive {
    pub seconds: u64,
    /// Where the figure comes from: the flag that sets it, or the server's default.
    pub source: String,
}

impl KeepAlive {
    /// The api's idle timeout below this keep-alive: a fifth less, and at least half a second
    /// less (1500 ms for 2 s, 4000 ms for 5 s), an hour at most; 0 when Python keeps nothing
    /// open (the api then opens a connection per request).
    pub fn idle_timeout_ms(&self) -> u64 {
        let ms = self.seconds.saturating_mul(1000);
        ms.saturating_sub((ms / 5).max(500))
            .min(MAX_IDLE_TIMEOUT_MS)
    }
}

/// The config file a command names: `Some(Some(path))` for `-c path`, `--config path` or
/// `--config=path`, `Some(None)` when the flag's value is missing, `None` without the flag.
fn config_file<'a>(words: &[&'a str]) -> Option<Option<&'a str>> {
    let mut named = None;
    for (index, word) in words.iter().enumerate() {
        if *word == "-c" || *word == "--config" {
            named = Some(words.get(index + 1).copied());
        } else if let Some(path) = word.strip_prefix("--config=") {
            named = Some(Some(path));
        }
    }
    named
}

/// What a gunicorn config file (Python) sets `keepalive` to.
#[derive(Debug, PartialEq, Eq)]
enum Setting {
    /// A whole number of seconds, written as such.
    Literal(u64),
    /// Something rspy cannot evaluate (`int(os.environ["KEEPALIVE"])`).
    Other,
    Absent,
}

/// The `keepalive` a gunicorn config file (Python) leaves set, as far as rspy can tell without
/// running it: the last top-level `keepalive = N`. Any other mention of the name (indented,
/// annotated, `keepalive *= 2`, `x = 1; keepalive = 9`, `if keepalive:`), a wildcard import or
/// an `exec` makes it unknown from there on; lines within triple-quoted strings are skipped.
fn gunicorn_keepalive(text: &str) -> Setting {
    let mut setting = Setting::Absent;
    let mut in_string = false;
    for line in text.lines() {
        let quotes = line.matches("\"\"\"").count() + line.matches("'''").count();
        if in_string || quotes > 0 {
            in_string ^= quotes % 2 == 1;
            continue;
        }
        let code = line.split('#').next().unwrap_or_default();
        if code.contains("import *") || code.contains("exec(") {
            setting = Setting::Other;
            continue;
        }
        if !mentions(code, "keepalive") {
            continue;
        }
        let value = code
            .strip_prefix("keepalive")
            .and_then(|rest| rest.trim_start().strip_prefix('='))
            .filter(|value| !value.starts_with('='))
            .map(str::trim);
        setting = match value {
            Some(value) if value.starts_with(|c: char| c.is_ascii_digit()) => value
                .replace('_', "")
                .parse()
                .map_or(Setting::Other, Setting::Literal),
            _ => Setting::Other,
        };
    }
    setting
}

/// Whether `code` names `word` as a whole identifier.
fn mentions(code: &str, word: &str) -> bool {
    let is_identifier = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(word).any(|(at, _)| {
        !code[..at].ends_with(is_identifier) && !code[at + word.len()..].starts_with(is_identifier)
    })
}

/// The longest idle timeout rspy writes: past an hour, closing later changes nothing.
const MAX_IDLE_TIMEOUT_MS: u64 = 3_600_000;

/// The keep-alive of the server `command` runs: the value of its flag when the command sets
/// one (the last, as the servers take it); for gunicorn, else the `keepalive` of its config
/// file (`-c FILE`, or `gunicorn.conf.py`, which gunicorn reads by default), read with
/// `read_file` (a path as the command gives it, relative to the folder it runs in); else the
/// server's default. `None` for a server rspy does not know, and for a value it cannot read.
pub fn of_command(command: &str, read_file: impl Fn(&str) -> Option<String>) -> Option<KeepAlive> {
    // Quotes only group words here (`sh -c 'gunicorn ...'`, `--keep-alive '3'`).
    let unquoted = command.replace(['\'', '"'], " ");
    let words: Vec<&str> = unquoted.split_whitespace().collect();
    // Where the server's name is: its options are the words after it (not a shell's `-c`).
    let runs = |server: &str| {
        words.iter().position(|word| {
            let name = word.rsplit('/').next().unwrap_or(word);
            name.strip_prefix(server)
                .is_some_and(|version| version.chars().all(|c| c.is_ascii_digit()))
        })
    };
    // gunicorn first: it may run uvicorn's worker class, which takes gunicorn's keep-alive.
    let (flag, default, server, at) = if let Some(at) = runs("gunicorn") {
        ("--keep-alive", 2, "gunicorn", at)
    } else if let Some(at) = runs("uvicorn") {
        ("--timeout-keep-alive", 5, "uvicorn", at)
    } else if let Some(at) = runs("hypercorn") {
        ("--keep-alive", 5, "hypercorn", at)
    } else {
        return None;
    };
    let words = &words[at + 1..];
    let mut set = None;
    for (index, word) in words.iter().enumerate() {
        let value = match word.strip_prefix(flag) {
            Some("") => words.get(index + 1).copied(),
            Some(rest) => match rest.strip_prefix('=') {
                Some(value) => Some(value),
                None => continue,
            },
            None => continue,
        };
        set = Some(value.and_then(|value| value.parse::<u64>().ok()));
    }
    let config = config_file(words);
    Some(match set {
        Some(Some(seconds)) => KeepAlive {
            seconds,
            source: format!("{flag} {seconds}"),
        },
        Some(None) => return None,
        None if server == "gunicorn" => {
            let name = config.flatten().unwrap_or("gunicorn.conf.py");
            // gunicorn's `-c file:PATH` is PATH (`python:MODULE` is a module: not read).
            let name = name.strip_prefix("file:").unwrap_or(name);
            match read_file(name).map(|text| gunicorn_keepalive(&text)) {
                Some(Setting::Literal(seconds)) => KeepAlive {
                    seconds,
                    source: format!("keepalive = {seconds} in {name}"),
                },
                Some(Setting::Other) => return None,
                Some(Setting::Absent) => KeepAlive {
                    seconds: default,
                    source: format!("gunicorn's default; {name} sets no keepalive"),
                },
                // A file the command names but rspy cannot read (`python:module`, elsewhere).
                None if config.is_some() => KeepAlive {
                    seconds: default,
                    source: "gunicorn's default, unless its config file sets another".to_owned(),
                },
                None => KeepAlive {
                    seconds: default,
                    source: "gunicorn's default".to_owned(),
                },
            }
        }
        None if config.is_some() => KeepAlive {
            seconds: default,
            source: format!("{server}'s default, unless its config file sets another"),
        },
        None => KeepAlive {
            seconds: default,
            source: format!("{server}'s default"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_files(_: &str) -> Option<String> {
        None
    }

    fn seconds_and_source(command: &str) -> Option<(u64, String)> {
        of_command(command, no_files).map(|keep_alive| (keep_alive.seconds, keep_alive.source))
    }

    #[test]
    fn servers_have_their_defaults() {
        for (command, seconds, source) in [
            (
                "python -m uvicorn main:app --port 8000",
                5,
                "uvicorn's default",
            ),
            (
                "python -m gunicorn --bind 127.0.0.1:8000 app:app",
                2,
                "gunicorn's default",
            ),
            (
                "/venv/bin/gunicorn -k uvicorn.workers.UvicornWorker main:app",
                2,
                "gunicorn's default",
            ),
            (
                "hypercorn main:app --bind 127.0.0.1:8000",
                5,
                "hypercorn's default",
            ),
        ] {
            assert_eq!(
                seconds_and_source(command),
                Some((seconds, source.to_owned())),
                "{command}"
            );
        }
    }

    #[test]
    fn the_flag_of_the_server_wins() {
        for (command, seconds) in [
            ("gunicorn --keep-alive 10 app:app", 10),
            ("gunicorn --keep-alive=3 app:app", 3),
            ("python -m uvicorn main:app --timeout-keep-alive 30", 30),
            ("hypercorn --keep-alive 1 main:app", 1),
        ] {
            let keep_alive = of_command(command, no_files).expect("a known server");
            assert_eq!(keep_alive.seconds, seconds, "{command}");
            assert!(
                keep_alive.source.ends_with(&seconds.to_string()),
                "{command}"
            );
        }
        // uvicorn's flag is another one.
        assert_eq!(
            of_command("uvicorn main:app --keep-alive 9", no_files).map(|k| k.seconds),
            Some(5)
        );
    }

    #[test]
    fn quotes_group_words_and_the_last_flag_wins() {
        for (command, seconds) in [
            ("uvicorn app:app --timeout-keep-alive '3'", 3),
            ("sh -c 'exec gunicorn --bind 127.0.0.1:8000 app:app'", 2),
            ("gunicorn --keep-alive 10 app:app --keep-alive=4", 4),
            ("gunicorn3 app:app", 2),
        ] {
            assert_eq!(
                of_command(command, no_files).map(|k| k.seconds),
                Some(seconds),
                "{command}"
            );
        }
        let configured =
            of_command("gunicorn -c gunicorn.conf.py app:app", no_files).expect("known");
        assert_eq!(configured.seconds, 2);
        assert!(
            configured.source.contains("config file"),
            "{}",
            configured.source
        );
    }

    #[test]
    fn other_commands_and_unreadable_values_are_unknown() {
        for command in [
            "python server.py",
            "flask run",
            "python -m myuvicorn_wrapper",
            "gunicorn --keep-alive x app:app",
            "uvicorn app:app --timeout-keep-alive",
        ] {
            assert_eq!(of_command(command, no_files), None, "{command}");
        }
    }

    #[test]
    fn the_default_is_the_apis() {
        let build_rs = include_str!("../../template/crates/api/build.rs");
        let default = "fn default_idle_timeout_ms() -> u64 {\n    4_000\n}";
        assert!(
            build_rs.contains(default),
            "the api's build.rs has no `{default}`"
        );
        assert_eq!(DEFAULT_IDLE_TIMEOUT_MS, 4_000);
    }

    #[test]
    fn the_idle_timeout_stays_below_the_keep_alive() {
        for (seconds, idle) in [
            (0, 0),
            (1, 500),
            (2, 1_500),
            (5, DEFAULT_IDLE_TIMEOUT_MS),
            (75, 60_000),
            (u64::MAX, 3_600_000),
        ] {
            let keep_alive = KeepAlive {
                seconds,
                source: String::new(),
            };
            assert_eq!(keep_alive.idle_timeout_ms(), idle, "{seconds} s");
        }
    }

    #[test]
    fn gunicorn_takes_keepalive_from_its_config_file() {
        let files = |name: &str| match name {
            "gunicorn.conf.py" => {
                Some("bind = '0.0.0.0:8000'\nkeepalive = 10  # seconds\n".to_owned())
            }
            "deploy/gunicorn.py" => Some("workers = 2\nkeepalive=1_0\nkeepalive = 6\n".to_owned()),
            "quiet.py" => Some("workers = 2\n# keepalive = 10\nkeepalive_timeout = 3\n".to_owned()),
            "doc.py" => {
                Some("\"\"\"Settings.\n\nkeepalive = 99\n\"\"\"\nkeepalive = 7\n".to_owned())
            }
            "branch.py" => Some("keepalive = 5\nif DEBUG:\n    keepalive = 0\n".to_owned()),
            "env.py" => Some("keepalive = int(os.environ['KEEPALIVE'])\n".to_owned()),
            _ => None,
        };
        let seconds_and_source = |command: &str| {
            of_command(command, files).map(|keep_alive| (keep_alive.seconds, keep_alive.source))
        };
        // Read by default, when the command names no file.
        assert_eq!(
            seconds_and_source("gunicorn app:app"),
            Some((10, "keepalive = 10 in gunicorn.conf.py".to_owned()))
        );
        // The last assignment of the file the command names.
        for command in [
            "gunicorn -c deploy/gunicorn.py app:app",
            "gunicorn --config deploy/gunicorn.py app:app",
            "gunicorn --config=deploy/gunicorn.py app:app",
        ] {
            assert_eq!(
                seconds_and_source(command),
                Some((6, "keepalive = 6 in deploy/gunicorn.py".to_owned())),
                "{command}"
            );
        }
        // The command line wins over the file, as in gunicorn.
        assert_eq!(
            seconds_and_source("gunicorn --keep-alive 3 app:app").map(|(seconds, _)| seconds),
            Some(3)
        );
        assert_eq!(
            seconds_and_source("gunicorn -c quiet.py app:app"),
            Some((
                2,
                "gunicorn's default; quiet.py sets no keepalive".to_owned()
            ))
        );
        // A value rspy cannot evaluate, or may not be the one set, is unknown.
        assert_eq!(seconds_and_source("gunicorn -c env.py app:app"), None);
        assert_eq!(seconds_and_source("gunicorn -c branch.py app:app"), None);
        for text in [
            "keepalive: int = 10\n",
            "x = 1; keepalive = 9\n",
            "keepalive = 10\nkeepalive *= 2\n",
            "keepalive = 10\nfrom base import *\n",
            "keepalive == 2\n",
            "keepalive = '10'\n",
        ] {
            assert_eq!(gunicorn_keepalive(text), Setting::Other, "{text}");
        }
        assert_eq!(
            seconds_and_source("gunicorn -c file:doc.py app:app"),
            Some((7, "keepalive = 7 in doc.py".to_owned()))
        );
        // A shell's `-c` is not gunicorn's: its default file is still read.
        assert_eq!(
            seconds_and_source("sh -c 'mkdir -p ../run && exec gunicorn app:app'")
                .map(|(seconds, _)| seconds),
            Some(10)
        );
        // uvicorn has no such file: gunicorn.conf.py means nothing to it.
        assert_eq!(
            seconds_and_source("uvicorn main:app").map(|(seconds, _)| seconds),
            Some(5)
        );
    }
}
