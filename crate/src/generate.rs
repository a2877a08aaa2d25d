//! The generation loop: a model, a tokenizer and a strategy (a sampler chain, or superposed
//! decoding with its n-gram store), one step at a time so that a caller (the wasm API, a
//! worker) can yield, stream and cancel between steps.

use crate::error::{check, Error, Result};
use crate::model::LanguageModel;
use crate::ngram::NgramStore;
use crate::sampling::record::full_distribution;
use crate::sampling::{Alternative, Chain, SamplerConfig, StepRecord};
use crate::superposed::{DraftNode, DraftStep, FinalDraft, SuperposedConfig, SuperposedDecoder};
use crate::tokenizer::{TextStream, TextTokenizer};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What to generate after the prompt. camelCase in JSON and JS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct GenerateConfig {
    /// At least 1. A generation that fills the context first ends there, with
    /// [`FinishReason::Context`].
    pub max_tokens: usize,
    /// Tokens that end the generation. `None` means the tokenizer's end-of-text tokens
    /// (`<|im_end|>`, `<|endoftext|>`, when present).
    pub stop_tokens: Option<Vec<u32>>,
    /// Texts that end the generation where they appear; the text before one is kept, the stop
    /// string itself is not. Streamed text that could be the start of one is held back until
    /// it is known not to be. Token generation only: superposed drafts ignore them.
    #[serde(default)]
    pub stop_strings: Vec<String>,
    pub sampler: SamplerConfig,
    /// When set, superposed decoding replaces the sampler chain (`sampler` is then unused).
    pub superposed: Option<SuperposedConfig>,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        Self { max_tokens: 64, stop_tokens: None, stop_strings: Vec::new(), sampler: SamplerConfig::default(), superposed: None }
    }
}

impl GenerateConfig {
    /// Settings present in the config that the generation will not use, as `sampler.<field>`
    /// paths: with `superposed` set, every sampler field that differs from its default (the
    /// whole chain is replaced); else what the sampler chain itself ignores (e.g. `topK` under
    /// Mirostat, see [`SamplerConfig::ignored_settings`]).
    pub fn ignored_settings(&self) -> Vec<String> {
        if self.superposed.is_none() {
            return self.sampler.ignored_settings().into_iter().map(|name| format!("sampler.{name}")).collect();
        }
        let (given, default) = (serde_json::to_value(&self.sampler), serde_json::to_value(SamplerConfig::default()));
        let (Ok(serde_json::Value::Object(given)), Ok(default)) = (given, default) else { return Vec::new() };
        let sampler = given.into_iter().filter(|(key, value)| default.get(key) != Some(value)).map(|(key, _)| format!("sampler.{key}"));
        let stop_strings = (!self.stop_strings.is_empty()).then(|| "stopStrings".to_string());
        sampler.chain(stop_strings).collect()
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase")]
pub enum FinishReason {
    /// A stop token was sampled, or a stop string appeared.
    Stop,
    /// `maxTokens` were generated.
    Length,
    /// The context is full: the model holds no more tokens (see `contextLength`).
    Context,
    /// A step failed (the error says why); the generation cannot go on.
    Error,
}

/// One generated token: what the sampler saw, and the text it adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase")]
pub struct GeneratedStep {
    #[serde(flatten)]
    pub record: StepRecord,
    /// New text; empty for a stop token or while a character is incomplete.
    pub text: String,
    /// Set on the last step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish: Option<FinishReason>,
}

/// One step of superposed decoding: the draft tree's new nodes, and the final drafts at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase")]
pub struct SuperposedStep {
    #[serde(flatten)]
    pub record: DraftStep,
    /// Set on the last step: the k drafts with the lowest perplexity, best first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drafts: Vec<FinalDraft>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish: Option<FinishReason>,
}

/// What one call to [`Engine::step`] produced. In JSON and JS, `kind` tells which.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Step {
    /// One sampled token.
    Token(GeneratedStep),
    /// One superposed step: every draft grew by a token.
    Drafts(SuperposedStep),
}

impl Step {
    pub fn as_token(&self) -> Option<&GeneratedStep> {
        match self {
            Step::Token(step) => Some(step),
            Step::Drafts(_) => None,
        }
    }

