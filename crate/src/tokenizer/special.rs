//! Special tokens written in the text become their ids before the model's own tokenizer sees
//! the rest, as llama.cpp's `tokenizer_st_partition` splits them out: one special token at a
//! time, longest first, every occurrence in every piece of text still unsplit.

use super::vocab::Vocab;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

/// `text` cut around the `specials` (in [`Vocab::specials`] order) it contains.
pub(super) fn partition<'a>(text: &'a str, specials: &[u32], vocab: &Vocab) -> Vec<Fragment<'a>> {
    let mut fragments = Vec::new();
    if !text.is_empty() {
        fragments.push(Fragment::Text(text));
    }
    for &id in specials {
        let special = vocab.tokens[id as usize].as_str();
        // Most specials are absent from a given text: one scan of it decides.
        if !text.contains(special) {
            continue;
        }
        let mut split = Vec::with_capacity(fragments.len() + 2);
        for fragment in fragments {
            let Fragment::Text(mut rest) = fragment else {
                split.push(fragment);
                continue;
            };
            while let Some(at) = rest.find(special) {
                if at > 0 {
                    split.push(Fragment::Text(&rest[..at]));
                }
                split.push(Fragment::Token(id));
                rest = &rest[at + special.len()..];
            }
            if !rest.is_empty() {
                split.push(Fragment::Text(rest));
            }
        }
        fragments = split;
    }
    fragments
}
