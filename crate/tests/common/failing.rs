//! A model double that fails one feeding call on demand, as a backend can mid-run (a lost GPU,
//! an engine error), for the tests of what a failed step leaves behind.

use decoding_playground::model::EmbeddingTable;
use decoding_playground::{Error, LanguageModel, Result};

pub struct FailingModel<M> {
    pub inner: M,
    /// The feeding call (counted from 0 across prefill and steps) that fails.
    pub fail_at: Option<usize>,
    pub calls: usize,
}

impl<M: LanguageModel> FailingModel<M> {
    pub fn new(inner: M) -> Self {
        Self { inner, fail_at: None, calls: 0 }
    }

    fn count(&mut self) -> Result<()> {
        let call = self.calls;
        self.calls += 1;
        if self.fail_at == Some(call) {
            // As the tract backend does on an inference failure: the cache is gone.
            self.inner.reset();
            return Err(Error::Model(format!("injected failure at call {call}")));
        }
        Ok(())
    }
}

impl<M: LanguageModel> LanguageModel for FailingModel<M> {
    type Rows = M::Rows;
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
    fn context_length(&self) -> usize {
        self.inner.context_length()
    }
    fn embeddings(&self) -> &EmbeddingTable {
        self.inner.embeddings()
    }
    async fn prefill(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        self.count()?;
        self.inner.prefill(ids).await
    }
    async fn prefill_all_logits(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        self.count()?;
        self.inner.prefill_all_logits(ids).await
    }
    async fn step_embedding(&mut self, embedding: &[f32]) -> Result<Vec<f32>> {
        self.count()?;
        self.inner.step_embedding(embedding).await
    }
    fn position(&self) -> usize {
        self.inner.position()
    }
    fn truncate(&mut self, len: usize) -> Result<()> {
        self.inner.truncate(len)
    }
    fn reset(&mut self) {
        self.inner.reset()
    }
    fn copy_cache(&self, range: std::ops::Range<usize>) -> Result<M::Rows> {
        self.inner.copy_cache(range)
    }
    fn append_cache(&mut self, rows: &M::Rows, range: std::ops::Range<usize>) -> Result<()> {
        self.inner.append_cache(rows, range)
    }
}