    pub fn as_drafts(&self) -> Option<&SuperposedStep> {
        match self {
            Step::Drafts(step) => Some(step),
            Step::Token(_) => None,
        }
    }
}

/// A model and its tokenizer, and the n-gram store superposed decoding uses; runs one
/// generation at a time.
pub struct Engine<M: LanguageModel> {
    model: M,
    /// Shared, so that a caller may encode and decode while a step holds the engine (a GPU
    /// step awaits its read-back).
    tokenizer: Arc<TextTokenizer>,
    tokenizer_fingerprint: u64,
    ngrams: Option<NgramStore>,
    /// The token ids the model's first `cached.len()` cache positions hold (positions after
    /// them, e.g. superposed inputs, are not tokens): with `reuse_prefix`, a new prompt sharing
    /// a prefix with them feeds only what follows.
    cached: Vec<u32>,
    reuse_prefix: bool,
    /// Bumped by every call that refills the model's cache: a [`Generation`] started before the
    /// latest one no longer owns the cache, and its steps are refused.
    epoch: u64,
}

enum Strategy {
    Sample { chain: Chain, stream: TextStream, stops: StopStrings },
    Superposed { decoder: SuperposedDecoder, prompt: Vec<u32> },
}

/// The state of one generation. The model's KV cache belongs to it until it ends.
pub struct Generation {
    strategy: Strategy,
    logits: Vec<f32>,
    stop_tokens: Vec<u32>,
    remaining: usize,
    /// Whether `remaining` was cut to what the context has room for.
    context_bound: bool,
    prompt_tokens: usize,
    reused_tokens: usize,
    epoch: u64,
    finish: Option<FinishReason>,
}

impl Generation {
    pub fn prompt_tokens(&self) -> usize {
        self.prompt_tokens
    }

    /// Prompt tokens whose cache positions were kept from the previous call (not fed again).
    pub fn reused_tokens(&self) -> usize {
        self.reused_tokens
    }

    pub fn is_finished(&self) -> bool {
        self.finish.is_some()
    }

    /// Why it ended, once it has: its last step's reason, or [`FinishReason::Error`] after a
    /// step failed.
    pub fn finish(&self) -> Option<FinishReason> {
        self.finish
    }
}

impl<M: LanguageModel> Engine<M> {
    pub fn new(model: M, tokenizer: TextTokenizer) -> Result<Self> {
        // A tokenizer may list fewer tokens than the model's (padded) output; never more.
        if tokenizer.vocab_size() > model.vocab_size() {
            return Err(Error::Tokenizer(format!(
                "the tokenizer has {} tokens but the model only {}",
                tokenizer.vocab_size(),
                model.vocab_size()
            )));
        }
        let tokenizer_fingerprint = tokenizer.fingerprint();
        Ok(Self { model, tokenizer: Arc::new(tokenizer), tokenizer_fingerprint, ngrams: None, cached: Vec::new(), reuse_prefix: false, epoch: 0 })
    }

    /// With reuse on, `start` and `score` feed only what follows the prefix their tokens share
    /// with the previous call's (a keystroke costs its new tokens). Off by default: the logits
    /// of a prompt fed in pieces differ from one prefill's in the last bits, so a sample that
    /// close to a tie could differ, and the same seed must give the same tokens whatever the
    /// engine ran before.
    pub fn set_reuse_prefix(&mut self, reuse: bool) {
        self.reuse_prefix = reuse;
    }

    pub fn reuses_prefix(&self) -> bool {
        self.reuse_prefix
    }

    pub fn model(&self) -> &M {
        &self.model
    }

    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The tokenizer, for use apart from the engine.
    pub fn shared_tokenizer(&self) -> Arc<TextTokenizer> {
        self.tokenizer.clone()
    }

    /// The model, to feed it directly; the engine then forgets what its cache holds, and a
    /// generation in progress ends.
    pub fn model_mut(&mut self) -> &mut M {
        self.cached.clear();
        self.epoch += 1;
        &mut self.model
    }

