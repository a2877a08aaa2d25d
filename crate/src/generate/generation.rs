//! One generation: [`Engine::start`] encodes and prefills the prompt, [`Engine::step`] samples a
//! token (or extends every superposed draft) and feeds it, [`Engine::run`] is the loop.

use super::stop::StopStrings;
use super::{Engine, FinishReason, GenerateConfig, GeneratedStep, Step, SuperposedStep};
use crate::error::{check, Error, Result};
use crate::model::LanguageModel;
use crate::sampling::Chain;
use crate::superposed::{DraftNode, SuperposedDecoder};
use crate::tokenizer::TextStream;
use std::ops::ControlFlow;

enum Strategy {
    Sample { chain: Chain, stream: TextStream, stops: StopStrings },
    Superposed { decoder: SuperposedDecoder, prompt: Vec<u32> },
}

/// What a step chose and the model has not been fed yet.
enum Chosen {
    Token(u32),
    Superposition(Vec<f32>),
}

/// The state of one generation. The model's KV cache belongs to it until it ends.
pub struct Generation {
    strategy: Strategy,
    logits: Vec<f32>,
    /// Fed before the next step chooses (a step is handed on before its input is fed).
    chosen: Option<Chosen>,
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
    /// Encodes and prefills the prompt (after the cache's shared prefix with
    /// [`set_reuse_prefix`](Self::set_reuse_prefix), else from a reset model) and readies the
    /// sampler.
    pub async fn start(&mut self, prompt: &str, config: &GenerateConfig) -> Result<Generation> {
        self.start_after(prompt, &[], config).await
    }

    /// Starts a generation after `prompt` and then `tokens`, as if they had been generated: a
    /// branch of an earlier run, from its first tokens and then another. The sampler sees them
    /// as history. The cache, or the rows kept of earlier sequences, gives the prefix, and the
    /// rest is fed as a run feeds it, so the branch goes on exactly as the run would have, had it
    /// picked those tokens.
    pub async fn start_after(&mut self, prompt: &str, tokens: &[u32], config: &GenerateConfig) -> Result<Generation> {
        let mut strategy = match &config.superposed {
            None => Strategy::Sample {
                chain: Chain::with_vocab(&config.sampler, Some(self.tokenizer.as_ref()))?,
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
        let mut ids = self.tokenizer.encode_with_special(prompt)?;
        if ids.is_empty() {
            return Err(Error::EmptyPrompt);
        }
        let prompt_len = ids.len();
        let vocab_size = self.model.vocab_size();
        if let Some(&token) = tokens.iter().find(|&&t| t as usize >= vocab_size) {
            return Err(Error::TokenOutOfRange { token, vocab_size });
        }
        ids.extend_from_slice(tokens);
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
        let (logits, reused) = match tokens.is_empty() {
            true => self.feed_prompt(&ids, false).await?,
            false => self.feed_continuation(&ids, prompt_len).await?,
        };
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
            chosen: None,
            stop_tokens,
            remaining: config.max_tokens.min(room),
            context_bound: config.max_tokens > room,
            prompt_tokens: prompt_len,
            reused_tokens: reused,
            epoch: self.epoch,
            finish: None,
        })
    }

    /// Chooses the next token (or extends every draft) and feeds the model; `None` once the
    /// generation ended. A step that fails ends it: the model's cache may no longer match.
    pub async fn step(&mut self, generation: &mut Generation) -> Result<Option<Step>> {
        let step = self.choose(generation).await?;
        self.feed_chosen(generation).await?;
        Ok(step)
    }

    /// Chooses the next step from the logits of what was fed (feeding first what the last step
    /// chose, if it was not); the model is fed its choice by [`feed_chosen`](Self::feed_chosen).
    async fn choose(&mut self, generation: &mut Generation) -> Result<Option<Step>> {
        if generation.finish.is_some() {
            return Ok(None);
        }
        if generation.epoch != self.epoch {
            generation.finish = Some(FinishReason::Error);
            return Err(Error::Superseded);
        }
        self.feed_chosen(generation).await?;
        let step = self.advance(generation);
        generation.finish = match &step {
            Ok(Step::Token(s)) => s.finish,
            Ok(Step::Drafts(s)) => s.finish,
            Err(_) => Some(FinishReason::Error),
        };
        step.map(Some)
    }

    /// Feeds the model what the last step chose, for the next step's logits.
    async fn feed_chosen(&mut self, generation: &mut Generation) -> Result<()> {
        let Some(chosen) = generation.chosen.take() else { return Ok(()) };
        let contiguous = self.cached.len() == self.model.position();
        let fed = match &chosen {
            Chosen::Token(token) => self.model.step_token(*token).await,
            Chosen::Superposition(input) => self.model.step_embedding(input).await,
        };
        match fed {
            Ok(logits) => generation.logits = logits,
            Err(e) => {
                generation.finish = Some(FinishReason::Error);
                return Err(e);
            }
        }
        if let (Chosen::Token(token), true) = (chosen, contiguous) {
            self.cached.push(token);
        }
        Ok(())
    }

    fn advance(&mut self, generation: &mut Generation) -> Result<Step> {
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
                    generation.chosen = Some(Chosen::Token(record.token));
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
                        generation.chosen = Some(Chosen::Superposition(input));
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

    /// The generation loop: starts a generation and hands each step to `on_step` (with the
    /// engine, to read between steps) until the generation ends, or until `on_step` breaks, which
    /// ends it with [`Error::Cancelled`]. `on_step` is async so that a caller can yield between
    /// steps, as the wasm layer yields to the event loop.
    pub async fn run(&mut self, prompt: &str, config: &GenerateConfig, on_step: impl AsyncFnMut(&Self, Step) -> ControlFlow<()>) -> Result<()> {
        self.run_after(prompt, &[], config, on_step).await
    }

    /// [`run`](Self::run) from [`start_after`](Self::start_after).
    pub async fn run_after(&mut self, prompt: &str, tokens: &[u32], config: &GenerateConfig, mut on_step: impl AsyncFnMut(&Self, Step) -> ControlFlow<()>) -> Result<()> {
        let mut generation = self.start_after(prompt, tokens, config).await?;
        // Each step is handed on before the model is fed its choice: a caller sees a token one
        // forward pass sooner.
        while let Some(step) = self.choose(&mut generation).await? {
            if on_step(self, step).await.is_break() {
                return Err(Error::Cancelled);
            }
        }
        Ok(())
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
        let mut steps = Vec::new();
        self.run(prompt, config, async |_, step| {
            on_step(&step);
            steps.push(step);
            if cancelled() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .await?;
        Ok(steps)
    }
}
