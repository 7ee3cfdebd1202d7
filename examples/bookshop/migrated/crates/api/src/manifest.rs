//! The routes, fallback and default upstream that build.rs generates from rspy.toml.

include!(concat!(env!("OUT_DIR"), "/manifest.rs"));
