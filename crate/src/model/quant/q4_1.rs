//! Hand-built Q4_1 blocks (ggml type 3: f16 d, f16 m, then 16 bytes of nibbles in Q4_0's order;
//! w = d·q + m).

use super::QuantMatrix;
use crate::model::formats::GgmlType;
use crate::model::f16_bits_to_f32;

/// q_j = j and q_{j+16} = 15 − j.
fn block(d: u16, m: u16) -> Vec<u8> {
    let mut b = d.to_le_bytes().to_vec();
    b.extend(m.to_le_bytes());
    b.extend((0..16).map(|j| j | (15 - j) << 4));
    b
}

fn dequantized(d: u16, m: u16) -> Vec<f32> {
    let w =
        QuantMatrix::from_gguf_blocks(GgmlType::Q4_1, 1, 32, &block(d, m), None).unwrap();
    let mut out = vec![0.0; 32];
    w.dequantize_row(0, &mut out).unwrap();
    out
}

#[test]
fn dequantises_hand_built_blocks() {
    // d = 1, m = 2^-24: q + m rounds back to q from q = 1 (a tie, to even) up.
    let w = dequantized(0x3c00, 0x0001);
    assert_eq!(
        (w[0], w[1], w[2], w[15], w[31]),
        (2f32.powi(-24), 1.0, 2.0, 15.0, 0.0 + 2f32.powi(-24))
    );
    // d = -0.5, m = -1.
    let w = dequantized(0xb800, 0xbc00);
    assert_eq!((w[0], w[3], w[15], w[16]), (-1.0, -2.5, -8.5, -8.5));
}

/// `d·q` is exact, so `d·q + m` must be one f32 rounding of the exact value, whatever the
/// rounding of a double-rounded or fused evaluation would be.
#[test]
fn d_q_plus_m_is_a_single_rounding() {
    let mut inexact = 0;
    for (d, m) in [
        (0xb555, 0x2e66),
        (0x3555, 0x1001),
        (0x0001, 0x3c01),
        (0x7bff, 0x0003),
        (0x2e66, 0xb555),
    ] {
        let w = dequantized(d, m);
        let (df, mf) = (f16_bits_to_f32(d) as f64, f16_bits_to_f32(m) as f64);
        for (j, &v) in w.iter().enumerate() {
            let q = if j < 16 { j } else { 31 - j } as f64;
            let exact = df * q + mf;
            assert_eq!(v, exact as f32, "d {d:#x} m {m:#x} q {q}");
            inexact += (v as f64 != exact) as usize;
        }
    }
    assert!(inexact > 40, "only {inexact} values needed rounding");
}

#[test]
fn dot_of_a_hand_built_block() {
    // d = 0.5, m = -1; x = j − 16 but x[31] = 32767: d_x = 1, q_x = x, Σq_w·q_x = −120,
    // Σq_x = 32736.
    let w =
        QuantMatrix::from_gguf_blocks(GgmlType::Q4_1, 1, 32, &block(0x3800, 0xbc00), None)
            .unwrap();
    super::testing::assert_hand_built_dot(&w, -32796.0);
}
