//! The generation loop: a model, a tokenizer and a strategy (a sampler chain, or superposed
//! decoding with its n-gram store), one step at a time so that a caller (the wasm API, a
//! worker) can yield, stream and cancel between steps.
//!
//! By job: the engine, its model's cache and its n-gram store (here), what a generation is asked
//! for and gives (`config.rs`), the generation loop (`generation.rs`), the cache rows of
//! earlier sequences (`prefix_store.rs`), stop strings (`stop.rs`).

mod beam_search;
mod config;
mod generation;
mod prefix_store;
mod stop;

pub use config::{FinishReason, GenerateConfig, GeneratedStep, Step, SuperposedStep};
pub use generation::Generation;

use crate::error::{check, Error, Result};
use crate::model::{CacheRows, LanguageModel};
use crate::ngram::NgramStore;
use prefix_store::PrefixStore;
use crate::sampling::record::full_distribution;
use crate::sampling::Alternative;
use crate::tokenizer::TextTokenizer;
use std::sync::Arc;

/// The default memory for the cache rows of earlier sequences: SmolLM2-135M's 256 MiB hold
/// about 5800 positions.
pub const DEFAULT_PREFIX_BYTES: usize = 256 << 20;

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
    /// The cache rows of earlier sequences, which a branch of one takes its prefix from.
    prefixes: PrefixStore<M::Rows>,
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
        Ok(Self { model, tokenizer: Arc::new(tokenizer), tokenizer_fingerprint, ngrams: None, cached: Vec::new(), reuse_prefix: false, prefixes: PrefixStore::new(DEFAULT_PREFIX_BYTES), epoch: 0 })
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

    /// Sets the memory the cache rows of earlier sequences may take (0 keeps none: a branch then
    /// computes its prefix again).
    pub fn set_prefix_budget(&mut self, bytes: usize) {
        self.prefixes.set_budget(bytes);
    }

    pub fn prefix_budget(&self) -> usize {
        self.prefixes.budget()
    }

    /// The memory the cache rows of earlier sequences take, and how many positions they hold:
    /// a prefix that sequences share counts once.
    pub fn prefix_store_size(&self) -> (usize, usize) {
        (self.prefixes.bytes(), self.prefixes.positions())
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
        self.remember_cached();
        self.cached.clear();
        self.epoch += 1;
        &mut self.model
    }

    /// Makes the model's cache hold `ids` and returns the logits of their last position (with
    /// `all_logits`, of every position, which are all fed again), feeding only what follows the
    /// longest prefix shared with what the cache holds (at least one token, for the logits).
    pub(crate) async fn feed_prompt(&mut self, ids: &[u32], all_logits: bool) -> Result<(Vec<f32>, usize)> {
        let reuse = self.reuse_prefix && !all_logits;
        self.feed(ids, ids.len(), reuse, all_logits).await
    }

    /// [`feed_prompt`](Self::feed_prompt) for a sequence that continues a prompt of
    /// `prompt_len` tokens: it takes what it can of its prefix from the cache or from the rows
    /// of earlier sequences, and feeds the rest as a generation feeds its own: what remains of
    /// the prompt in one call, each later token on its own. A branch of a run then computes
    /// exactly what the run would have, had it picked the branch's tokens.
    pub(crate) async fn feed_continuation(&mut self, ids: &[u32], prompt_len: usize) -> Result<(Vec<f32>, usize)> {
        self.feed(ids, prompt_len, true, false).await
    }

    async fn feed(&mut self, ids: &[u32], prompt_len: usize, reuse: bool, all_logits: bool) -> Result<(Vec<f32>, usize)> {
        self.epoch += 1;
        // A failed call may have reset the model under the record.
        if self.model.position() < self.cached.len() {
            self.cached.clear();
        }
        self.remember_cached();
        let kept = match reuse {
            true => self.restore(ids),
            false => 0,
        };
        self.cached.clear();
        if kept == 0 {
            self.model.reset();
        }
        let logits = match all_logits {
            true => self.model.prefill_all_logits(&ids[kept..]).await?,
            false => {
                let mut logits = Vec::new();
                if kept < prompt_len {
                    logits = self.model.prefill(&ids[kept..prompt_len]).await?;
                }
                for &id in &ids[kept.max(prompt_len)..] {
                    logits = self.model.step_token(id).await?;
                }
                logits
            }
        };
        self.cached = ids.to_vec();
        Ok((logits, kept))
    }

    /// Makes the cache hold the longest prefix of `ids` (all but the last, for its logits) that
    /// the cache or the store has, and returns its length.
    fn restore(&mut self, ids: &[u32]) -> usize {
        let limit = ids.len() - 1;
        let live = self.cached.iter().zip(ids).take_while(|(a, b)| a == b).count().min(limit);
        let stored = self.prefixes.longest(ids, limit).filter(|found| found.len > live);
        if self.model.truncate(live).is_err() {
            return 0;
        }
        let Some(found) = stored else { return live };
        for (rows, range) in self.prefixes.rows_from(found, live) {
            if self.model.append_cache(rows, range).is_err() {
                // Rows of a backend the model has left: compute the prefix instead.
                self.prefixes.clear();
                self.model.reset();
                return 0;
            }
        }
        found.len
    }

    /// Keeps the cache rows of the positions the cache holds tokens for, past what the store
    /// already has of them.
    fn remember_cached(&mut self) {
        if self.prefixes.budget() == 0 || self.cached.is_empty() || self.model.position() < self.cached.len() {
            return;
        }
        let found = self.prefixes.longest(&self.cached, self.cached.len());
        let from = found.map_or(0, |f| f.len);
        if from == self.cached.len() {
            return;
        }
        // Rows that cannot be copied are only a branch's prefix computed again.
        if let Ok(rows) = self.model.copy_cache(from..self.cached.len()) {
            debug_assert_eq!(rows.start(), from);
            self.prefixes.insert(found, &self.cached, rows);
        }
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