    /// Makes the model's cache hold `ids` and returns the logits of their last position (with
    /// `all_logits`, of every position, which are all fed again), feeding only what follows the
    /// longest prefix shared with what the cache holds (at least one token, for the logits).
    pub(crate) async fn feed_prompt(&mut self, ids: &[u32], all_logits: bool) -> Result<(Vec<f32>, usize)> {
        self.epoch += 1;
        // A failed call may have reset the model under the record.
        if self.model.position() < self.cached.len() {
            self.cached.clear();
        }
        let reuse = match self.reuse_prefix && !all_logits {
            true => self.cached.iter().zip(ids).take_while(|(a, b)| a == b).count().min(ids.len() - 1),
            false => 0,
        };
        self.cached.clear();
        if reuse == 0 {
            self.model.reset();
        } else {
            self.model.truncate(reuse)?;
        }
        let logits = match all_logits {
            true => self.model.prefill_all_logits(&ids[reuse..]).await?,
            false => self.model.prefill(&ids[reuse..]).await?,
        };
        self.cached = ids.to_vec();
        Ok((logits, reuse))
    }

    /// With the cache holding `ids[..from]`, feeds the rest and returns the logits of every fed
    /// position.
    pub(crate) async fn feed_more(&mut self, ids: &[u32], from: usize) -> Result<Vec<f32>> {
        debug_assert!(self.cached == ids[..from] && self.model.position() == from);
        self.cached.clear();
        let logits = self.model.prefill_all_logits(&ids[from..]).await?;
        self.cached = ids.to_vec();
        Ok(logits)
    }

    /// Gives each alternative its text, the token decoded on its own.
    pub(crate) fn label_alternatives(&self, top: &mut [Alternative]) -> Result<()> {
        for alternative in top {
            alternative.text = Some(self.tokenizer.decode(&[alternative.token])?);
        }
        Ok(())
    }

    /// Identifies the tokenizer an n-gram store must have been built with.
    pub fn tokenizer_fingerprint(&self) -> u64 {
        self.tokenizer_fingerprint
    }

    /// Sets (or clears) the n-gram store of superposed decoding; refuses one built with
    /// another tokenizer.
    pub fn set_ngram_store(&mut self, store: Option<NgramStore>) -> Result<()> {
        if let Some(store) = &store {
            store.check_tokenizer(self.tokenizer.vocab_size(), self.tokenizer_fingerprint)?;
        }
        self.ngrams = store;
        Ok(())
    }

    pub fn ngram_store(&self) -> Option<&NgramStore> {
        self.ngrams.as_ref()
    }

    /// Takes the n-gram store out (e.g. to extend it with more text).
    pub fn take_ngram_store(&mut self) -> Option<NgramStore> {
        self.ngrams.take()
    }

    /// Teacher-forced natural-log probabilities of `ids[1..]`, each given the ids before it, from
    /// one prefill (resetting the model): the basis of perplexity.
    pub async fn log_probs(&mut self, ids: &[u32]) -> Result<Vec<f64>> {
        check(ids.len() >= 2, "ids", "at least two tokens", ids.len())?;
        let vocab = self.model.vocab_size();
        // The last id is never fed, only looked up in the logits: check them all here.
        if let Some(&token) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(Error::TokenOutOfRange { token, vocab_size: vocab });
        }
        let (logits, _) = self.feed_prompt(&ids[..ids.len() - 1], true).await?;
        let mut scratch = Vec::new();
        Ok(logits
            .chunks_exact(vocab)
            .zip(&ids[1..])
            .map(|(row, &next)| full_distribution(row, 1.0, &mut scratch).ln_prob(row[next as usize]))
            .collect())
    }

    /// Encodes and prefills the prompt (after the cache's shared prefix with
    /// [`set_reuse_prefix`](Self::set_reuse_prefix), else from a reset model) and readies the
    /// sampler.
    pub async fn start(&mut self, prompt: &str, config: &GenerateConfig) -> Result<Generation> {
        let mut strategy = match &config.superposed {
            None => Strategy::Sample {
                chain: Chain::new(&config.sampler)?,
                stream: TextStream::default(),
                stops: StopStrings::new(&config.stop_strings)?,
            },
            Some(superposed) => {
                let decoder = SuperposedDecoder::new(superposed)?;
                if superposed.uses_ngrams() && self.ngrams.is_none() {
                    return Err(Error::InvalidConfig(
                        "superposed decoding with alpha above 0 needs an n-gram store: load one, or set alpha to 0".into(),
                    ));
                }
                Strategy::Superposed { decoder, prompt: Vec::new() }
            }
        };
        let ids = self.tokenizer.encode_with_special(prompt)?;
        if ids.is_empty() {
            return Err(Error::EmptyPrompt);
        }
        let context = self.model.context_length();
        if ids.len() >= context {
            return Err(Error::PromptTooLong { tokens: ids.len(), context_length: context });
        }
        check(config.max_tokens >= 1, "maxTokens", "at least 1", config.max_tokens)?;
        // Every step but the last feeds one position: `room` steps fill the context.
        let room = context - ids.len();
        let stop_tokens = match &config.stop_tokens {
            Some(tokens) => tokens.clone(),
            None => self.tokenizer.end_of_text_ids(),
        };
        let (logits, reused) = self.feed_prompt(&ids, false).await?;
        match &mut strategy {
            Strategy::Sample { chain, stream, .. } => {
                ids.iter().for_each(|&id| chain.accept(id));
                *stream = TextStream::after(&self.tokenizer, ids[ids.len() - 1])?;
            }
            Strategy::Superposed { prompt, .. } => *prompt = ids.clone(),
        }
        Ok(Generation {
            strategy,
            logits,
            stop_tokens,
            remaining: config.max_tokens.min(room),
            context_bound: config.max_tokens > room,
            prompt_tokens: ids.len(),
            reused_tokens: reused,
            epoch: self.epoch,
            finish: None,
        })
    }

