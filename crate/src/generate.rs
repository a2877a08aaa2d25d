//! The generation loop: a model, a tokenizer and a sampler chain, one step at a time so that a
//! caller (the wasm API, a worker) can yield, stream and cancel between tokens.

use crate::error::{check, Error, Result};
use crate::model::LanguageModel;
use crate::sampling::{Chain, SamplerConfig, StepRecord};
use crate::tokenizer::{TextStream, TextTokenizer};
use serde::{Deserialize, Serialize};

/// What to generate after the prompt. camelCase in JSON and JS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct GenerateConfig {
    /// At least 1, and at most what the context leaves after the prompt.
    pub max_tokens: usize,
    /// Tokens that end the generation. `None` means the tokenizer's end-of-text tokens
    /// (`<|im_end|>`, `<|endoftext|>`, when present).
    pub stop_tokens: Option<Vec<u32>>,
    pub sampler: SamplerConfig,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        Self { max_tokens: 64, stop_tokens: None, sampler: SamplerConfig::default() }
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FinishReason {
    /// A stop token was sampled.
    Stop,
    /// `maxTokens` were generated.
    Length,
}

/// One generated token: what the sampler saw, and the text it adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// A model and its tokenizer; runs one generation at a time.
pub struct Engine<M: LanguageModel> {
    pub model: M,
    pub tokenizer: TextTokenizer,
}

/// The state of one generation. The model's KV cache belongs to it until it ends.
pub struct Generation {
    chain: Chain,
    stream: TextStream,
    logits: Vec<f32>,
    stop_tokens: Vec<u32>,
    remaining: usize,
    prompt_tokens: usize,
    finished: bool,
}

impl Generation {
    pub fn prompt_tokens(&self) -> usize {
        self.prompt_tokens
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

const END_OF_TEXT: [&str; 2] = ["<|im_end|>", "<|endoftext|>"];

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
        Ok(Self { model, tokenizer })
    }

    /// Encodes and prefills the prompt (resetting the model) and readies the sampler.
    pub fn start(&mut self, prompt: &str, config: &GenerateConfig) -> Result<Generation> {
        let mut chain = Chain::new(&config.sampler)?;
        let ids = self.tokenizer.encode(prompt)?;
        if ids.is_empty() {
            return Err(Error::EmptyPrompt);
        }
        let context = self.model.context_length();
        if ids.len() >= context {
            return Err(Error::PromptTooLong { tokens: ids.len(), context_length: context });
        }
        let room = context - ids.len();
        check(
            (1..=room).contains(&config.max_tokens),
            "maxTokens",
            "at least 1 and at most the context left after the prompt",
            format!("{} ({room} left)", config.max_tokens),
        )?;
        let stop_tokens = match &config.stop_tokens {
            Some(tokens) => tokens.clone(),
            None => END_OF_TEXT.iter().filter_map(|t| self.tokenizer.token_to_id(t)).collect(),
        };
        self.model.reset();
        let logits = self.model.prefill(&ids)?;
        for &id in &ids {
            chain.accept(id);
        }
        Ok(Generation {
            chain,
            stream: TextStream::default(),
            logits,
            stop_tokens,
            remaining: config.max_tokens,
            prompt_tokens: ids.len(),
            finished: false,
        })
    }

    /// Samples the next token and feeds it to the model; `None` once the generation ended.
    pub fn step(&mut self, generation: &mut Generation) -> Result<Option<GeneratedStep>> {
        if generation.finished {
            return Ok(None);
        }
        let record = generation.chain.sample(&generation.logits)?;
        generation.remaining -= 1;
        let stop = generation.stop_tokens.contains(&record.token);
        let finish = if stop {
            Some(FinishReason::Stop)
        } else if generation.remaining == 0 {
            Some(FinishReason::Length)
        } else {
            None
        };
        let text = if stop { String::new() } else { generation.stream.push(&self.tokenizer, record.token)? };
        match finish {
            Some(_) => generation.finished = true,
            // The context check in `start` guarantees room for every token fed here.
            None => generation.logits = self.model.step_token(record.token)?,
        }
        Ok(Some(GeneratedStep { record, text, finish }))
    }

    /// Runs a whole generation, calling `on_step` for each token; stops early (with
    /// [`Error::Cancelled`]) when `cancelled` turns true.
    pub fn generate(
        &mut self,
        prompt: &str,
        config: &GenerateConfig,
        mut on_step: impl FnMut(&GeneratedStep),
        cancelled: impl Fn() -> bool,
    ) -> Result<Vec<GeneratedStep>> {
        let mut generation = self.start(prompt, config)?;
        let mut steps = Vec::new();
        while let Some(step) = self.step(&mut generation)? {
            on_step(&step);
            steps.push(step);
            if cancelled() {
                return Err(Error::Cancelled);
            }
        }
        Ok(steps)
    }
}
