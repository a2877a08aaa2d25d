use super::{Candidates, Sampler};
use crate::error::{check, Result};

/// Keeps exactly the k most likely tokens (fewer only if fewer exist). Ties at the boundary go
/// to the lower token id. Partial selection, no sort of the vocabulary.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
}

impl TopK {
    pub fn new(k: usize) -> Result<Self> {
        check(k >= 1, "topK", "at least 1", k)?;
        Ok(Self { k })
    }
}

impl Sampler for TopK {
    fn name(&self) -> &'static str {
        "topK"
    }

    fn apply(&mut self, candidates: &mut Candidates) -> Result<()> {
        if self.k < candidates.len() {
            let ranked = candidates.rank_head(self.k);
            candidates.keep_head(ranked);
        }
        Ok(())
    }
}
