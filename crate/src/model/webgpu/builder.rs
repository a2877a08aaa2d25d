//! The decoder's operations ([`Builder`]) as WebGPU dispatches, recorded once at load: every
//! value lives in a scratch buffer of `MAX_CHUNK` rows chosen by its role, and each layer owns
//! its KV cache and weights.

use std::collections::HashMap;

use super::gpu::{Bound, Gpu, GpuMatrix};
use super::{Dispatch, Groups, MAX_CHUNK};
use crate::error::Result;
use crate::model::arch::decoder::{inverse_frequencies, Builder, NormRole, Role};
use crate::model::arch::params::{LayerRope, ModelParams};
use crate::model::arch::Activation;
use crate::model::weights::{Matrix, ModelWeights};

/// Where a value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Slot {
    X,
    Normed,
    Q,
    K,
    V,
    QNormed,
    KNormed,
    Attended,
    Out,
    Gate,
    Up,
}

pub(super) struct GpuBuilder<'a> {
    gpu: &'a Gpu,
    p: &'a ModelParams,
    rope_factors: Option<&'a [f32]>,
    context_length: usize,
    buffers: HashMap<Slot, wgpu::Buffer>,
    /// The `[position][head_dim / 2]` cosine and sine tables, per distinct layer RoPE.
    angles: Vec<(LayerRope, wgpu::Buffer)>,
    pub body: Vec<Dispatch>,
    /// Every layer's key and value caches, `[position][kv_width]` f32 each.
    pub caches: Vec<wgpu::Buffer>,
    /// The last dispatch, when it is a plain product: its matrix and input, so that a residual
    /// add can fold into it as an accumulating product.
    last_product: Option<(GpuMatrix, Slot, Slot)>,
    /// The first upload that failed: the builder's operations cannot return it themselves.
    pub error: Option<crate::error::Error>,
}

impl<'a> GpuBuilder<'a> {
    pub fn new(gpu: &'a Gpu, weights: &'a ModelWeights, context_length: usize) -> Result<Self> {
        let p = &weights.params;
        let (d, q, kv, ff) = (p.hidden_size, p.q_width(), p.kv_width(), p.intermediate_size);
        let widths = [
            (Slot::X, d),
            (Slot::Normed, d),
            (Slot::Q, q),
            (Slot::K, kv),
            (Slot::V, kv),
            (Slot::QNormed, q),
            (Slot::KNormed, kv),
            (Slot::Attended, q),
            (Slot::Out, d),
            (Slot::Gate, ff),
            (Slot::Up, ff),
        ];
        let mut buffers = HashMap::new();
        for (slot, width) in widths {
            buffers.insert(slot, gpu.zeroed(&format!("{slot:?}"), MAX_CHUNK * width)?);
        }
        Ok(GpuBuilder {
            gpu,
            p,
            rope_factors: weights.rope_factors(context_length),
            context_length,
            buffers,
            angles: Vec::new(),
            body: Vec::new(),
            caches: Vec::new(),
            last_product: None,
            error: None,
        })
    }

    pub fn buffer(&self, slot: Slot) -> &wgpu::Buffer {
        &self.buffers[&slot]
    }

    fn push(&mut self, bound: Bound, groups: Groups) {
        self.body.push(Dispatch { bound, groups });
        self.last_product = None;
    }

    fn fail<T>(&mut self, result: Result<T>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.error.get_or_insert(e);
                None
            }
        }
    }

    fn storage(&mut self, label: &str, values: &[f32]) -> Option<wgpu::Buffer> {
        let buffer = self.gpu.storage(label, bytemuck::cast_slice(values));
        self.fail(buffer)
    }

    fn add(&mut self, x: Slot, y: &wgpu::Buffer, width: usize, broadcast: bool) {
        let bound = self.gpu.bind(&self.gpu.kernels.add, [width as u32, broadcast as u32, 0, 0], &[self.buffer(x), y]);
        self.push(bound, Groups::Elements(width));
    }

    fn angles(&mut self, layer: usize) -> Option<usize> {
        let rope = self.p.layer_rope(layer);
        if let Some(i) = self.angles.iter().position(|(r, _)| *r == rope) {
            return Some(i);
        }
        let inv_freq = inverse_frequencies(&rope, self.p.head_dim, self.rope_factors);
        let table = rope_angles(&inv_freq, rope.attn_factor, self.context_length);
        let buffer = self.storage("rope angles", &table)?;
        self.angles.push((rope, buffer));
        Some(self.angles.len() - 1)
    }
}

