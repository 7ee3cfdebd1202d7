//! In-process Prometheus metrics: `Metrics` counts every request and upstream failure, and
//! `render` writes them in the text exposition format (served with `CONTENT_TYPE`).
//!
//! Four families, all prefixed `api_`:
//! - `api_requests_total{route, mode, status}`: requests by route pattern, `native` or
//!   `proxy`, and status class (`2xx`, ...).
//! - `api_request_duration_seconds{route, mode}`: a latency histogram per route and mode.
//! - `api_upstream_errors_total{kind}`: failed forwards, every kind rendered from the start.
//! - `api_upstream_ready`: 1 while Python answers the readiness probe, else 0.
//!
//! No metrics crate: four fixed families need no registry, recording is a read lock and three
//! relaxed atomic adds, and the exposition format is a page of code. Each worker thread
//! records into a shard of its own (see [`Metrics::for_worker`]), so two threads never write
//! to the same counters; `render` adds the shards up.

use std::{
    collections::HashMap,
    fmt::Write as _,
    sync::{
        Arc, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

/// The content type to serve `Metrics::render` with.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the latency buckets, in nanoseconds, with their `le` label; `+Inf` is
/// implied. From 1 ms (a native answer) to 10 s (a slow upstream).
const BUCKETS: [(u64, &str); 13] = [
    (1_000_000, "0.001"),
    (2_500_000, "0.0025"),
    (5_000_000, "0.005"),
    (10_000_000, "0.01"),
    (25_000_000, "0.025"),
    (50_000_000, "0.05"),
    (100_000_000, "0.1"),
    (250_000_000, "0.25"),
    (500_000_000, "0.5"),
    (1_000_000_000, "1"),
    (2_500_000_000, "2.5"),
    (5_000_000_000, "5"),
    (10_000_000_000, "10"),
];

/// The `status` label of each class, indexed by `status / 100 - 1`.
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Whether Rust answered or the request was forwarded to Python.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Native,
    Proxy,
}

impl Mode {
    /// Both modes, in the order they are rendered.
    const ALL: [Self; 2] = [Self::Native, Self::Proxy];

    /// Who answered `response`: the mode the proxy marked it with, else Rust.
    pub fn of(response: &axum::response::Response) -> Self {
        response
            .extensions()
            .get::<Self>()
            .copied()
            .unwrap_or(Self::Native)
    }

    /// The `mode` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Proxy => "proxy",
        }
    }

    const fn index(self) -> usize {
        match self {
            Self::Native => 0,
            Self::Proxy => 1,
        }
    }
}

/// Why a forwarded request failed, as the api reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpstreamError {
    Unavailable,
    Timeout,
    BadGateway,
    Overloaded,
    BodyTooLarge,
}

impl UpstreamError {
    /// Every kind, in the order they are rendered (sorted by label).
    const ALL: [Self; 5] = [
        Self::BadGateway,
        Self::BodyTooLarge,
        Self::Overloaded,
        Self::Timeout,
        Self::Unavailable,
    ];

    /// The `kind` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::BadGateway => "bad_gateway",
            Self::Overloaded => "overloaded",
            Self::BodyTooLarge => "body_too_large",
        }
    }

    const fn index(self) -> usize {
        match self {
            Self::Unavailable => 0,
            Self::Timeout => 1,
            Self::BadGateway => 2,
            Self::Overloaded => 3,
            Self::BodyTooLarge => 4,
        }
    }
}

/// Every metric of the api: a cheap handle (clone it freely) on counters shared by all its
/// clones, recording into one shard of them.
#[derive(Debug, Clone)]
pub struct Metrics {
    shards: Arc<[Shard]>,
    /// The shard this handle records into.
    mine: usize,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::with_shards(1)
    }
}

/// One worker's counters. Aligned to two cache lines so that neighbouring shards never share
/// one: a shared line would bounce between the cores at every request.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    /// Per mode, each route's series. Read-mostly: the write lock is taken only the first
    /// time a route is seen in that mode, and lookups by `&str` allocate nothing.
    requests: [RwLock<HashMap<Box<str>, Series>>; 2],
    /// Indexed by `UpstreamError::index`.
    upstream_errors: [AtomicU64; 5],
}