    /// Chooses the next token (or extends every draft) and feeds the model; `None` once the
    /// generation ended. A step that fails ends it: the model's cache may no longer match.
    pub async fn step(&mut self, generation: &mut Generation) -> Result<Option<Step>> {
        if generation.finish.is_some() {
            return Ok(None);
        }
        if generation.epoch != self.epoch {
            generation.finish = Some(FinishReason::Error);
            return Err(Error::Superseded);
        }
        let step = self.advance(generation).await;
        generation.finish = match &step {
            Ok(Step::Token(s)) => s.finish,
            Ok(Step::Drafts(s)) => s.finish,
            Err(_) => Some(FinishReason::Error),
        };
        step.map(Some)
    }

    async fn advance(&mut self, generation: &mut Generation) -> Result<Step> {
        generation.remaining -= 1;
        let stop_tokens = &generation.stop_tokens;
        let out_of_tokens = (generation.remaining == 0).then_some(match generation.context_bound {
            true => FinishReason::Context,
            false => FinishReason::Length,
        });
        // `start` left room in the context for every input fed here.
        Ok(match &mut generation.strategy {
            Strategy::Sample { chain, stream, stops } => {
                let mut record = chain.sample(&generation.logits)?;
                self.label_alternatives(&mut record.top)?;
                let stop_token = stop_tokens.contains(&record.token);
                let (mut text, stop_string) = match stop_token {
                    true => (String::new(), false),
                    false => stops.push(&stream.push(&self.tokenizer, record.token)?),
                };
                let finish = if stop_token || stop_string { Some(FinishReason::Stop) } else { out_of_tokens };
                if finish.is_some() && !stop_string {
                    text.push_str(&stops.take_held());
                }
                if finish.is_none() {
                    let contiguous = self.cached.len() == self.model.position();
                    generation.logits = self.model.step_token(record.token).await?;
                    if contiguous {
                        self.cached.push(record.token);
                    }
                }
                Step::Token(GeneratedStep { record, text, finish })
            }
            Strategy::Superposed { decoder, prompt } => {
                let mut record = decoder.step(&generation.logits, prompt, self.ngrams.as_ref(), stop_tokens)?;
                for node in record.live.iter_mut().chain(&mut record.finished).chain(&mut record.pruned) {
                    node.text = self.token_text(node, stop_tokens)?;
                }
                let finish = if decoder.has_live_drafts() { out_of_tokens } else { Some(FinishReason::Stop) };
                let mut drafts = Vec::new();
                match finish {
                    Some(_) => {
                        drafts = decoder.results(stop_tokens);
                        for draft in &mut drafts {
                            let text_len = draft.tokens.len() - draft.stopped as usize;
                            draft.text = self.tokenizer.decode(&draft.tokens[..text_len])?;
                        }
                    }
                    None => {
                        let input = self.model.embeddings().superpose(&decoder.superposition())?;
                        generation.logits = self.model.step_embedding(&input).await?;
                    }
                }
                Step::Drafts(SuperposedStep { record, drafts, finish })
            }
        })
    }

    fn token_text(&self, node: &DraftNode, stop_tokens: &[u32]) -> Result<String> {
        if stop_tokens.contains(&node.token) {
            return Ok(String::new());
        }
        self.tokenizer.decode(&[node.token])
    }

