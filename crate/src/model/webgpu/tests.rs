//! Each WGSL kernel against a scalar f64 reference, on the software adapter (natively lavapipe:
//! `mesa-vulkan-drivers`, which scripts/setup.sh installs).

use pollster::block_on;

use super::gpu::{Bound, Gpu, Step};
use super::builder::rope_angles;
use crate::model::arch::decoder::inverse_frequencies;
use crate::model::arch::params::LayerRope;
use crate::model::f16_bits_to_f32;
use crate::model::formats::GgmlType;
use crate::model::quant::testing::{random_activations, random_blocks, Lcg};
use crate::model::quant::QuantMatrix;
use crate::model::weights::Matrix;

fn gpu() -> Gpu {
    block_on(Gpu::new(true)).expect("a WebGPU adapter; natively, Mesa's lavapipe (apt-get install mesa-vulkan-drivers)")
}

/// Runs one dispatch and reads `floats` values of `out` back.
fn run(gpu: &Gpu, step: Step, bound: &Bound, groups: [u32; 3], out: &wgpu::Buffer, floats: usize) -> Vec<f32> {
    gpu.write_step(step);
    let staging = gpu.staging(floats);
    block_on(gpu.run(&[(bound, groups)], Some((out, floats, &staging)))).unwrap()
}

fn buffer(gpu: &Gpu, values: &[f32]) -> wgpu::Buffer {
    gpu.storage("test", bytemuck::cast_slice(values)).unwrap()
}

fn random(n: usize, rng: &mut Lcg) -> Vec<f32> {
    (0..n).map(|_| rng.signed_unit()).collect()
}

/// `|got − want| ≤ 1e-5·scale + 1e-6` element-wise, where `scale` bounds the terms' magnitude.
fn assert_close(what: &str, got: &[f32], want: &[f64], scale: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, ((&g, &w), &s)) in got.iter().zip(want).zip(scale).enumerate() {
        let tolerance = 1e-5 * s + 1e-6;
        assert!((g as f64 - w).abs() <= tolerance, "{what}: output {i} is {g}, the reference {w} (tolerance {tolerance:e})");
    }
}

fn dense(matrix: &Matrix) -> Vec<f32> {
    match matrix {
        Matrix::Quant(q) => {
            let mut out = vec![0.0; q.rows() * q.cols()];
            for (r, row) in out.chunks_exact_mut(q.cols()).enumerate() {
                q.dequantize_row(r, row).unwrap();
            }
            out
        }
        Matrix::F32 { values, .. } => values.clone(),
        Matrix::F16 { bits, .. } => bits.iter().map(|&b| f16_bits_to_f32(b)).collect(),
    }
}

fn random_matrix(format: &str, rows: usize, cols: usize, rng: &mut Lcg) -> Matrix {
    let block_type = GgmlType::supported().find(|t| t.name() == format && t.scheme().is_some());
    match (format, block_type) {
        (_, Some(ty)) => {
            Matrix::Quant(QuantMatrix::from_gguf_blocks(ty, rows, cols, &random_blocks(ty, rows, cols, false, rng), None).unwrap().into())
        }
        // Random halves in ±2 (exponents 0..16, so no infinities or NaN).
        ("F16", _) => Matrix::F16 { rows, cols, bits: (0..rows * cols).map(|_| (rng.next() as u16) & 0xbfff).collect() },
        _ => Matrix::F32 { rows, cols, values: random(rows * cols, rng) },
    }
}

#[test]
fn matmul_of_every_format_matches_the_dequantised_reference() {
    let gpu = gpu();
    let mut rng = Lcg(0x9e0);
    for format in ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K", "Q3_K", "F16", "F32"] {
        // Odd row counts (a partial group and workgroup), one and several tokens, SmolLM2's width
        // (K-quants: the next multiple of 256).
        for (rows, cols, tokens) in [(5, 64, 1), (13, 96, 3), (37, 576, 2)] {
            let k_block = if format.ends_with("_K") { 256 } else { 1 };
            let cols = (cols as usize).next_multiple_of(k_block);
            let matrix = random_matrix(format, rows, cols, &mut rng);
            let w = dense(&matrix);
            let x = random_activations(tokens * cols, false, &mut rng);
            let gpu_matrix = gpu.upload("w", &matrix).unwrap();
            let (xs, out) = (buffer(&gpu, &x), buffer(&gpu, &vec![0.0; tokens * rows]));
            let (mut want, mut scale) = (Vec::new(), Vec::new());
            for t in 0..tokens {
                for r in 0..rows {
                    let terms = (0..cols).map(|c| w[r * cols + c] as f64 * x[t * cols + c] as f64);
                    want.push(terms.clone().sum::<f64>());
                    scale.push(terms.map(f64::abs).sum::<f64>());
                }
            }
            let step = Step { tokens: tokens as u32, start: 0, logits_from: 0 };
            let groups = [rows.div_ceil(8) as u32, tokens as u32, 1];
            let what = format!("{format} {rows}x{cols}, {tokens} tokens");
            let bound = gpu.bind_matmul(&gpu_matrix, &xs, &out, false, false);
            assert_close(&what, &run(&gpu, step, &bound, groups, &out, tokens * rows), &want, &scale);

            // Accumulating into the ones already there (the residual adds).
            let ones = buffer(&gpu, &vec![1.0; tokens * rows]);
            let accumulate = gpu.bind_matmul(&gpu_matrix, &xs, &ones, true, false);
            let plus_one: Vec<f64> = want.iter().map(|v| v + 1.0).collect();
            let scale_one: Vec<f64> = scale.iter().map(|s| s + 1.0).collect();
            assert_close(&format!("{what}, accumulated"), &run(&gpu, step, &accumulate, groups, &ones, tokens * rows), &plus_one, &scale_one);

            // As the output projection: only the tokens from `logits_from` on.
            let last = Step { logits_from: tokens as u32 - 1, ..step };
            let head = gpu.bind_matmul(&gpu_matrix, &xs, &out, false, true);
            let got = run(&gpu, last, &head, [groups[0], 1, 1], &out, rows);
            let from = (tokens - 1) * rows;
            assert_close(&format!("{what}, last row"), &got, &want[from..], &scale[from..]);
        }
    }
}

