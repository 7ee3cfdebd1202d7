//! `GET /hello/rust`: the greeting from the Rust side.

use axum::Json;

use {{crate_name}}_core::greeting_from_rust;
use {{crate_name}}_shared::Greeting;

pub async fn hello_rust() -> Json<Greeting> {
    Json(greeting_from_rust())
}
