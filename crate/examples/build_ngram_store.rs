//! Builds an n-gram store for superposed decoding from text files.
//!
//!     cargo run --release --example build_ngram_store -- TOKENIZER_JSON OUT TEXT_FILE...
//!
//! Paragraphs (separated by blank lines) are documents: no n-gram spans two of them.

use decoding_playground::ngram::NgramBuilder;
use decoding_playground::tokenizer::TextTokenizer;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [tokenizer_path, out_path, texts @ ..] = &args[..] else {
        return Err("usage: build_ngram_store TOKENIZER_JSON OUT TEXT_FILE...".into());
    };
    if texts.is_empty() {
        return Err("give at least one text file".into());
    }
    let tokenizer = TextTokenizer::from_bytes(&std::fs::read(tokenizer_path)?)?;
    let mut builder = NgramBuilder::for_tokenizer(&tokenizer)?;
    let start = Instant::now();
    for path in texts {
        let before = builder.len();
        builder.add_text(&tokenizer, &std::fs::read_to_string(path)?)?;
        println!("{path}: {} tokens", builder.len() - before);
    }
    let tokenized = start.elapsed();
    let store = builder.build()?;
    std::fs::write(out_path, store.to_bytes())?;
    println!(
        "{out_path}: {} tokens, {:.1} MB; tokenized in {:.1} s, sorted in {:.1} s",
        store.len(),
        store.memory_bytes() as f64 / 1e6,
        tokenized.as_secs_f64(),
        (start.elapsed() - tokenized).as_secs_f64()
    );
    Ok(())
}
