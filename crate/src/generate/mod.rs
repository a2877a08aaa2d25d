//! The generation loop: a model, a tokenizer and a strategy (a sampler chain, or superposed
//! decoding with its n-gram store), one step at a time so that a caller (the wasm API, a
//! worker) can yield, stream and cancel between steps.
//!
//! By job: the engine, its model's cache and its n-gram store (here), what a generation is asked
//! for and gives (`config.rs`), the generation loop (`generation.rs`), stop strings (`stop.rs`).

mod config;
mod generation;
mod stop;

pub use config::{FinishReason, GenerateConfig, GeneratedStep, Step, SuperposedStep};
pub use generation::Generation;

use crate::error::{check, Error, Result};
use crate::model::LanguageModel;
use crate::ngram::NgramStore;
use crate::sampling::record::full_distribution;
use crate::sampling::Alternative;
use crate::tokenizer::TextTokenizer;
use std::sync::Arc;

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
}
