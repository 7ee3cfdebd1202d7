//! Project names: what `rspy new` accepts, and why it refuses the rest.

use crate::error::{Error, Result};

/// Longest accepted name: it ends up in a Unix socket path (at most 107 bytes) and in
/// container and package names.
const MAX_LEN: usize = 64;

use crate::route::RUST_KEYWORDS;

/// Checks that `name` can name the generated crates (`<name>-api`, `<name>_core`, ...), the
/// Python distribution and the container image.
pub fn validate(name: &str) -> Result<()> {
    let invalid = |reason: &str, hint: &str| Error::InvalidName {
        name: name.to_owned(),
        reason: reason.to_owned(),
        hint: hint.to_owned(),
    };
    let Some(first) = name.chars().next() else {
        return Err(invalid(
            "the name is empty",
            "give a name such as `my-service`",
        ));
    };
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        let reason = if bad.is_ascii_uppercase() {
            "names are lowercase (they name crates, a Python package and a container image)"
                .to_owned()
        } else {
            format!("`{bad}` is not allowed; use lowercase letters, digits, `-` and `_`")
        };
        let suggestion = suggest(name);
        return Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
            hint: format!("try `{suggestion}`"),
        });
    }
    if !first.is_ascii_lowercase() {
        return Err(invalid(
            "a name must start with a lowercase ASCII letter",
            "try a name such as `my-service`",
        ));
    }
    // cargo-generate's `crate_name` snake-cases the name, which collapses and trims
    // separators: `demo-` would give the package `demo--api` but the crate `demo_api`.
    let separator = |c: char| c == '-' || c == '_';
    if name.ends_with(separator) || has_adjacent_separators(name) {
        return Err(Error::InvalidName {
            name: name.to_owned(),
            reason: "`-` and `_` go singly between letters or digits".to_owned(),
            hint: format!("try `{}`", suggest(name)),
        });
    }
    if name.len() > MAX_LEN {
        return Err(invalid(
            &format!(
                "it is {} characters long, the limit is {MAX_LEN}",
                name.len()
            ),
            "choose a shorter name",
        ));
    }
    let crate_name = name.replace('-', "_");
    if RUST_KEYWORDS.contains(&crate_name.as_str()) {
        return Err(invalid(
            "it is a Rust keyword",
            &format!("try `{name}-service`"),
        ));
    }
    Ok(())
}

fn has_adjacent_separators(name: &str) -> bool {
    name.as_bytes()
        .windows(2)
        .any(|pair| matches!(pair, [b'-' | b'_', b'-' | b'_']))
}

/// A name close to `name` that passes [`validate`], for the hint in an error message.
fn suggest(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        match c {
            'a'..='z' | '0'..='9' => out.push(c),
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            '_' if !out.ends_with(['-', '_']) => out.push('_'),
            _ if !out.ends_with(['-', '_']) => out.push('-'),
            _ => {}
        }
    }
    let out = out
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '_')
        .trim_end_matches(['-', '_']);
    let out: String = out.chars().take(MAX_LEN - "-service".len()).collect();
    if out.is_empty() {
        "my-service".to_owned()
    } else if RUST_KEYWORDS.contains(&out.replace('-', "_").as_str()) {
        format!("{out}-service")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_crate_like_names() {
        for name in ["demo", "my-service", "my_service2", "a", "a-b_c", "v2-api"] {
            assert!(validate(name).is_ok(), "{name} should be accepted");
        }
    }

    #[test]
    fn refuses_keywords_and_bad_characters() {
        for name in [
            "",
            "fn",
            "self",
            "9lives",
            "-x",
            "_x",
            "My-Service",
            "a b",
            "café",
            "a.b",
        ] {
            assert!(validate(name).is_err(), "{name:?} should be refused");
        }
        assert!(validate(&"a".repeat(MAX_LEN + 1)).is_err());
    }

    #[test]
    fn suggestions_are_valid_names() {
        for name in [
            "My Service",
            "a.b",
            "9lives",
            "@@@",
            "Hello_World!",
            "FN",
            "demo-",
            "a__b",
            "a-_b",
        ] {
            let suggestion = suggest(name);
            assert!(validate(&suggestion).is_ok(), "{name:?} -> {suggestion:?}");
        }
    }
}
