//! Business logic of the service: plain functions over the shared types, no HTTP, no async.

use {{crate_name}}_shared::{Greeting, Language};

/// The greeting served by `GET /hello/rust`.
pub fn greeting_from_rust() -> Greeting {
    Greeting {
        message: "Hello from Rust".to_owned(),
        language: Language::Rust,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_greeting_says_hello_in_rust() {
        let greeting = greeting_from_rust();
        assert_eq!(greeting.message, "Hello from Rust");
        assert_eq!(greeting.language, Language::Rust);
    }
}
