//! Hand-built Q8_0 blocks (ggml type 8: f16 d, then 32 × i8 q; w = d·q).

use super::QuantMatrix;
use crate::model::formats::GgmlType;

fn block(d: u16, q: impl Fn(usize) -> i8) -> Vec<u8> {
    let mut b = d.to_le_bytes().to_vec();
    b.extend((0..32).map(|j| q(j) as u8));
    b
}

fn dequantized(blocks: &[u8]) -> Vec<f32> {
    let w = QuantMatrix::from_gguf_blocks(GgmlType::Q8_0, 1, 32, blocks, None).unwrap();
    let mut out = vec![0.0; 32];
    w.dequantize_row(0, &mut out).unwrap();
    out
}

#[test]
fn dequantises_hand_built_blocks() {
    let q = [-128, -1, 0, 1, 127, 2, -3, 64];
    // d = -0.5
    let w = dequantized(&block(0xb800, |j| q[j % 8]));
    assert_eq!(&w[..8], &[64.0, 0.5, 0.0, -0.5, -63.5, -1.0, 1.5, -32.0]);
    assert_eq!(&w[24..], &w[..8]);
    // The smallest subnormal, 2^-24, and a negative subnormal, -1023 · 2^-24.
    let w = dequantized(&block(0x0001, |j| q[j % 8]));
    assert_eq!(w[4], 127.0 * 2f32.powi(-24));
    let w = dequantized(&block(0x83ff, |j| q[j % 8]));
    assert_eq!(w[0], 1023.0 * 128.0 * 2f32.powi(-24));
    assert_eq!(w[4], -1023.0 * 127.0 * 2f32.powi(-24));
}

#[test]
fn dot_of_a_hand_built_block() {
    // d_w = 0.5, q_w = j − 16; x = j − 16 but x[31] = 32767, so d_x = 1 and q_x = x exactly.
    let w = QuantMatrix::from_gguf_blocks(
        GgmlType::Q8_0,
        1,
        32,
        &block(0x3800, |j| j as i8 - 16),
        None,
    )
    .unwrap();
    super::testing::assert_hand_built_dot(&w, 247008.0);
}