/// The counters of one route and mode. Relaxed atomics: each value is exact on its own, but
/// a render concurrent with recording may see one request in some counters and not yet in
/// others, which scrapes tolerate.
#[derive(Debug, Default)]
struct Series {
    /// Indexed like `STATUS_CLASSES`.
    statuses: [AtomicU64; 5],
    /// Per bucket, the requests above the previous bound and at most this one (not
    /// cumulative, so recording adds to one counter); the last is above every bound. Their
    /// total is the histogram's count, so its `+Inf` bucket and `_count` always agree.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    /// Total latency in nanoseconds: wraps only after 584 years of it.
    sum_nanos: AtomicU64,
}

impl Series {
    fn record(&self, status: u16, latency: Duration) {
        self.statuses[status_class(status)].fetch_add(1, Relaxed);
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        // Prometheus buckets are inclusive: `le` means at most.
        let bucket = BUCKETS.partition_point(|&(bound, _)| bound < nanos);
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(nanos, Relaxed);
    }

    fn snapshot(&self, route: &str, mode: Mode) -> Snapshot {
        Snapshot {
            route: route.to_owned(),
            mode,
            statuses: self.statuses.each_ref().map(|count| count.load(Relaxed)),
            buckets: self.buckets.each_ref().map(|count| count.load(Relaxed)),
            sum_nanos: self.sum_nanos.load(Relaxed),
        }
    }
}

/// A copy of one `Series` (or the sum of one route and mode's series over all shards), taken
/// so rendering holds no lock.
struct Snapshot {
    route: String,
    mode: Mode,
    statuses: [u64; 5],
    buckets: [u64; BUCKETS.len() + 1],
    sum_nanos: u64,
}

impl Snapshot {
    fn add(&mut self, other: &Self) {
        for (sum, count) in self.statuses.iter_mut().zip(other.statuses) {
            *sum += count;
        }
        for (sum, count) in self.buckets.iter_mut().zip(other.buckets) {
            *sum += count;
        }
        self.sum_nanos = self.sum_nanos.wrapping_add(other.sum_nanos);
    }
}

impl Metrics {
    /// Metrics with a single shard: enough for one thread, or for tests.
    pub fn new() -> Self {
        Self::default()
    }

    /// Metrics with `count` shards (at least one), one per worker thread; this handle records
    /// into the first. Give each worker its own with [`Metrics::for_worker`].
    pub fn with_shards(count: usize) -> Self {
        Self {
            shards: (0..count.max(1)).map(|_| Shard::default()).collect(),
            mine: 0,
        }
    }

    /// A handle on the same metrics that records into shard `number` (wrapping around if
    /// there are fewer shards).
    pub fn for_worker(&self, number: usize) -> Self {
        Self {
            shards: Arc::clone(&self.shards),
            mine: number % self.shards.len(),
        }
    }

    /// One finished request: `route` is the matched route pattern (e.g. "/users/{id}") or
    /// "fallback" for requests no route matched; never the raw path (label cardinality).
    /// Statuses outside 100..=599 (which no client understands) count as `5xx`.
    pub fn record_request(&self, route: &str, mode: Mode, status: u16, latency: Duration) {
        let requests = &self.shards[self.mine].requests[mode.index()];
        // A poisoned lock still guards a whole map: a panic cannot interrupt an insert
        // half-way in a way that matters to counters.
        if let Some(series) = requests
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(route)
        {
            series.record(status, latency);
            return;
        }
        requests
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(route.into())
            .or_default()
            .record(status, latency);
    }

    pub fn record_upstream_error(&self, kind: UpstreamError) {
        self.shards[self.mine].upstream_errors[kind.index()].fetch_add(1, Relaxed);
    }

