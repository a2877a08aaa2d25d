//! Every invalid parameter or logit vector is a typed error with a clear message, never a
//! panic.
use decoding_playground::sampling::{Chain, MirostatConfig, PenaltyConfig, SamplerConfig, TokenBias};
use decoding_playground::Error;

fn config_error(config: SamplerConfig) -> String {
    Chain::new(&config).expect_err("config must be refused").to_string()
}

fn assert_refused(config: SamplerConfig, expected: &str) {
    let message = config_error(config);
    assert!(message.contains(expected), "message {message:?} lacks {expected:?}");
}

#[test]
fn out_of_range_parameters_are_refused_with_their_name() {
    let d = SamplerConfig::default;
    assert_refused(SamplerConfig { top_p: Some(0.0), ..d() }, "topP must be in (0, 1], got 0");
    assert_refused(SamplerConfig { top_p: Some(1.5), ..d() }, "topP must be in (0, 1], got 1.5");
    assert_refused(SamplerConfig { top_p: Some(f32::NAN), ..d() }, "topP");
    assert_refused(SamplerConfig { top_k: Some(0), ..d() }, "topK must be at least 1, got 0");
    assert_refused(SamplerConfig { temperature: -0.5, ..d() }, "temperature must be 0 (greedy) or a finite number >= 0.0001, got -0.5");
    assert_refused(SamplerConfig { temperature: f32::INFINITY, ..d() }, "temperature");
    assert_refused(SamplerConfig { min_p: Some(-0.1), ..d() }, "minP must be in [0, 1], got -0.1");
    assert_refused(SamplerConfig { min_p: Some(1.01), ..d() }, "minP must be in [0, 1]");
    assert_refused(SamplerConfig { typical_p: Some(0.0), ..d() }, "typicalP must be in (0, 1]");
    assert_refused(SamplerConfig::mirostat(2, 0.0, 0.1), "mirostat.tau must be a number > 0, got 0");
    assert_refused(SamplerConfig::mirostat(1, -1.0, 0.1), "mirostat.tau");
    assert_refused(SamplerConfig::mirostat(2, 5.0, 0.0), "mirostat.eta must be a number > 0, got 0");
    assert_refused(SamplerConfig::mirostat(1, 5.0, -2.0), "mirostat.eta");
    assert_refused(SamplerConfig { mirostat: Some(MirostatConfig { version: 3, ..Default::default() }), ..d() }, "mirostat.version must be 1 or 2");
    assert_refused(SamplerConfig { penalties: PenaltyConfig { repetition: 0.0, ..Default::default() }, ..d() }, "penalties.repetition");
    assert_refused(SamplerConfig { logit_bias: vec![TokenBias { token: 1, bias: f32::NAN }], ..d() }, "logitBias.bias");
    assert_refused(SamplerConfig { top_alternatives: 5000, ..d() }, "topAlternatives must be at most 1000");
}

#[test]
fn inconsistent_orders_are_refused() {
    use decoding_playground::sampling::Stage;
    let d = SamplerConfig::default;
    assert_refused(SamplerConfig { order: vec![Stage::TopK, Stage::TopK, Stage::TopP, Stage::Temperature], ..d() }, "twice");
    assert_refused(SamplerConfig { order: vec![Stage::TopK, Stage::Temperature], ..d() }, "TopP is set but missing from order");
}

#[test]
fn json_configs_name_the_bad_field() {
    let err = serde_json::from_str::<SamplerConfig>(r#"{"topp": 0.9}"#).unwrap_err().to_string();
    assert!(err.contains("unknown field `topp`"), "{err}");
    let err = serde_json::from_str::<SamplerConfig>(r#"{"logitBias": [{"token": 1, "bias": "ban"}]}"#).unwrap_err().to_string();
    assert!(err.contains("-Infinity"), "{err}");
}

#[test]
fn bad_logits_are_refused() {
    let mut chain = Chain::new(&SamplerConfig::default()).unwrap();
    assert_eq!(chain.sample(&[]).unwrap_err(), Error::EmptyLogits);
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let err = chain.sample(&[0.5, 1.0, bad, 2.0]).unwrap_err();
        assert!(matches!(err, Error::NonFiniteLogit { index: 2, .. }), "{err}");
        assert!(err.to_string().starts_with("logit 2 is"), "{err}");
    }
    assert!(chain.sample(&[0.5, 1.0]).is_ok(), "the chain survives bad input");
}

#[test]
fn tokens_outside_the_vocabulary_are_refused() {
    let bias = SamplerConfig { logit_bias: vec![TokenBias { token: 10, bias: 1.0 }], ..Default::default() };
    let err = Chain::new(&bias).unwrap().sample(&[0.0; 4]).unwrap_err();
    assert_eq!(err.to_string(), "token 10 is outside the vocabulary of 4 tokens");

    let penalties = SamplerConfig { penalties: PenaltyConfig { repetition: 1.2, ..Default::default() }, ..Default::default() };
    let mut chain = Chain::new(&penalties).unwrap();
    chain.accept(99);
    assert_eq!(chain.sample(&[0.0; 4]).unwrap_err(), Error::TokenOutOfRange { token: 99, vocab_size: 4 });
}

#[test]
fn banning_every_token_is_refused() {
    let ban = |token| TokenBias { token, bias: f32::NEG_INFINITY };
    let config = SamplerConfig { logit_bias: vec![ban(0), ban(1)], ..Default::default() };
    assert_eq!(Chain::new(&config).unwrap().sample(&[1.0, 2.0]).unwrap_err(), Error::AllTokensBanned);
    let config = SamplerConfig { logit_bias: vec![ban(0)], ..SamplerConfig::greedy() };
    let record = Chain::new(&config).unwrap().sample(&[9.0, 2.0, 1.0]).unwrap();
    assert_eq!((record.token, record.kept), (1, 1), "greedy skips the banned favourite");
}
