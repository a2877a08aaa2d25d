//! Block-quantised matmul `x · Wᵀ` at SmolLM2-135M's shapes, decode (m = 1) and a 64-token
//! prefill, and decode on MLP down in every block type: the SIMD kernel against the scalar
//! int16-activation reference, the f32-activation accuracy
//! reference and, as the baseline, a plain f32 dot over the dequantised matrix (what an f32
//! model pays). Prints a table from criterion's estimates after its own report.
//!
//!     cargo bench --bench quant

mod common;

use common::{mean_ns, splitmix as bits};
use criterion::{BenchmarkId, Criterion};
use decoding_playground::model::formats::GgmlType;
use decoding_playground::model::quant::testing::{block_types, random_blocks, Lcg};
use decoding_playground::model::quant::{simd_kernel_name, Kernel, QuantMatrix};
use std::hint::black_box;

/// (name, type, rows, cols, token counts): attention q/o, MLP gate/up, MLP down, the tied head;
/// then MLP down (its width is a multiple of 256, as K-quants need) in every block type, decode
/// only.
fn shapes() -> Vec<(String, GgmlType, usize, usize, &'static [usize])> {
    let smollm2 = [
        ("q_o_576x576", GgmlType::Q4_1, 576, 576),
        ("gate_up_1536x576", GgmlType::Q4_1, 1536, 576),
        ("down_576x1536", GgmlType::Q4_1, 576, 1536),
        ("head_49152x576", GgmlType::Q8_0, 49152, 576),
    ];
    let per_type = block_types().map(|ty| (format!("down_576x1536_{ty}"), ty, 576, 1536, &[1][..]));
    smollm2.into_iter().map(|(s, ty, r, c)| (s.to_string(), ty, r, c, &[1, 64][..])).chain(per_type).collect()
}

const KERNELS: [(&str, Option<Kernel>); 4] = [
    ("f32_dot", None),
    ("reference", Some(Kernel::Reference)),
    ("f32_activations", Some(Kernel::F32Activations)),
    ("simd", Some(Kernel::Simd)),
];

/// GGUF blocks with random quants and scales (see `random_blocks`).
fn random_matrix(ty: GgmlType, rows: usize, cols: usize) -> QuantMatrix {
    let blocks = random_blocks(ty, rows, cols, false, &mut Lcg(1));
    QuantMatrix::from_gguf_blocks(ty, rows, cols, &blocks, None).unwrap()
}

/// The baseline: `out[t][r] = x[t] · w[r]` in f32, 8 partial sums so that it vectorises.
fn f32_matmul(w: &[f32], cols: usize, x: &[f32], out: &mut [f32]) {
    let rows = w.len() / cols;
    for (xt, out_t) in x.chunks_exact(cols).zip(out.chunks_exact_mut(rows)) {
        for (o, wr) in out_t.iter_mut().zip(w.chunks_exact(cols)) {
            let mut acc = [0.0f32; 8];
            for (a, b) in wr.chunks_exact(8).zip(xt.chunks_exact(8)) {
                for k in 0..8 {
                    acc[k] += a[k] * b[k];
                }
            }
            *o = acc.iter().sum();
        }
    }
}

fn group_name(shape: &str, m: usize) -> String {
    format!("quant_{shape}_m{m}")
}

fn bench(c: &mut Criterion, shape: &str, w: &QuantMatrix, dense: &[f32], m: usize) {
    let mut next = bits(2);
    let x: Vec<f32> = (0..m * w.cols())
        .map(|_| (next() >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0)
        .collect();
    let mut out = vec![0.0; m * w.rows()];
    let mut group = c.benchmark_group(group_name(shape, m));
    // The scalar kernels take about a second per call on the head at m = 64.
    group.sample_size(10);
    for (name, kernel) in KERNELS {
        group.bench_function(BenchmarkId::from_parameter(name), |b| match kernel {
            None => b.iter(|| f32_matmul(black_box(dense), w.cols(), black_box(&x), &mut out)),
            Some(k) => b.iter(|| w.matmul_with(k, black_box(&x), m, &mut out).unwrap()),
        });
    }
    group.finish();
}

fn main() {
    let mut c = common::criterion();
    let mut storage = Vec::new();
    let shapes = shapes();
    for (shape, format, rows, cols, tokens) in &shapes {
        let (rows, cols) = (*rows, *cols);
        let w = random_matrix(*format, rows, cols);
        let mut dense = vec![0.0; rows * cols];
        for (r, row) in dense.chunks_exact_mut(cols).enumerate() {
            w.dequantize_row(r, row).unwrap();
        }
        storage.push(w.storage_bytes());
        for &m in *tokens {
            bench(&mut c, shape, &w, &dense, m);
        }
    }
    c.final_summary();

    println!(
        "\nx · Wᵀ per call in µs (means of criterion's samples, same run); simd = {}",
        simd_kernel_name()
    );
    println!(
        "{:<22} {:<5} {:>3} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8}",
        "shape",
        "",
        "m",
        "f32 dot",
        "reference",
        "f32 acts",
        "simd",
        "GMAC/s",
        "f32÷simd",
        "MB held",
        "MB f32"
    );
    for ((shape, format, rows, cols, tokens), bytes) in shapes.iter().zip(&storage) {
        for &m in *tokens {
            let group = group_name(shape, m);
            let t: Vec<f64> = KERNELS
                .iter()
                .map(|(name, _)| mean_ns(&group, name))
                .collect();
            print!("{shape:<22} {:<5} {m:>3}", format.name());
            t.iter().for_each(|ns| print!(" {:>10.1}", ns / 1e3));
            let gmacs = (rows * cols * m) as f64 / t[3];
            let f32_mb = (rows * cols * 4) as f64 / 1e6;
            println!(
                " {gmacs:>8.2} {:>7.2}× {:>8.2} {f32_mb:>8.2}",
                t[0] / t[3],
                *bytes as f64 / 1e6
            );
        }
    }
}