    /// Everything in the Prometheus text exposition format (version 0.0.4), with # HELP and
    /// # TYPE lines. Series are sorted by their labels, so equal counts give equal text.
    /// `upstream_ready` is the gauge's value: whether Python answered the last readiness
    /// probe, which the upstream already keeps.
    pub fn render(&self, upstream_ready: bool) -> String {
        let mut snapshots: Vec<Snapshot> = Vec::new();
        for shard in self.shards.iter() {
            for mode in Mode::ALL {
                let requests = shard.requests[mode.index()]
                    .read()
                    .unwrap_or_else(PoisonError::into_inner);
                snapshots.extend(
                    requests
                        .iter()
                        .map(|(route, series)| series.snapshot(route, mode)),
                );
            }
        }
        snapshots.sort_unstable_by(|a, b| {
            (a.route.as_str(), a.mode.index()).cmp(&(b.route.as_str(), b.mode.index()))
        });
        // One series per route and mode, whichever shards counted it.
        snapshots.dedup_by(|next, kept| {
            let same = next.route == kept.route && next.mode == kept.mode;
            if same {
                kept.add(next);
            }
            same
        });

        let mut out = String::with_capacity(1024 + snapshots.len() * 2048);

        header(
            &mut out,
            "api_requests_total",
            "counter",
            "Requests answered, by route pattern, mode and status class.",
        );
        for s in &snapshots {
            let (route, mode) = (s.route.as_str(), s.mode.as_str());
            for (class, &count) in STATUS_CLASSES.iter().zip(&s.statuses) {
                // Classes never seen are left out, like any label value never seen.
                if count > 0 {
                    let labels = [("route", route), ("mode", mode), ("status", class)];
                    sample(&mut out, "api_requests_total", &labels, count);
                }
            }
        }

        header(
            &mut out,
            "api_request_duration_seconds",
            "histogram",
            "Time from request to response headers, by route pattern and mode.",
        );
        for s in &snapshots {
            let (route, mode) = (s.route.as_str(), s.mode.as_str());
            let mut cumulative = 0;
            let bounds = BUCKETS.iter().map(|&(_, le)| le).chain(["+Inf"]);
            for (le, &count) in bounds.zip(&s.buckets) {
                cumulative += count;
                let labels = [("route", route), ("mode", mode), ("le", le)];
                sample(
                    &mut out,
                    "api_request_duration_seconds_bucket",
                    &labels,
                    cumulative,
                );
            }
            let labels = [("route", route), ("mode", mode)];
            sample(
                &mut out,
                "api_request_duration_seconds_sum",
                &labels,
                Seconds(s.sum_nanos),
            );
            sample(
                &mut out,
                "api_request_duration_seconds_count",
                &labels,
                cumulative,
            );
        }

        header(
            &mut out,
            "api_upstream_errors_total",
            "counter",
            "Forwarded requests that failed, by why.",
        );
        for kind in UpstreamError::ALL {
            let count: u64 = self
                .shards
                .iter()
                .map(|shard| shard.upstream_errors[kind.index()].load(Relaxed))
                .sum();
            let labels = [("kind", kind.as_str())];
            sample(&mut out, "api_upstream_errors_total", &labels, count);
        }

        header(
            &mut out,
            "api_upstream_ready",
            "gauge",
            "Whether Python answered the last readiness probe (1) or not (0).",
        );
        let ready = u8::from(upstream_ready);
        sample(&mut out, "api_upstream_ready", &[], ready);

        out
    }
}

/// Index into `STATUS_CLASSES`.
fn status_class(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status / 100 - 1),
        _ => 4,
    }
}

