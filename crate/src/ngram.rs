//! N-gram counts over token ids, for the n-gram term of superposed decoding.
//!
//! The store keeps the corpus itself (documents of token ids, each followed by a separator)
//! and every corpus position sorted by the [`MAX_ORDER`] tokens that start there. The
//! positions where a context occurs then form one contiguous run of that index, and within the
//! run they are sorted by the token that follows. So the count of any n-gram up to
//! `MAX_ORDER` is the length of a run found by binary search, at 8 bytes per corpus token for
//! all orders together, instead of one hash table of counts per order.

use crate::error::{Error, Result};
use crate::tokenizer::TextTokenizer;
use std::cmp::Ordering;
use std::ops::Range;

/// The longest n-gram counted: a context of up to `MAX_ORDER - 1` tokens and the next one.
pub const MAX_ORDER: usize = 6;
/// Ends every document; never a vocabulary id, and sorts after all of them.
const SEPARATOR: u32 = u32::MAX;
const MAGIC: &[u8; 8] = b"DPNGRAM\0";
const VERSION: u32 = 1;
const HEADER_BYTES: usize = 40;

/// Counts of n-grams (orders 2 to [`MAX_ORDER`]) of one tokenizer's ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NgramStore {
    vocab_size: u32,
    tokenizer_fingerprint: u64,
    tokens: Vec<u32>,
    index: Vec<u32>,
}

/// Collects documents of token ids, then sorts them into an [`NgramStore`].
#[derive(Debug, Clone)]
pub struct NgramBuilder {
    vocab_size: u32,
    tokenizer_fingerprint: u64,
    tokens: Vec<u32>,
}

impl NgramBuilder {
    /// For ids below `vocab_size` of the tokenizer with this fingerprint
    /// ([`crate::tokenizer::TextTokenizer::fingerprint`]).
    pub fn new(vocab_size: usize, tokenizer_fingerprint: u64) -> Result<Self> {
        let vocab_size = u32::try_from(vocab_size)
            .ok()
            .filter(|&v| v > 0 && v < SEPARATOR)
            .ok_or_else(|| store_error(format!("vocabulary size {vocab_size} is not between 1 and 2^32 - 2")))?;
        Ok(Self { vocab_size, tokenizer_fingerprint, tokens: Vec::new() })
    }

    /// Adds one document. N-grams never span two documents.
    pub fn add_document(&mut self, ids: &[u32]) -> Result<()> {
        if let Some(&token) = ids.iter().find(|&&id| id >= self.vocab_size) {
            return Err(Error::TokenOutOfRange { token, vocab_size: self.vocab_size as usize });
        }
        self.check_room(ids.len() + 1)?;
        if !ids.is_empty() {
            self.tokens.extend_from_slice(ids);
            self.tokens.push(SEPARATOR);
        }
        Ok(())
    }

    /// A builder for `tokenizer`'s ids.
    pub fn for_tokenizer(tokenizer: &TextTokenizer) -> Result<Self> {
        Self::new(tokenizer.vocab_size(), tokenizer.fingerprint())
    }

    /// Tokenizes `text` and adds each paragraph (paragraphs are separated by blank lines) as
    /// a document.
    pub fn add_text(&mut self, tokenizer: &TextTokenizer, text: &str) -> Result<()> {
        let mut paragraph = String::new();
        for line in text.lines().chain([""]) {
            if line.trim().is_empty() {
                if !paragraph.is_empty() {
                    self.add_document(&tokenizer.encode(&paragraph)?)?;
                    paragraph.clear();
                }
            } else {
                if !paragraph.is_empty() {
                    paragraph.push('\n');
                }
                paragraph.push_str(line);
            }
        }
        Ok(())
    }

    /// Adds the documents of another builder for the same tokenizer.
    pub fn append(&mut self, other: NgramBuilder) -> Result<()> {
        if (other.vocab_size, other.tokenizer_fingerprint) != (self.vocab_size, self.tokenizer_fingerprint) {
            return Err(store_error("cannot merge n-grams of two different tokenizers".into()));
        }
        self.check_room(other.tokens.len())?;
        self.tokens.extend_from_slice(&other.tokens);
        Ok(())
    }

    /// Positions are u32: the corpus holds fewer than 2^32 tokens.
    fn check_room(&self, extra: usize) -> Result<()> {
        if self.tokens.len() + extra >= u32::MAX as usize {
            return Err(store_error("the corpus is too large (2^32 - 1 tokens or more)".into()));
        }
        Ok(())
    }

