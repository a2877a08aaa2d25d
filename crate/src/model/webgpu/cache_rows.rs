//! KV-cache rows copied out of the GPU's caches into a buffer of their own, and back: a
//! branch takes its shared prefix from them instead of computing it again.

use super::gpu::Gpu;
use crate::error::Result;
use crate::model::CacheRows;

/// Rows of every layer's key and value caches, on the GPU: cache `c`'s rows are the `c`-th
/// block of `buffer`.
#[derive(Debug)]
pub struct GpuRows {
    start: usize,
    positions: usize,
    row_bytes: u64,
    buffer: wgpu::Buffer,
}

impl CacheRows for GpuRows {
    fn start(&self) -> usize {
        self.start
    }
    fn positions(&self) -> usize {
        self.positions
    }
    fn bytes(&self) -> usize {
        self.buffer.size() as usize
    }
}

impl GpuRows {
    /// Copies positions `range` of each of `caches` (rows of `row_bytes`).
    pub(super) fn copy(gpu: &Gpu, caches: &[wgpu::Buffer], row_bytes: u64, range: std::ops::Range<usize>) -> Result<Self> {
        let block = range.len() as u64 * row_bytes;
        let buffer = gpu.copy_buffer("kv rows", block * caches.len() as u64)?;
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        for (c, cache) in caches.iter().enumerate() {
            encoder.copy_buffer_to_buffer(cache, range.start as u64 * row_bytes, &buffer, c as u64 * block, block);
        }
        gpu.queue.submit([encoder.finish()]);
        gpu.check()?;
        Ok(GpuRows { start: range.start, positions: range.len(), row_bytes, buffer })
    }

    /// Writes the rows' positions `range` back where they were copied from.
    pub(super) fn append(&self, gpu: &Gpu, caches: &[wgpu::Buffer], range: std::ops::Range<usize>) -> Result<()> {
        let block = self.positions as u64 * self.row_bytes;
        let (from, bytes) = (range.start as u64 * self.row_bytes, range.len() as u64 * self.row_bytes);
        let to = (self.start + range.start) as u64 * self.row_bytes;
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        for (c, cache) in caches.iter().enumerate() {
            encoder.copy_buffer_to_buffer(&self.buffer, c as u64 * block + from, cache, to, bytes);
        }
        gpu.queue.submit([encoder.finish()]);
        gpu.check()
    }
}
