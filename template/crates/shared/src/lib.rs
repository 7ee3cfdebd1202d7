//! Serde types shared by the api and core crates: the shapes that cross the HTTP boundary.

use serde::{Deserialize, Serialize};

/// A greeting, as served by `GET /hello/rust` (and, in the same shape, by Python's
/// `GET /hello/python`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Greeting {
    pub message: String,
    pub language: Language,
}

/// The language a response was produced in, so clients can tell which side answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Rust,
    Python,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_serializes_with_lowercase_language() {
        let greeting = Greeting {
            message: "Hello from Rust".to_owned(),
            language: Language::Rust,
        };
        let json = serde_json::to_value(&greeting).expect("a greeting serializes");
        assert_eq!(
            json,
            serde_json::json!({"message": "Hello from Rust", "language": "rust"})
        );
    }

    #[test]
    fn python_greeting_deserializes() {
        let json = r#"{"message": "Hello from Python", "language": "python"}"#;
        let greeting: Greeting = serde_json::from_str(json).expect("the Python shape parses");
        assert_eq!(greeting.language, Language::Python);
    }
}
