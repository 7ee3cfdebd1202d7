//! `rspy routes`: the route table of a project, for people or (with `--json`) for scripts.

use serde::Serialize;

use crate::manifest::{FallbackMode, Manifest, Mode, Route};

/// The table as text: one row per route, then the fallback, upstream and migration progress.
pub fn table(manifest: &Manifest) -> String {
    let rows: Vec<[String; 5]> = manifest
        .routes
        .iter()
        .map(|route| {
            [
                json_name(&route.method),
                route.path.clone(),
                json_name(&route.mode),
                route.handler.clone().unwrap_or_else(|| "-".to_owned()),
                settings(route),
            ]
        })
        .collect();
    let header = ["METHOD", "PATH", "MODE", "HANDLER", "SETTINGS"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    let fallback = match manifest.fallback.mode {
        FallbackMode::Proxy => "proxy (requests no route matches go to Python)",
        FallbackMode::None => "none (requests no route matches get 404 from Rust)",
    };
    out.push_str(&format!(
        "\nfallback: {fallback}\nupstream: {}\n{}",
        manifest.upstream.url,
        progress(manifest),
    ));
    out
}

/// How far the migration is, as one line: `5 routes: 2 native, 3 proxy`.
pub fn progress(manifest: &Manifest) -> String {
    let native = manifest
        .routes
        .iter()
        .filter(|r| r.mode == Mode::Native)
        .count();
    let proxied = manifest.routes.len() - native;
    format!(
        "{} routes: {native} native, {proxied} proxy\n",
        manifest.routes.len()
    )
}

/// The same as JSON, one document, for scripts.
pub fn json(manifest: &Manifest) -> String {
    #[derive(Serialize)]
    struct Table<'a> {
        upstream: &'a str,
        fallback: FallbackMode,
        routes: &'a [Route],
    }
    let table = Table {
        upstream: &manifest.upstream.url,
        fallback: manifest.fallback.mode,
        routes: &manifest.routes,
    };
    let mut out = serde_json::to_string_pretty(&table).expect("the table serializes");
    out.push('\n');
    out
}

/// Per-route settings as `key=value` pairs, `-` when there are none.
fn settings(route: &Route) -> String {
    let timeout = route.timeout_ms.map(|ms| format!("timeout_ms={ms}"));
    let upstream = route
        .upstream_path
        .as_ref()
        .map(|target| format!("upstream_path={target}"));
    let pairs: Vec<String> = timeout.into_iter().chain(upstream).collect();
    if pairs.is_empty() {
        "-".to_owned()
    } else {
        pairs.join(" ")
    }
}

/// A value's name as the manifest (and JSON) spells it.
fn json_name(value: &impl Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
