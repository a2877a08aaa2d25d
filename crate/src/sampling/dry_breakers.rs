//! DRY's sequence breakers, turned from text into the token sequences that end a repetition,
//! as llama.cpp's `get_overlapping_token_sequences` (from koboldcpp) does it.

use crate::error::Result;
use std::collections::HashMap;

/// What turning breakers into tokens needs of a tokenizer.
pub trait BreakerVocab {
    fn vocab_size(&self) -> usize;
    /// The text one token decodes to, special tokens written out.
    fn token_text(&self, id: u32) -> Result<String>;
    /// The ids of `text`, nothing added around it.
    fn tokenize(&self, text: &str) -> Result<Vec<u32>>;
}

/// llama.cpp's limits: longer breakers are refused here (llama.cpp truncates them), and tails
/// are cut to this many tokens so that the scan for them stays linear.
pub const MAX_BREAKER_BYTES: usize = 40;
const MAX_TAIL_TOKENS: usize = 20;

/// Head token → the token tails that complete a breaker after it. A token whose text contains
/// a breaker has an empty tail: it breaks alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestartSequences(HashMap<u32, Vec<Vec<u32>>>);

impl RestartSequences {
    /// The tails of the breakers that start with `token`.
    pub fn tails(&self, token: u32) -> &[Vec<u32>] {
        self.0.get(&token).map_or(&[], Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A token that is a whole breaker by itself, which DRY never penalises.
    pub fn breaks_alone(&self, token: u32) -> bool {
        self.tails(token).iter().any(Vec::is_empty)
    }

    /// Each breaker given as its tokens, the first being the head (tests, and callers that
    /// resolved breakers themselves).
    pub fn from_token_sequences(sequences: &[Vec<u32>]) -> Self {
        let mut map = Self::default();
        for sequence in sequences.iter().filter(|s| !s.is_empty()) {
            map.insert(sequence[0], sequence[1..].to_vec());
        }
        map
    }

    /// Every token whose text contains a breaker breaks alone; every token whose text ends
    /// with the start of a breaker is a head, its tail the tokens of the breaker's rest.
    pub fn from_breakers(breakers: &[String], vocab: &dyn BreakerVocab) -> Result<Self> {
        let mut map = Self::default();
        if breakers.is_empty() {
            return Ok(map);
        }
        for id in 0..vocab.vocab_size() as u32 {
            let word = vocab.token_text(id)?;
            let word = word.as_bytes();
            for breaker in breakers.iter().map(|b| b.as_bytes()) {
                if contains(word, breaker) {
                    map.insert(id, Vec::new());
                    continue;
                }
                for start in (0..word.len()).filter(|&i| word[i] == breaker[0]) {
                    let overlap = word.len() - start;
                    if overlap < breaker.len() && word[start..] == breaker[..overlap] {
                        let rest = String::from_utf8_lossy(&breaker[overlap..]);
                        let mut tail = vocab.tokenize(&rest)?;
                        tail.truncate(MAX_TAIL_TOKENS);
                        map.insert(id, tail);
                    }
                }
            }
        }
        Ok(map)
    }

    fn insert(&mut self, head: u32, tail: Vec<u32>) {
        let tails = self.0.entry(head).or_default();
        if !tails.contains(&tail) {
            tails.push(tail);
        }
    }
}

fn contains(word: &[u8], part: &[u8]) -> bool {
    word.windows(part.len()).any(|w| w == part)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens are the strings below; text is tokenized greedily, longest token first.
    struct Words(&'static [&'static str]);

    impl BreakerVocab for Words {
        fn vocab_size(&self) -> usize {
            self.0.len()
        }
        fn token_text(&self, id: u32) -> Result<String> {
            Ok(self.0[id as usize].to_string())
        }
        fn tokenize(&self, mut text: &str) -> Result<Vec<u32>> {
            let mut ids = Vec::new();
            while !text.is_empty() {
                let (id, word) = (0..self.0.len()).map(|i| (i as u32, self.0[i])).filter(|(_, w)| text.starts_with(w)).max_by_key(|(_, w)| w.len()).unwrap();
                ids.push(id);
                text = &text[word.len()..];
            }
            Ok(ids)
        }
    }

    #[test]
    fn tokens_containing_a_breaker_break_alone_and_prefixes_get_tails() {
        let vocab = Words(&["a", "b", ":", "x:", "ab", "y"]);
        let sequences = RestartSequences::from_breakers(&[":".into(), "aby".into()], &vocab).unwrap();
        assert!(sequences.breaks_alone(2) && sequences.breaks_alone(3));
        // "a" starts "aby" (tail "by" = b, y); "ab" too (tail "y"); "b" does not start it.
        assert_eq!(sequences.tails(0), [vec![1, 5]]);
        assert_eq!(sequences.tails(4), [vec![5]]);
        assert!(sequences.tails(1).is_empty());
        assert_eq!(RestartSequences::from_breakers(&[], &vocab).unwrap(), RestartSequences::default());
    }
}