impl Builder for GpuBuilder<'_> {
    type Value = Slot;

    fn scale(&mut self, x: Slot, by: f32) -> Slot {
        let width = self.p.hidden_size;
        let bound = self.gpu.bind(&self.gpu.kernels.scale, [width as u32, by.to_bits(), 0, 0], &[self.buffer(x)]);
        self.push(bound, Groups::Elements(width));
        x
    }

    fn norm(&mut self, x: &Slot, layer: usize, role: NormRole, weight: &[f32]) -> Slot {
        let (out, width, groups) = match role {
            NormRole::QHead => (Slot::QNormed, self.p.head_dim, Groups::TokenRows(self.p.num_heads)),
            NormRole::KHead => (Slot::KNormed, self.p.head_dim, Groups::TokenRows(self.p.num_kv_heads)),
            _ => (Slot::Normed, self.p.hidden_size, Groups::TokenRows(1)),
        };
        let Some(weight) = self.storage(&role.tensor(layer), weight) else { return out };
        let dims = [width as u32, self.p.rms_norm_eps.to_bits(), 0, 0];
        let bound = self.gpu.bind(&self.gpu.kernels.rmsnorm, dims, &[self.buffer(*x), self.buffer(out), &weight]);
        self.push(bound, groups);
        out
    }

    fn project(&mut self, x: &Slot, layer: usize, role: Role, w: &Matrix, bias: Option<&[f32]>) -> Slot {
        let out = match role {
            Role::Q => Slot::Q,
            Role::K => Slot::K,
            Role::V => Slot::V,
            Role::AttnOut | Role::Down => Slot::Out,
            Role::Gate => Slot::Gate,
            Role::Up => Slot::Up,
        };
        let name = format!("blk.{layer}.{}", role.tensor());
        let matrix = self.gpu.upload(&name, w);
        let Some(matrix) = self.fail(matrix) else { return out };
        let bound = self.gpu.bind_matmul(&matrix, self.buffer(*x), self.buffer(out), false, false);
        self.push(bound, Groups::Rows(matrix.rows));
        self.last_product = Some((matrix, *x, out));
        if let Some(bias) = bias {
            if let Some(bias) = self.storage(&format!("{name}.bias"), bias) {
                self.add(out, &bias, w.rows(), true);
            }
        }
        out
    }

    fn attention(&mut self, layer: usize, q: Slot, k: Slot, v: Slot) -> Slot {
        let p = self.p;
        let kv_width = p.kv_width();
        let caches = ["k", "v"].map(|c| self.gpu.zeroed(&format!("blk.{layer}.{c} cache"), self.context_length * kv_width));
        let [Some(k_cache), Some(v_cache)] = caches.map(|c| self.fail(c)) else { return Slot::Attended };
        self.caches.extend([k_cache.clone(), v_cache.clone()]);
        let Some(angles) = self.angles(layer) else { return Slot::Attended };
        let window = p.window(layer).unwrap_or(0) as u32;
        let dims = [p.num_heads as u32, p.num_kv_heads as u32, p.head_dim as u32, window];
        let kernels = &self.gpu.kernels;
        let angles = &self.angles[angles].1;
        let store = [self.buffer(q), self.buffer(k), self.buffer(v), &k_cache, &v_cache, angles];
        let rope_store = self.gpu.bind(&kernels.rope_store, dims, &store);
        let attend = [self.buffer(q), &k_cache, &v_cache, self.buffer(Slot::Attended)];
        let attention = self.gpu.bind(&kernels.attention, dims, &attend);
        self.push(rope_store, Groups::TokenRows(1));
        self.push(attention, Groups::HeadsByTokens(p.num_heads));
        Slot::Attended
    }

    fn gated(&mut self, gate: Slot, up: Slot, act: Activation) -> Slot {
        let width = self.p.intermediate_size;
        let dims = [width as u32, (act == Activation::GeluTanh) as u32, 0, 0];
        let bound = self.gpu.bind(&self.gpu.kernels.glu, dims, &[self.buffer(gate), self.buffer(up)]);
        self.push(bound, Groups::Elements(width));
        gate
    }

    fn residual(&mut self, x: Slot, branch: Slot) -> Slot {
        match self.last_product.take() {
            // The product that made `branch` accumulates into x instead.
            Some((matrix, input, out)) if out == branch => {
                let bound = self.gpu.bind_matmul(&matrix, self.buffer(input), self.buffer(x), true, false);
                let last = self.body.last_mut().expect("the product's dispatch");
                last.bound = bound;
            }
            _ => {
                let branch = self.buffers[&branch].clone();
                self.add(x, &branch, self.p.hidden_size, false);
            }
        }
        x
    }
}

/// `[position][head_dim / 2]` cosines, then the sines, of the RoPE angles `position · inv_freq`,
/// each times `attn_factor`, computed as the tract graph computes them (f32, libm).
pub(super) fn rope_angles(inv_freq: &[f32], attn_factor: f32, positions: usize) -> Vec<f32> {
    let half = inv_freq.len();
    let angle = |pos: usize, i: usize| pos as f32 * inv_freq[i];
    let table = |f: fn(f32) -> f32| (0..positions).flat_map(move |pos| (0..half).map(move |i| f(angle(pos, i)) * attn_factor));
    table(libm::cosf).chain(table(libm::sinf)).collect()
}
