//! Beam search on the engine: each beam is a sequence that the model continues from its kept
//! prefix (the cache rows of earlier sequences), its new token fed as a run feeds one.

use super::Engine;
use crate::beam::{BeamConfig, BeamSearch, BeamStep, Hypothesis};
use crate::error::{Error, Result};
use crate::model::LanguageModel;
use std::ops::ControlFlow;

impl<M: LanguageModel> Engine<M> {
    /// Runs a beam search after `prompt` and hands each step to `on_step`, which may break to
    /// cancel it ([`Error::Cancelled`]); returns the finished hypotheses, best first.
    pub async fn beam_search(&mut self, prompt: &str, config: &BeamConfig, mut on_step: impl AsyncFnMut(&Self, BeamStep) -> ControlFlow<()>) -> Result<Vec<Hypothesis>> {
        config.check()?;
        let prompt_ids = self.tokenizer.encode_with_special(prompt)?;
        if prompt_ids.is_empty() {
            return Err(Error::EmptyPrompt);
        }
        let context = self.model.context_length();
        if prompt_ids.len() >= context {
            return Err(Error::PromptTooLong { tokens: prompt_ids.len(), context_length: context });
        }
        let config = BeamConfig { max_tokens: config.max_tokens.min(context - prompt_ids.len()), ..config.clone() };
        let stops = config.stop_tokens.clone().unwrap_or_else(|| self.tokenizer.end_of_text_ids());
        let mut search = BeamSearch::new(&config, stops.clone())?;
        let mut logits = vec![self.feed_prompt(&prompt_ids, false).await?.0];
        loop {
            let (mut record, finished) = search.step(&logits)?;
            for node in record.kept.iter_mut().chain(&mut record.finished).chain(&mut record.pruned) {
                if !stops.contains(&node.token) {
                    node.text = self.tokenizer.decode(&[node.token])?;
                }
            }
            if finished {
                for h in &mut record.results {
                    let ends_on_stop = h.tokens.last().is_some_and(|t| stops.contains(t));
                    h.text = self.tokenizer.decode(&h.tokens[..h.tokens.len() - ends_on_stop as usize])?;
                }
                let results = record.results.clone();
                // The search is over: a break here cancels nothing.
                let _ = on_step(self, record).await;
                return Ok(results);
            }
            let sequences: Vec<Vec<u32>> = search.live().map(|tokens| [&prompt_ids[..], tokens].concat()).collect();
            logits.clear();
            for sequence in &sequences {
                logits.push(self.feed_continuation(sequence, prompt_ids.len()).await?.0);
            }
            if on_step(self, record).await.is_break() {
                return Err(Error::Cancelled);
            }
        }
    }
}
