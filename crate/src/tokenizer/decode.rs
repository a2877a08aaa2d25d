//! Ids back to text as llama.cpp's `detokenize` makes it with special tokens shown
//! (`remove_special = false, unparse_special = true`): each token's piece, the first one's
//! leading space dropped where the tokenizer adds one, then BPE's `clean_spaces` passes.

use super::vocab::{Attr, Vocab};

/// How a normal token's text becomes bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pieces {
    /// SentencePiece: "▁" is a space.
    Spm,
    /// Byte-level BPE: every character stands for one byte (GPT-2's table).
    ByteLevel,
}

/// The bytes of token `id` alone (`token_to_piece` with `special = true`): control, unknown and
/// user-defined tokens as written, byte tokens as their byte, unused ones as nothing. An id
/// outside the vocabulary (a model's padding rows) is nothing too, as HF's decoders skip it.
pub(super) fn piece(vocab: &Vocab, pieces: Pieces, id: u32, out: &mut Vec<u8>) {
    let (Some(text), Some(&attr)) = (vocab.tokens.get(id as usize), vocab.attrs.get(id as usize)) else { return };
    if attr.has(Attr::CONTROL.or(Attr::UNKNOWN).or(Attr::USER_DEFINED)) {
        out.extend_from_slice(text.as_bytes());
    } else if attr.has(Attr::NORMAL) {
        match pieces {
            Pieces::Spm => out.extend_from_slice(text.replace('▁', " ").as_bytes()),
            Pieces::ByteLevel => byte_level(text, out),
        }
    } else if attr.has(Attr::BYTE) {
        // llama.cpp reads the two hex digits of "<0xXX>" and 0 from anything else.
        out.push(text.get(3..5).and_then(|hex| u8::from_str_radix(hex, 16).ok()).unwrap_or(0));
    }
}

pub(super) fn detokenize(vocab: &Vocab, pieces: Pieces, ids: &[u32], strip_first_space: bool, clean_spaces: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        let start = out.len();
        piece(vocab, pieces, id, &mut out);
        if i == 0 && strip_first_space && out.first() == Some(&b' ') {
            out.remove(start);
        }
    }
    if clean_spaces {
        clean_up_spaces(&mut out);
    }
    out
}

/// GPT-2's byte ↔ character table, inverted: printable bytes stand for themselves, the 68
/// others (0x00–0x20, 0x7F–0xA0, 0xAD) for U+0100 onwards in byte order.
fn byte_of_char(c: char) -> Option<u8> {
    let code = c as u32;
    let byte = match code {
        0x21..=0x7e | 0xa1..=0xac | 0xae..=0xff => code,
        0x100..=0x120 => code - 0x100,
        0x121..=0x142 => code - 0x121 + 0x7f,
        0x143 => 0xad,
        _ => return None,
    };
    Some(byte as u8)
}

/// `llama_decode_text`: a character outside the table is written as llama.cpp writes it.
fn byte_level(text: &str, out: &mut Vec<u8>) {
    for c in text.chars() {
        match byte_of_char(c) {
            Some(byte) => out.push(byte),
            None => {
                out.extend_from_slice(b"[UNK_BYTE_0x");
                let mut utf8 = [0; 4];
                for byte in c.encode_utf8(&mut utf8).bytes() {
                    out.extend_from_slice(format!("{byte:02x}").as_bytes());
                }
                out.extend_from_slice(text.as_bytes());
                out.push(b']');
            }
        }
    }
}

/// llama.cpp's three in-place passes, kept as written: each reads the previous byte of what it
/// has not yet rewritten, and the second one blanks the space it skips.
fn clean_up_spaces(text: &mut Vec<u8>) {
    // " ?", " !", " .", " ," lose the space.
    let mut total = text.len().min(1);
    for i in 1..text.len() {
        let x = text[i];
        if text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            total -= 1;
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);
    // " ' " becomes "'".
    let n = text.len();
    let mut total = n.min(1);
    let mut i = 1;
    while i < n {
        let x = text[i];
        if x == b'\'' && i + 1 < n && text[i - 1] == b' ' && text[i + 1] == b' ' {
            total -= 1;
            i += 1;
            text[i] = 0;
        }
        text[total] = x;
        total += 1;
        i += 1;
    }
    text.truncate(total);
    // " 's", " 'm", " 're", " 've" lose the space.
    let n = text.len();
    let mut total = n.min(1);
    for i in 1..n {
        let x = text[i];
        if text[i - 1] == b' ' && x == b'\'' && i + 1 < n {
            let x1 = text[i + 1];
            let x2 = text.get(i + 2).filter(|_| i + 2 < n).copied();
            if matches!(x1, b's' | b'm') || matches!((x1, x2), (b'r', Some(b'e')) | (b'v', Some(b'e'))) {
                total -= 1;
            }
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);
}