    /// Tokens added so far (separators included).
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn build(self) -> Result<NgramStore> {
        if self.tokens.is_empty() {
            return Err(store_error("the store would be empty: add at least one non-empty document".into()));
        }
        let mut index: Vec<u32> = (0..self.tokens.len() as u32).collect();
        index.sort_unstable_by(|&a, &b| position_order(&self.tokens, a, b));
        Ok(NgramStore {
            vocab_size: self.vocab_size,
            tokenizer_fingerprint: self.tokenizer_fingerprint,
            tokens: self.tokens,
            index,
        })
    }
}

fn store_error(message: String) -> Error {
    Error::NgramStore(message)
}

/// The up-to-`MAX_ORDER` tokens starting at `position`.
fn window(tokens: &[u32], position: u32) -> &[u32] {
    let start = position as usize;
    &tokens[start..(start + MAX_ORDER).min(tokens.len())]
}

/// Index order: by window, then by position, so the bytes of a store are reproducible.
fn position_order(tokens: &[u32], a: u32, b: u32) -> Ordering {
    window(tokens, a).cmp(window(tokens, b)).then(a.cmp(&b))
}

impl NgramStore {
    pub fn vocab_size(&self) -> usize {
        self.vocab_size as usize
    }

    pub fn tokenizer_fingerprint(&self) -> u64 {
        self.tokenizer_fingerprint
    }

    /// Corpus tokens, document separators included.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Bytes held in memory (and, plus a 40-byte header, on disk).
    pub fn memory_bytes(&self) -> usize {
        (self.tokens.len() + self.index.len()) * 4
    }

    /// Refuses a store built with another tokenizer: its ids would mean other tokens.
    pub fn check_tokenizer(&self, vocab_size: usize, tokenizer_fingerprint: u64) -> Result<()> {
        if self.tokenizer_fingerprint != tokenizer_fingerprint || self.vocab_size as usize != vocab_size {
            return Err(store_error(format!(
                "the n-gram store was built with another tokenizer (fingerprint {:016x}, {} tokens; \
                 this model's tokenizer: {tokenizer_fingerprint:016x}, {vocab_size} tokens)",
                self.tokenizer_fingerprint, self.vocab_size
            )));
        }
        Ok(())
    }

    /// A builder holding this store's documents, to add more (e.g. a user's own text).
    pub fn into_builder(self) -> NgramBuilder {
        NgramBuilder {
            vocab_size: self.vocab_size,
            tokenizer_fingerprint: self.tokenizer_fingerprint,
            tokens: self.tokens,
        }
    }

    /// The run of the index whose positions start with `pattern` (at most `MAX_ORDER` tokens).
    fn occurrences(&self, pattern: &[u32]) -> Range<usize> {
        debug_assert!(pattern.len() <= MAX_ORDER);
        let prefix = |p: u32| {
            let w = window(&self.tokens, p);
            &w[..w.len().min(pattern.len())]
        };
        let start = self.index.partition_point(|&p| prefix(p) < pattern);
        let len = self.index[start..].partition_point(|&p| prefix(p) == pattern);
        start..start + len
    }

    /// Occurrences of `context` followed by `next` within the context's run, whose positions
    /// are sorted by their next token.
    fn followers(&self, run: &Range<usize>, context_len: usize, next: u32) -> usize {
        let slice = &self.index[run.clone()];
        let next_of = |p: &u32| self.tokens[*p as usize + context_len];
        let start = slice.partition_point(|p| next_of(p) < next);
        slice[start..].partition_point(|p| next_of(p) == next)
    }

    /// How often `ngram` (1 to `MAX_ORDER` ids) occurs in the corpus.
    pub fn count(&self, ngram: &[u32]) -> Result<usize> {
        check_pattern(ngram, 1)?;
        Ok(self.occurrences(ngram).len())
    }

    /// `count(context + next) / count(context followed by any token)`, or `None` when the
    /// context never occurs before a token (an unseen context, as opposed to probability 0).
    pub fn probability(&self, context: &[u32], next: u32) -> Result<Option<f64>> {
        check_pattern(context, 0)?;
        if context.len() >= MAX_ORDER {
            return Err(store_error(format!("a context holds at most {} tokens", MAX_ORDER - 1)));
        }
        let mut probs = [0.0];
        let seen = self.add_probabilities(context, &[next], 1.0, &mut probs);
        Ok(seen.then_some(probs[0]))
    }