#[test]
fn rmsnorm_matches_the_reference() {
    let gpu = gpu();
    let mut rng = Lcg(7);
    for (width, tokens) in [(64, 1), (576, 3), (1000, 2)] {
        let x: Vec<f32> = random(width * tokens, &mut rng).iter().map(|v| v * 3.0).collect();
        let weight = random(width, &mut rng);
        let eps = 1e-5f32;
        let out = buffer(&gpu, &vec![0.0; width * tokens]);
        let bound = gpu.bind(&gpu.kernels.rmsnorm, [width as u32, eps.to_bits(), 0, 0], &[&buffer(&gpu, &x), &out, &buffer(&gpu, &weight)]);
        let step = Step { tokens: tokens as u32, start: 0, logits_from: 0 };
        let got = run(&gpu, step, &bound, [tokens as u32, 1, 1], &out, width * tokens);
        let mut want = Vec::new();
        for row in x.chunks(width) {
            let mean = row.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / width as f64;
            let inv = 1.0 / (mean + eps as f64).sqrt();
            want.extend(row.iter().zip(&weight).map(|(&v, &w)| v as f64 * inv * w as f64));
        }
        let scale: Vec<f64> = want.iter().map(|v| v.abs() * 10.0).collect();
        assert_close(&format!("rmsnorm {width} x {tokens}"), &got, &want, &scale);
    }
}

#[test]
fn glu_matches_the_reference_for_silu_and_gelu() {
    let gpu = gpu();
    let mut rng = Lcg(11);
    let (width, tokens) = (300, 3);
    let gate: Vec<f32> = random(width * tokens, &mut rng).iter().map(|v| v * 8.0).collect();
    let up = random(width * tokens, &mut rng);
    let silu = |g: f64| g / (1.0 + (-g).exp());
    let gelu = |g: f64| 0.5 * g * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * g * (1.0 + 0.044715 * g * g)).tanh());
    for (gelu_flag, act) in [(0, &silu as &dyn Fn(f64) -> f64), (1, &gelu)] {
        let gate_buffer = buffer(&gpu, &gate);
        let bound = gpu.bind(&gpu.kernels.glu, [width as u32, gelu_flag, 0, 0], &[&gate_buffer, &buffer(&gpu, &up)]);
        let step = Step { tokens: tokens as u32, start: 0, logits_from: 0 };
        let got = run(&gpu, step, &bound, [(width * tokens).div_ceil(256) as u32, 1, 1], &gate_buffer, width * tokens);
        let want: Vec<f64> = gate.iter().zip(&up).map(|(&g, &u)| act(g as f64) * u as f64).collect();
        let scale: Vec<f64> = want.iter().map(|v| v.abs() * 10.0).collect();
        assert_close(&format!("glu (gelu: {gelu_flag})"), &got, &want, &scale);
    }
}

#[test]
fn add_and_scale_match_the_reference() {
    let gpu = gpu();
    let mut rng = Lcg(12);
    let (width, tokens) = (70, 3);
    let x = random(width * tokens, &mut rng);
    let y = random(width * tokens, &mut rng);
    let step = Step { tokens: tokens as u32, start: 0, logits_from: 0 };
    let groups = [(width * tokens).div_ceil(256) as u32, 1, 1];
    for broadcast in [0, 1] {
        let xb = buffer(&gpu, &x);
        let bound = gpu.bind(&gpu.kernels.add, [width as u32, broadcast, 0, 0], &[&xb, &buffer(&gpu, &y)]);
        let got = run(&gpu, step, &bound, groups, &xb, width * tokens);
        let want: Vec<f64> = (0..x.len()).map(|i| x[i] as f64 + y[if broadcast == 1 { i % width } else { i }] as f64).collect();
        assert_close(&format!("add (broadcast: {broadcast})"), &got, &want, &vec![1.0; want.len()]);
    }
    let xb = buffer(&gpu, &x);
    let bound = gpu.bind(&gpu.kernels.scale, [width as u32, 8f32.to_bits(), 0, 0], &[&xb]);
    let got = run(&gpu, step, &bound, groups, &xb, width * tokens);
    let want: Vec<f64> = x.iter().map(|&v| v as f64 * 8.0).collect();
    assert_close("scale", &got, &want, &vec![1.0; want.len()]);
}

