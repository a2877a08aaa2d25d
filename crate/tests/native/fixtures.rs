//! The token ids in fixtures/sampler_ids.json are what the native build produces; the wasm
//! tests (tests/wasm/sampler.rs) must reproduce them exactly. `UPDATE_FIXTURES=1 cargo test --test
//! native fixtures::` rewrites the ids after a deliberate change.
use crate::common;

use common::{fixture_cases, synthetic_logits, FixtureCase};
use decoding_playground::{Chain, SamplerConfig};

fn run_case(case: &FixtureCase) -> Vec<u32> {
    let config: SamplerConfig = serde_json::from_value(case.config.clone()).unwrap();
    let mut chain = Chain::new(&config).unwrap();
    (0..case.steps)
        .map(|step| chain.sample(&synthetic_logits(case.vocab, case.logits_seed, step)).unwrap().token)
        .collect()
}

#[test]
fn native_ids_match_the_fixture() {
    let mut cases = fixture_cases();
    assert!(cases.len() >= 10, "the fixture covers every strategy");
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        for case in &mut cases {
            case.tokens = run_case(case);
        }
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sampler_ids.json");
        std::fs::write(path, serde_json::to_string_pretty(&cases).unwrap() + "\n").unwrap();
    }
    for case in &cases {
        assert_eq!(run_case(case), case.tokens, "case {}", case.name);
    }
}

#[test]
fn strategies_in_the_fixture_choose_differently() {
    let cases = fixture_cases();
    let distinct: std::collections::HashSet<_> = cases.iter().map(|c| &c.tokens).collect();
    assert!(distinct.len() >= cases.len() - 2, "most strategies give their own sequence");
}
