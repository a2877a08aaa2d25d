//! Hand-built Q4_0 blocks (ggml type 2: f16 d, then 16 bytes of nibbles; w = d·(q − 8)).

use super::QuantMatrix;
use crate::model::formats::GgmlType;

/// q_j = j and q_{j+16} = 15 − j.
fn block(d: u16) -> Vec<u8> {
    let mut b = d.to_le_bytes().to_vec();
    b.extend((0..16).map(|j| j | (15 - j) << 4));
    b
}

fn matrix(blocks: &[u8]) -> QuantMatrix {
    QuantMatrix::from_gguf_blocks(GgmlType::Q4_0, 1, 32, blocks, None).unwrap()
}

#[test]
fn dequantises_hand_built_blocks() {
    let mut w = vec![0.0; 32];
    matrix(&block(0x4000)).dequantize_row(0, &mut w).unwrap(); // d = 2
    let expected: Vec<f32> = (0..16)
        .map(|j| 2.0 * (j - 8) as f32)
        .chain((0..16).map(|j| 2.0 * (7 - j) as f32))
        .collect();
    assert_eq!(w, expected);
    assert_eq!(
        (w[0], w[8], w[15], w[16], w[31]),
        (-16.0, 0.0, 14.0, 14.0, -16.0)
    );
    // A negative subnormal d = -2^-15.
    matrix(&block(0x8200)).dequantize_row(0, &mut w).unwrap();
    assert_eq!((w[0], w[15]), (8.0 * 2f32.powi(-15), -7.0 * 2f32.powi(-15)));
}

#[test]
fn dot_of_a_hand_built_block() {
    // x = j − 16 but x[31] = 32767: d_x = 1, q_x = x; Σ(q_w − 8)·q_x = −120 − 8·32736.
    let w = matrix(&block(0x4000));
    super::testing::assert_hand_built_dot(&w, -524016.0);
}