/// The `# HELP` and `# TYPE` lines of a family; `help` must need no escaping.
fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line: `name`, the labels (if any) with escaped values, and `value`.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            escape_label_value(out, value);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Appends `value` with backslash, double quote and newline escaped, as label values need.
fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Nanoseconds shown as exact decimal seconds: `3000000` is `0.003`, `2000000000` is `2`.
struct Seconds(u64);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (whole, nanos) = (self.0 / 1_000_000_000, self.0 % 1_000_000_000);
        if nanos == 0 {
            return write!(f, "{whole}");
        }
        let fraction = format!("{nanos:09}");
        write!(f, "{whole}.{}", fraction.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// The value of the sample line that starts with `series` (name and labels), if any.
    fn value<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
    }

    #[test]
    fn counts_requests_by_status_class() {
        let metrics = Metrics::new();
        for status in [101, 200, 204, 302, 404, 404, 503, 99, 600] {
            metrics.record_request("/a", Mode::Native, status, ms(1));
        }
        metrics.record_request("/a", Mode::Proxy, 200, ms(1));

        let text = metrics.render(false);
        let total = |mode: &str, class: &str| {
            let series = format!(
                r#"api_requests_total{}route="/a",mode="{mode}",status="{class}"{}"#,
                "{", "}"
            );
            value(&text, &series).map(str::to_owned)
        };
        assert_eq!(total("native", "1xx").as_deref(), Some("1"));
        assert_eq!(total("native", "2xx").as_deref(), Some("2"));
        assert_eq!(total("native", "3xx").as_deref(), Some("1"));
        assert_eq!(total("native", "4xx").as_deref(), Some("2"));
        // 503 and the two out-of-range statuses.
        assert_eq!(total("native", "5xx").as_deref(), Some("3"));
        assert_eq!(total("proxy", "2xx").as_deref(), Some("1"));
        // Classes never seen are not rendered.
        assert_eq!(total("proxy", "4xx"), None);
    }

    #[test]
    fn histogram_buckets_are_cumulative_with_sum_and_count() {
        let metrics = Metrics::new();
        // Exactly on a bound counts in that bucket (`le` is inclusive).
        for latency in [
            Duration::from_micros(500),
            ms(1),
            ms(3),
            ms(3),
            ms(700),
            Duration::from_secs(20),
        ] {
            metrics.record_request("/h", Mode::Proxy, 200, latency);
        }

        let text = metrics.render(false);
        let bucket = |le: &str| {
            let series = format!(
                r#"api_request_duration_seconds_bucket{}route="/h",mode="proxy",le="{le}"{}"#,
                "{", "}"
            );
            value(&text, &series).unwrap().to_owned()
        };
        let expected = [
            ("0.001", "2"),
            ("0.0025", "2"),
            ("0.005", "4"),
            ("0.01", "4"),
            ("0.025", "4"),
            ("0.05", "4"),
            ("0.1", "4"),
            ("0.25", "4"),
            ("0.5", "4"),
            ("1", "5"),
            ("2.5", "5"),
            ("5", "5"),
            ("10", "5"),
            ("+Inf", "6"),
        ];
        for (le, count) in expected {
            assert_eq!(bucket(le), count, "le={le}");
        }
        let labels = r#"route="/h",mode="proxy""#;
        let sum = format!("api_request_duration_seconds_sum{}{labels}{}", "{", "}");
        let count = format!("api_request_duration_seconds_count{}{labels}{}", "{", "}");
        assert_eq!(value(&text, &sum), Some("20.7075"));
        assert_eq!(value(&text, &count), Some("6"));
    }

    #[test]
    fn seconds_are_exact_decimals() {
        assert_eq!(Seconds(0).to_string(), "0");
        assert_eq!(Seconds(1).to_string(), "0.000000001");
        assert_eq!(Seconds(3_000_000).to_string(), "0.003");
        assert_eq!(Seconds(2_000_000_000).to_string(), "2");
        assert_eq!(Seconds(12_345_600_000).to_string(), "12.3456");
    }

    #[test]
    fn escapes_label_values() {
        let metrics = Metrics::new();
        metrics.record_request("/a\\b\"c\nd", Mode::Native, 200, ms(1));

        let text = metrics.render(false);
        let series = format!(
            "api_requests_total{}route=\"/a\\\\b\\\"c\\nd\",mode=\"native\",status=\"2xx\"{}",
            "{", "}"
        );
        assert_eq!(value(&text, &series), Some("1"), "{text}");
        // The newline in the route did not split a sample line.
        assert!(text.lines().all(|line| !line.starts_with("d\"")));
    }

    #[test]
    fn renders_every_upstream_error_kind_from_the_start() {
        let metrics = Metrics::new();
        let kinds = [
            "bad_gateway",
            "body_too_large",
            "overloaded",
            "timeout",
            "unavailable",
        ];
        let text = metrics.render(false);
        let series =
            |kind: &str| format!(r#"api_upstream_errors_total{}kind="{kind}"{}"#, "{", "}");
        for kind in kinds {
            assert_eq!(value(&text, &series(kind)), Some("0"), "{kind}");
        }

        metrics.record_upstream_error(UpstreamError::Timeout);
        metrics.record_upstream_error(UpstreamError::Timeout);
        metrics.record_upstream_error(UpstreamError::BodyTooLarge);
        let text = metrics.render(false);
        let counts: Vec<&str> = kinds
            .iter()
            .map(|kind| value(&text, &series(kind)).unwrap())
            .collect();
        assert_eq!(counts, ["0", "1", "0", "2", "0"]);
    }

    #[test]
    fn upstream_ready_is_a_zero_or_one_gauge() {
        let metrics = Metrics::new();
        assert_eq!(
            value(&metrics.render(false), "api_upstream_ready"),
            Some("0")
        );
        assert_eq!(
            value(&metrics.render(true), "api_upstream_ready"),
            Some("1")
        );
        assert_eq!(
            value(&metrics.render(false), "api_upstream_ready"),
            Some("0")
        );
    }

    #[test]
    fn output_is_sorted_and_independent_of_recording_order() {
        let requests = [
            ("/z", Mode::Native, 200),
            ("fallback", Mode::Proxy, 404),
            ("/a", Mode::Proxy, 500),
            ("/a", Mode::Native, 200),
            ("/users/{id}", Mode::Proxy, 201),
        ];
        let forward = Metrics::new();
        let backward = Metrics::new();
        for &(route, mode, status) in &requests {
            forward.record_request(route, mode, status, ms(2));
        }
        for &(route, mode, status) in requests.iter().rev() {
            backward.record_request(route, mode, status, ms(2));
        }

        let text = forward.render(false);
        assert_eq!(text, backward.render(false));
        let order: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("api_requests_total"))
            .collect();
        assert_eq!(
            order,
            [
                r#"api_requests_total{route="/a",mode="native",status="2xx"} 1"#,
                r#"api_requests_total{route="/a",mode="proxy",status="5xx"} 1"#,
                r#"api_requests_total{route="/users/{id}",mode="proxy",status="2xx"} 1"#,
                r#"api_requests_total{route="/z",mode="native",status="2xx"} 1"#,
                r#"api_requests_total{route="fallback",mode="proxy",status="4xx"} 1"#,
            ]
        );
    }

    #[test]
    fn shards_render_as_one() {
        let all = Metrics::with_shards(3);
        let (first, second, third) = (all.for_worker(0), all.for_worker(1), all.for_worker(5));
        first.record_request("/a", Mode::Proxy, 200, ms(1));
        second.record_request("/a", Mode::Proxy, 200, ms(3));
        second.record_request("/a", Mode::Proxy, 503, ms(3));
        third.record_request("/b", Mode::Native, 200, ms(1));
        first.record_upstream_error(UpstreamError::Timeout);
        third.record_upstream_error(UpstreamError::Timeout);

        // The same text as one shard that saw every request.
        let single = Metrics::new();
        single.record_request("/a", Mode::Proxy, 200, ms(1));
        single.record_request("/a", Mode::Proxy, 200, ms(3));
        single.record_request("/a", Mode::Proxy, 503, ms(3));
        single.record_request("/b", Mode::Native, 200, ms(1));
        single.record_upstream_error(UpstreamError::Timeout);
        single.record_upstream_error(UpstreamError::Timeout);
        let text = third.render(true);
        assert_eq!(text, single.render(true));
        let series = r#"api_requests_total{route="/a",mode="proxy",status="2xx"}"#;
        assert_eq!(value(&text, series), Some("2"));
        let count = r#"api_request_duration_seconds_count{route="/a",mode="proxy"}"#;
        assert_eq!(value(&text, count), Some("3"));
        let timeouts = r#"api_upstream_errors_total{kind="timeout"}"#;
        assert_eq!(value(&text, timeouts), Some("2"));
    }

    #[test]
    fn concurrent_recording_loses_nothing() {
        const THREADS: u64 = 8;
        const PER_THREAD: u64 = 2_000;
        let metrics = Metrics::new();
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let metrics = &metrics;
                scope.spawn(move || {
                    for i in 0..PER_THREAD {
                        // Every thread races to create the same few series.
                        let route = ["/a", "/b", "/c"][usize::try_from(i % 3).unwrap()];
                        let mode = if thread % 2 == 0 {
                            Mode::Native
                        } else {
                            Mode::Proxy
                        };
                        metrics.record_request(route, mode, 200, ms(1));
                        metrics.record_upstream_error(UpstreamError::Overloaded);
                    }
                });
            }
        });

        let text = metrics.render(false);
        let sum_of = |prefix: &str| -> u64 {
            text.lines()
                .filter(|line| line.starts_with(prefix))
                .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
                .sum()
        };
        let total = THREADS * PER_THREAD;
        assert_eq!(sum_of("api_requests_total"), total);
        assert_eq!(sum_of("api_request_duration_seconds_count"), total);
        assert_eq!(sum_of("api_upstream_errors_total"), total);
        // Three routes in two modes: six histograms, each with one count line.
        let histograms = text
            .lines()
            .filter(|line| line.starts_with("api_request_duration_seconds_count"))
            .count();
        assert_eq!(histograms, 6);
    }

    #[test]
    fn renders_the_exact_text_of_a_small_case() {
        let metrics = Metrics::new();
        metrics.record_request("/users/{id}", Mode::Native, 200, ms(3));
        metrics.record_upstream_error(UpstreamError::Unavailable);

        let expected = r#"# HELP api_requests_total Requests answered, by route pattern, mode and status class.
# TYPE api_requests_total counter
api_requests_total{route="/users/{id}",mode="native",status="2xx"} 1
# HELP api_request_duration_seconds Time from request to response headers, by route pattern and mode.
# TYPE api_request_duration_seconds histogram
api_request_duration_seconds_bucket{route="/users/{id}",mode="native",le="0.001"} 0
api_request_duration_seconds_bucket{route="/users/{id}",mode="native",le="0.0025"} 0
api_request_duration_seconds_bucket{route="/users/{id}",mode="native",le="0.005"} 1
api_request_duration_seconds_bucket{route="/users/{id}",mode="native",le="0.01"} 1
api_request_duration_seconds_bucket{route="/users/{id}",mode="native",le="0.025"} 1
api_request_duration_seconds_bucket{route="/users/{id}",mode="native",le="0.05"} 1
api_request_duration_seconds_bucket{route="/users/{id}",mode="native",le="0.1"} 1
api_request_duration_seconds_bucket{route="/users/{id}",mode="native",le="0.25"} 1
api_request_duration_seconds_bucket{route="/users/{id}",mode="native",le="0.5"} 1
api_request_duration_seconds_bucket{route="/users/{id}",mode="native",le="1"} 1
api_request_duration_seconds_bucket{route="/users/{id}",mode="native",le="2.5"} 1
api_request_duration_seconds_bucket{route="/users/{id}",mode="native",le="5"} 1
api_request_duration_seconds_bucket{route="/users/{id}",mode="native",le="10"} 1
api_request_duration_seconds_bucket{route="/users/{id}",mode="native",le="+Inf"} 1
api_request_duration_seconds_sum{route="/users/{id}",mode="native"} 0.003
api_request_duration_seconds_count{route="/users/{id}",mode="native"} 1
# HELP api_upstream_errors_total Forwarded requests that failed, by why.
# TYPE api_upstream_errors_total counter
api_upstream_errors_total{kind="bad_gateway"} 0
api_upstream_errors_total{kind="body_too_large"} 0
api_upstream_errors_total{kind="overloaded"} 0
api_upstream_errors_total{kind="timeout"} 0
api_upstream_errors_total{kind="unavailable"} 1
# HELP api_upstream_ready Whether Python answered the last readiness probe (1) or not (0).
# TYPE api_upstream_ready gauge
api_upstream_ready 1
"#;
        assert_eq!(metrics.render(true), expected);
    }
}