    /// Adds `weight · P(next | context)` to `out[j]` for each `next = candidates[j]`; returns
    /// false, adding nothing, when the context is unseen. `context` holds fewer than
    /// `MAX_ORDER` tokens.
    fn add_probabilities(&self, context: &[u32], candidates: &[u32], weight: f64, out: &mut [f64]) -> bool {
        let run = self.occurrences(context);
        // The separator sorts last: the run's tail is where the context ends a document.
        let total = run.len() - self.followers(&run, context.len(), SEPARATOR);
        if total == 0 {
            return false;
        }
        for (o, &next) in out.iter_mut().zip(candidates) {
            *o += weight * self.followers(&run, context.len(), next) as f64 / total as f64;
        }
        true
    }

    /// The interpolated n-gram probability of each candidate after `history`:
    /// `Σ weight_i · P_{order_i}(candidate | last order_i − 1 tokens)`, over the orders whose
    /// context `history` is long enough for and that the corpus has seen. Written to `out`
    /// (same length as `candidates`).
    pub fn mixture(&self, history: &[u32], orders: &[usize], weights: &[f32], candidates: &[u32], out: &mut [f64]) {
        out.iter_mut().for_each(|o| *o = 0.0);
        for (&order, &weight) in orders.iter().zip(weights) {
            let context_len = order - 1;
            if (1..MAX_ORDER).contains(&context_len) && history.len() >= context_len {
                let context = &history[history.len() - context_len..];
                self.add_probabilities(context, candidates, weight as f64, out);
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_BYTES + self.memory_bytes());
        out.extend_from_slice(MAGIC);
        for word in [VERSION, MAX_ORDER as u32, self.vocab_size, 0] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&self.tokenizer_fingerprint.to_le_bytes());
        out.extend_from_slice(&(self.tokens.len() as u64).to_le_bytes());
        for &x in self.tokens.iter().chain(&self.index) {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out
    }

    /// Reads and fully validates a store written by [`NgramStore::to_bytes`]: a corrupt file
    /// gives an error here, never a wrong count later.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let corrupt = |why: &str| store_error(format!("not a valid n-gram store: {why}"));
        if bytes.len() < HEADER_BYTES || &bytes[..8] != MAGIC {
            return Err(corrupt("missing header"));
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        if u32_at(8) != VERSION || u32_at(12) != MAX_ORDER as u32 {
            return Err(corrupt("unsupported version"));
        }
        let vocab_size = u32_at(16);
        let tokenizer_fingerprint = u64_at(24);
        let n = u64_at(32);
        if n == 0 {
            return Err(store_error("the n-gram store is empty".into()));
        }
        if n >= u32::MAX as u64 || bytes.len() as u64 != HEADER_BYTES as u64 + 8 * n {
            return Err(corrupt("its length does not match its header"));
        }
        let words: Vec<u32> = bytes[HEADER_BYTES..]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let (tokens, index) = words.split_at(n as usize);
        if vocab_size == 0 || vocab_size == SEPARATOR {
            return Err(corrupt("bad vocabulary size"));
        }
        if tokens.iter().any(|&t| t >= vocab_size && t != SEPARATOR) || tokens.last() != Some(&SEPARATOR) {
            return Err(corrupt("a token id is outside the vocabulary"));
        }
        // Strictly increasing in (window, position) implies distinct positions, so with every
        // entry in range the index is a sorted permutation.
        let in_range = index.iter().all(|&p| (p as u64) < n);
        if !in_range || !index.windows(2).all(|w| position_order(tokens, w[0], w[1]) == Ordering::Less) {
            return Err(corrupt("its index is not sorted"));
        }
        Ok(Self { vocab_size, tokenizer_fingerprint, tokens: tokens.to_vec(), index: index.to_vec() })
    }
}

fn check_pattern(ids: &[u32], min_len: usize) -> Result<()> {
    if ids.len() < min_len || ids.len() > MAX_ORDER {
        return Err(store_error(format!("an n-gram holds {min_len} to {MAX_ORDER} tokens, got {}", ids.len())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn store(docs: &[&[u32]]) -> NgramStore {
        let mut builder = NgramBuilder::new(10, 7).unwrap();
        for doc in docs {
            builder.add_document(doc).unwrap();
        }
        builder.build().unwrap()
    }

    /// Counts every n-gram of every document the slow way.
    fn naive_counts(docs: &[&[u32]]) -> HashMap<Vec<u32>, usize> {
        let mut counts = HashMap::new();
        for doc in docs {
            for n in 1..=MAX_ORDER {
                for gram in doc.windows(n) {
                    *counts.entry(gram.to_vec()).or_default() += 1;
                }
            }
        }
        counts
    }

    const DOCS: [&[u32]; 3] = [&[1, 2, 3, 1, 2, 4, 1, 2, 3, 5, 1, 2], &[2, 3, 1, 2, 3], &[9, 9, 9, 9, 9, 9, 9, 9]];

    #[test]
    fn counts_match_a_naive_count() {
        let s = store(&DOCS);
        let counts = naive_counts(&DOCS);
        for (gram, &count) in &counts {
            assert_eq!(s.count(gram).unwrap(), count, "{gram:?}");
        }
        // Across a document boundary: [1, 2] ends doc 0 and [2, 3] starts doc 1.
        assert_eq!(s.count(&[2, 2]).unwrap(), 0);
        assert_eq!(s.count(&[0]).unwrap(), 0);
    }

    #[test]
    fn probabilities_are_conditional_counts() {
        let s = store(&DOCS);
        let counts = naive_counts(&DOCS);
        for (context, _) in counts.iter().filter(|(g, _)| g.len() < MAX_ORDER) {
            // Followed by something: occurrences not at a document's end.
            let total: usize = (0..10).map(|t| counts.get(&[&context[..], &[t]].concat()).copied().unwrap_or(0)).sum();
            for next in 0..10u32 {
                let want = counts.get(&[&context[..], &[next]].concat()).copied().unwrap_or(0);
                let got = s.probability(context, next).unwrap();
                if total == 0 {
                    assert_eq!(got, None, "{context:?}");
                } else {
                    assert_eq!(got, Some(want as f64 / total as f64), "{context:?} {next}");
                }
            }
        }
        assert_eq!(s.probability(&[7], 1).unwrap(), None);
        assert_eq!(s.probability(&[], 9).unwrap(), Some(8.0 / 25.0));
    }

    #[test]
    fn mixture_skips_unseen_and_too_long_contexts() {
        let s = store(&DOCS);
        let mut out = [0.0; 2];
        // P(3 | 2) = 4/5 and P(3 | 1 2) = 3/4: the "1 2" that ends document 0 is not counted.
        s.mixture(&[5, 1, 2], &[2, 3], &[0.5, 0.25], &[3, 4], &mut out);
        assert_eq!(out, [0.5 * 4.0 / 5.0 + 0.25 * 3.0 / 4.0, 0.5 * 1.0 / 5.0 + 0.25 * 1.0 / 4.0]);
        s.mixture(&[2], &[2, 3], &[0.5, 0.25], &[3, 4], &mut out);
        assert_eq!(out, [0.5 * 4.0 / 5.0, 0.5 * 1.0 / 5.0]);
        s.mixture(&[8], &[2], &[1.0], &[3, 4], &mut out);
        assert_eq!(out, [0.0, 0.0]);
    }

    #[test]
    fn round_trips_through_bytes_and_extends() {
        let s = store(&DOCS);
        let bytes = s.to_bytes();
        assert_eq!(bytes.len(), 40 + s.memory_bytes());
        assert_eq!(NgramStore::from_bytes(&bytes).unwrap(), s);
        let mut builder = s.clone().into_builder();
        builder.add_document(&[4, 4]).unwrap();
        let bigger = builder.build().unwrap();
        assert_eq!(bigger.count(&[4, 4]).unwrap(), 1);
        assert_eq!(bigger.count(&[1, 2, 3]).unwrap(), s.count(&[1, 2, 3]).unwrap());
    }

    #[test]
    fn refuses_corrupt_empty_and_foreign_stores() {
        let bytes = store(&DOCS).to_bytes();
        let message = |b: &[u8]| NgramStore::from_bytes(b).unwrap_err().to_string();
        assert!(message(&bytes[..bytes.len() - 1]).contains("length"));
        assert!(message(b"hello").contains("header"));
        let mut swapped = bytes.clone();
        let last = swapped.len() - 4;
        swapped.copy_within(last - 4..last, last);
        assert!(message(&swapped).contains("not sorted"));
        let mut bad_token = bytes.clone();
        bad_token[HEADER_BYTES] = 200;
        assert!(message(&bad_token).contains("outside the vocabulary"));
        assert!(NgramBuilder::new(10, 7).unwrap().build().unwrap_err().to_string().contains("empty"));
        let mut empty = bytes[..HEADER_BYTES].to_vec();
        empty[32..40].copy_from_slice(&0u64.to_le_bytes());
        assert!(message(&empty).contains("empty"));
        let s = store(&DOCS);
        assert!(s.check_tokenizer(10, 7).is_ok());
        assert!(s.check_tokenizer(10, 8).unwrap_err().to_string().contains("another tokenizer"));
        assert!(NgramBuilder::new(10, 7).unwrap().add_document(&[10]).is_err());
        assert!(s.count(&[1; 7]).is_err());
    }
}