/// HF's rotate_half RoPE of one head vector at `pos`, in f64 from the same f32 angle table.
fn rope(v: &[f32], angles: &[f32], pos: usize, positions: usize) -> Vec<f64> {
    let half = v.len() / 2;
    let (cos, sin) = angles.split_at(positions * half);
    let (c, s) = (|i| cos[pos * half + i] as f64, |i| sin[pos * half + i] as f64);
    (0..v.len())
        .map(|i| {
            let (a, b) = (v[i % half] as f64, v[i % half + half] as f64);
            if i < half { a * c(i) - b * s(i) } else { b * c(i - half) + a * s(i - half) }
        })
        .collect()
}

/// RoPE into the caches, then attention, for `tokens` new tokens after `start` cached ones (more
/// than one 64-position chunk of the online softmax), against the f64 reference.
#[test]
fn rope_and_attention_match_the_reference() {
    let gpu = gpu();
    let mut rng = Lcg(3);
    for (heads, kv_heads, head_dim, start, tokens, window) in
        [(4, 2, 16, 70, 3, 0), (9, 3, 64, 0, 2, 0), (2, 1, 256, 130, 1, 0), (4, 1, 32, 70, 3, 5), (2, 2, 16, 100, 2, 80)]
    {
        let positions = start + tokens + 5;
        let (q_width, kv_width) = (heads * head_dim, kv_heads * head_dim);
        let angles = rope_angles(&inverse_frequencies(&LayerRope { base: 10000.0, freq_scale: 1.0, attn_factor: 1.0 }, head_dim, None), 1.0, positions);
        let q = random(tokens * q_width, &mut rng);
        let k = random(tokens * kv_width, &mut rng);
        let v = random(tokens * kv_width, &mut rng);
        // The cached positions before `start`, as earlier steps would have stored them.
        let mut k_cache: Vec<f32> = random(positions * kv_width, &mut rng);
        let mut v_cache: Vec<f32> = random(positions * kv_width, &mut rng);
        let buffers = [&q, &k, &v, &k_cache, &v_cache, &angles].map(|b| buffer(&gpu, b));
        let [qb, kb, vb, kcb, vcb, ab] = &buffers;
        let dims = [heads as u32, kv_heads as u32, head_dim as u32, window as u32];
        let step = Step { tokens: tokens as u32, start: start as u32, logits_from: 0 };
        let rope_bound = gpu.bind(&gpu.kernels.rope_store, dims, &[qb, kb, vb, kcb, vcb, ab]);
        let out = buffer(&gpu, &vec![0.0; tokens * q_width]);
        let attention = gpu.bind(&gpu.kernels.attention, dims, &[qb, kcb, vcb, &out]);
        gpu.write_step(step);
        let staging = gpu.staging(tokens * q_width);
        let rows = [tokens as u32, 1, 1];
        let got = block_on(gpu.run(&[(&rope_bound, rows), (&attention, [heads as u32, tokens as u32, 1])], Some((&out, tokens * q_width, &staging)))).unwrap();

        let mut want = Vec::new();
        let mut rotated_q = Vec::new();
        for t in 0..tokens {
            let pos = start + t;
            for h in 0..heads {
                rotated_q.push(rope(&q[(t * heads + h) * head_dim..][..head_dim], &angles, pos, positions));
            }
            for h in 0..kv_heads {
                let from = t * kv_width + h * head_dim;
                let to = pos * kv_width + h * head_dim;
                let r = rope(&k[from..from + head_dim], &angles, pos, positions);
                k_cache[to..to + head_dim].iter_mut().zip(&r).for_each(|(c, &x)| *c = x as f32);
                v_cache[to..to + head_dim].copy_from_slice(&v[from..from + head_dim]);
            }
        }
        for t in 0..tokens {
            for h in 0..heads {
                let kv = h / (heads / kv_heads);
                let qv = &rotated_q[t * heads + h];
                let first = if window > 0 { (start + t + 1).saturating_sub(window) } else { 0 };
                let scores: Vec<f64> = (first..=start + t)
                    .map(|j| {
                        let kr = &k_cache[j * kv_width + kv * head_dim..][..head_dim];
                        qv.iter().zip(kr).map(|(a, &b)| a * b as f64).sum::<f64>() / (head_dim as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = weights.iter().sum();
                for d in 0..head_dim {
                    want.push((0..weights.len()).map(|j| weights[j] * v_cache[(first + j) * kv_width + kv * head_dim + d] as f64).sum::<f64>() / total);
                }
            }
        }
        let scale = vec![10.0; want.len()];
        assert_close(&format!("attention {heads}/{kv_heads} heads of {head_dim}, {start} cached + {tokens}, window {window}"), &got, &want, &scale);
    }
}