    /// Runs a whole generation, calling `on_step` for each token; stops early (with
    /// [`Error::Cancelled`]) when `cancelled` turns true.
    pub async fn generate(
        &mut self,
        prompt: &str,
        config: &GenerateConfig,
        mut on_step: impl FnMut(&Step),
        cancelled: impl Fn() -> bool,
    ) -> Result<Vec<Step>> {
        let mut generation = self.start(prompt, config).await?;
        let mut steps = Vec::new();
        while let Some(step) = self.step(&mut generation).await? {
            on_step(&step);
            steps.push(step);
            if cancelled() {
                return Err(Error::Cancelled);
            }
        }
        Ok(steps)
    }
}

/// Finds stop strings in streamed text. Text that could be the start of one is held back, so
/// that no step shows part of a stop string that the next step completes.
struct StopStrings {
    stops: Vec<String>,
    held: String,
}

impl StopStrings {
    const MAX_COUNT: usize = 16;
    const MAX_BYTES: usize = 256;

    fn new(stops: &[String]) -> Result<Self> {
        check(stops.len() <= Self::MAX_COUNT, "stopStrings", "at most 16 strings", stops.len())?;
        for stop in stops {
            let fits = !stop.is_empty() && stop.len() <= Self::MAX_BYTES;
            check(fits, "stopStrings", "non-empty strings of at most 256 bytes", format!("{stop:?}"))?;
        }
        Ok(Self { stops: stops.to_vec(), held: String::new() })
    }

    /// Adds a piece of text; returns the text that can be shown now, and whether a stop string
    /// appeared (the text is then what came before it).
    fn push(&mut self, piece: &str) -> (String, bool) {
        self.held.push_str(piece);
        if let Some(at) = self.stops.iter().filter_map(|stop| self.held.find(stop.as_str())).min() {
            self.held.truncate(at);
            return (std::mem::take(&mut self.held), true);
        }
        let keep = self.stops.iter().map(|stop| prefix_at_end(&self.held, stop)).max().unwrap_or(0);
        let shown = self.held.len() - keep;
        (self.held.drain(..shown).collect(), false)
    }

    /// The held-back text: the generation ended without completing a stop string.
    fn take_held(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// The length of the longest proper prefix of `stop` that `text` ends with.
fn prefix_at_end(text: &str, stop: &str) -> usize {
    (1..stop.len()).rev().find(|&n| stop.is_char_boundary(n) && text.ends_with(&stop[..n])).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::StopStrings;

    fn run(stops: &[&str], pieces: &[&str]) -> (Vec<String>, bool) {
        let mut matcher = StopStrings::new(&stops.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let mut shown = Vec::new();
        for piece in pieces {
            let (text, stopped) = matcher.push(piece);
            shown.push(text);
            if stopped {
                return (shown, true);
            }
        }
        shown.push(matcher.take_held());
        (shown, false)
    }

    #[test]
    fn a_stop_string_split_over_pieces_is_never_shown() {
        assert_eq!(run(&["\n\nUser:"], &["Hi", " there\n", "\nUs", "er: next"]), (vec!["Hi".into(), " there".into(), "".into(), "".into()], true));
    }

    #[test]
    fn held_text_that_turns_out_not_to_stop_is_shown() {
        assert_eq!(run(&["END"], &["a E", "N", "x", "y"]), (vec!["a ".into(), "".into(), "ENx".into(), "y".into(), "".into()], false));
        assert_eq!(run(&["END"], &["a EN"]), (vec!["a ".into(), "EN".into()], false));
    }

    #[test]
    fn the_earliest_of_several_stop_strings_wins() {
        assert_eq!(run(&["cd", "b"], &["abcd"]), (vec!["a".into()], true));
    }

    #[test]
    fn multibyte_stop_strings_are_cut_on_character_boundaries() {
        assert_eq!(run(&["é!"], &["café", "?"]), (vec!["caf".into(), "é?".into(), "".into()], false));
    }

    #[test]
    fn bad_stop_strings_are_refused() {
        assert!(StopStrings::new(&["".to_string()]).is_err());
        assert!(StopStrings::new(&vec!["x".to_string(); 17]).is_err());
        assert!(StopStrings::new(&["x".repeat(257)]).is_err());
    }
}
