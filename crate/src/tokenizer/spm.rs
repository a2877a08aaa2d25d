//! SentencePiece as llama.cpp runs it (`llm_tokenizer_spm_session`): start from the text's
//! characters and keep merging the adjacent pair whose union is the vocabulary's highest-scoring
//! token (the leftmost pair on a tie); characters that end up in no token become byte tokens
//! `<0xXX>`. The text arrives with its spaces already written as "▁".

use super::vocab::Vocab;
use crate::error::{Error, Result};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A run of the text: a character at first, then what merges made of it. `len` 0: merged into
/// the symbol on its left.
#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// A candidate merge of `left` with its right neighbour, valid while the two still have the
/// lengths that made `len`.
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    len: usize,
}

impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.total_cmp(&other.score).then(other.left.cmp(&self.left))
    }
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Bigram {}

/// Appends the ids of `text` to `out`.
pub(super) fn encode(text: &str, vocab: &Vocab, scores: &[f32], out: &mut Vec<u32>) -> Result<()> {
    let n = text.chars().count();
    let mut symbols: Vec<Symbol> = text
        .char_indices()
        .enumerate()
        .map(|(i, (start, c))| Symbol {
            start,
            len: c.len_utf8(),
            prev: i.checked_sub(1),
            next: (i + 1 < n).then_some(i + 1),
        })
        .collect();
    let mut queue = BinaryHeap::new();
    let bigram = |symbols: &[Symbol], left: Option<usize>, right: Option<usize>| {
        let (left, right) = (left?, right?);
        let (start, len) = (symbols[left].start, symbols[left].len + symbols[right].len);
        let id = vocab.id(&text[start..start + len])?;
        Some(Bigram { score: scores[id as usize], left, right, len })
    };
    for i in 1..symbols.len() {
        queue.extend(bigram(&symbols, Some(i - 1), Some(i)));
    }
    while let Some(Bigram { left, right, len, .. }) = queue.pop() {
        let (l, r) = (symbols[left], symbols[right]);
        if l.len == 0 || r.len == 0 || l.len + r.len != len {
            continue;
        }
        symbols[left].len = len;
        symbols[right].len = 0;
        symbols[left].next = r.next;
        if let Some(next) = r.next {
            symbols[next].prev = Some(left);
        }
        queue.extend(bigram(&symbols, l.prev, Some(left)));
        queue.extend(bigram(&symbols, Some(left), r.next));
    }
    let mut at = (!symbols.is_empty()).then_some(0);
    while let Some(i) = at {
        let Symbol { start, len, next, .. } = symbols[i];
        let piece = &text[start..start + len];
        // Merges only make tokens, so a piece outside the vocabulary is one character.
        match vocab.id(piece) {
            Some(id) => out.push(id),
            None => {
                for byte in piece.bytes() {
                    out.push(byte_token(vocab, byte)?);
                }
            }
        }
        at = next;
    }
    Ok(())
}

/// `<0xXX>`, or else the byte as a one-character token (`llama_vocab::byte_to_token`).
fn byte_token(vocab: &Vocab, byte: u8) -> Result<u32> {
    let hex = format!("<0x{byte:02X}>");
    let single = (byte < 0x80).then(|| char::from(byte).to_string());
    vocab.id(&hex).or_else(|| single.and_then(|s| vocab.id(&s))).ok_or_else(|| {
        Error::Tokenizer(format!(
            "a character needs the byte token {hex}, which this SentencePiece vocabulary lacks"
        ))
    })
}
