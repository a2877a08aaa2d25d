//! What the criterion benches share: one output folder, and reading a result back so that a
//! bench can print its figures next to a baseline measured in the same run.

use criterion::Criterion;
use std::path::PathBuf;
use std::time::Duration;

pub fn criterion_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/criterion")
}

/// Mean time in ns of one benchmark, from criterion's saved estimates.
pub fn mean_ns(group: &str, name: &str) -> f64 {
    let path = criterion_dir().join(group).join(name).join("new/estimates.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["mean"]["point_estimate"].as_f64().unwrap()
}

/// Short runs by default (command-line flags override them).
pub fn criterion() -> Criterion {
    Criterion::default()
        .output_directory(&criterion_dir())
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

/// Deterministic pseudo-random bits (SplitMix64), no dependency.
pub fn splitmix(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
