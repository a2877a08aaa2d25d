//! Scoring a given text: how surprising the model finds each of its tokens, teacher-forced, with
//! the rank of the actual token and the alternatives the model preferred (a GLTR-style view).

use serde::{Deserialize, Serialize};

use crate::error::{check, Result};
use crate::generate::Engine;
use crate::model::LanguageModel;
use crate::sampling::record::{describe_step, full_distribution};
use crate::sampling::{Alternative, PerplexityMeter};
use crate::tokenizer::TextStream;

/// Positions scored per model call: the logits of one chunk (`SCORE_CHUNK × vocab` floats) are
/// all that is held, whatever the text's length.
pub const SCORE_CHUNK: usize = 32;
/// The most alternatives listed per token: a long text lists them for every token.
pub const MAX_SCORE_TOP_N: usize = 100;

/// What to score against. camelCase in JSON and JS; missing fields take defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ScoreConfig {
    /// Text before the scored one (a prompt, the start of a document): it conditions the text's
    /// first tokens but is not scored itself.
    pub context: String,
    /// Alternatives listed per token, most probable first (0 to 100; default 10).
    /// Was `topN`, which read like `topK`; the old name is still accepted (with a warning in JS)
    /// until 0.2.0, which removes the alias (see `RENAMED_FIELDS` in wasm/convert.rs).
    #[serde(alias = "topN")]
    pub top_alternatives: usize,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        Self { context: String::new(), top_alternatives: 10 }
    }
}

/// One token of the scored text. Without a context the first token has nothing before it to be
/// predicted from: its figures are `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase")]
pub struct ScoredToken {
    pub token: u32,
    /// The text this token adds (empty while a character is incomplete).
    pub text: String,
    /// p(token | everything before it).
    pub prob: Option<f32>,
    /// −log₂ prob.
    pub surprise_bits: Option<f32>,
    /// Entropy of the model's whole next-token distribution at this position, in bits.
    pub entropy_bits: Option<f32>,
    /// 1 + the number of tokens the model found more probable.
    pub rank: Option<u32>,
    pub top: Vec<Alternative>,
}

/// A scored text: every token, and the mean over the scored ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase")]
pub struct ScoreResult {
    /// Tokens of the context (not listed).
    pub context_tokens: usize,
    pub tokens: Vec<ScoredToken>,
    /// Tokens with figures (all, or all but the first without a context).
    pub scored: usize,
    pub mean_surprise_bits: f64,
    /// 2^mean surprise: the text's perplexity given the context.
    pub perplexity: f64,
}

impl<M: LanguageModel> Engine<M> {
    /// Scores `text` after `config.context`, teacher-forced, [`SCORE_CHUNK`] positions per model
    /// call. With [`Engine::set_reuse_prefix`], feeds only what follows the prefix shared with
    /// the previous call.
    pub async fn score(&mut self, text: &str, config: &ScoreConfig) -> Result<ScoreResult> {
        check(config.top_alternatives <= MAX_SCORE_TOP_N, "topAlternatives", "at most 100", config.top_alternatives)?;
        // The context is where the model's BOS goes (alone, for a text without context).
        let context = self.tokenizer().encode_with_special(&config.context)?;
        let ids = self.tokenizer().encode(text)?;
        check(
            ids.len() + context.len().min(1) >= 2,
            "text",
            "at least two tokens, or one after a context (the first token of a text without context has nothing to be predicted from)",
            format!("{} token(s) and no context", ids.len()),
        )?;
        let all = [&context[..], &ids[..]].concat();
        let room = self.model().context_length();
        check(
            all.len() <= room,
            "text",
            "at most the model's context length in tokens, context included",
            format!("{} tokens ({room} fit)", all.len()),
        )?;
        // The first position with a prediction: the text's first token after a context, else its
        // second.
        let first = context.len().max(1);
        let vocab = self.model().vocab_size();
        let (mut weights, mut scratch) = (Vec::new(), Vec::new());
        let mut meter = PerplexityMeter::default();
        let mut stream = TextStream::default();
        let mut tokens = Vec::with_capacity(ids.len());
        for &id in &ids[..first - context.len()] {
            let text = stream.push(self.tokenizer(), id)?;
            tokens.push(ScoredToken { token: id, text, prob: None, surprise_bits: None, entropy_bits: None, rank: None, top: Vec::new() });
        }
        let (mut logits, _) = self.feed_prompt(&all[..first], false).await?;
        let mut pos = first;
        loop {
            for row in logits.chunks_exact(vocab) {
                let id = all[pos];
                let full = full_distribution(row, 1.0, &mut weights);
                let mut record = describe_step(row, &full, id, vocab, config.top_alternatives, &mut scratch);
                self.label_alternatives(&mut record.top)?;
                let rank = 1 + row.iter().filter(|&&x| x > row[id as usize]).count() as u32;
                meter.add(record.surprise_bits);
                tokens.push(ScoredToken {
                    token: id,
                    text: stream.push(self.tokenizer(), id)?,
                    prob: Some(record.prob),
                    surprise_bits: Some(record.surprise_bits),
                    entropy_bits: Some(record.entropy_bits),
                    rank: Some(rank),
                    top: record.top,
                });
                pos += 1;
            }
            if pos == all.len() {
                break;
            }
            // Positions pos-1 .. pos-1+n predict tokens pos .. pos+n.
            let n = SCORE_CHUNK.min(all.len() - pos);
            logits = self.feed_more(&all[..pos - 1 + n], pos - 1).await?;
        }
        Ok(ScoreResult {
            context_tokens: context.len(),
            scored: tokens.len() - (first - context.len()),
            tokens,
            mean_surprise_bits: meter.mean_surprise_bits(),
            perplexity: meter.perplexity(),
        })
    }
}
