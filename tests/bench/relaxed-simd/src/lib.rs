//! Does relaxed SIMD's `i32x4.relaxed_dot_i8x16_i7x16_add_s` pay for the 4-bit kernels? Three
//! ways to compute the same Q4_1-style product (4 rows per group, 32-weight blocks, nibbles in
//! ggml's order, an f32 scale per row and block), as `crate/src/model/quant/simd128.rs` lays
//! them out, timed by run.mjs:
//!   0: simd128 as the engine does it: nibbles widened to i16, `i32x4.dot_i16x8_s` against
//!      int16 activations;
//!   1: relaxed, int8 activations (llama.cpp's precision): one relaxed dot per 16 weights;
//!   2: relaxed, int16 activations split into two signed bytes (x = 256·hi + lo): two relaxed
//!      dots per 16 weights, and the same integer sums as 0.
//! The weights (0..15) are the 7-bit operand, so every platform gives the same sums.
use core::arch::wasm32::*;

const ROWS: usize = 1536;
const COLS: usize = 576;
const BLOCK: usize = 32;
const NB: usize = COLS / BLOCK;

struct Data {
    qs: Vec<u8>,   // per (group, block): 4 rows × 16 nibble bytes
    d: Vec<f32>,   // per (group, block): 4 rows' scales
    x16: Vec<i16>, // activations, |x| ≤ 32639 so that hi fits a signed byte
    x8: Vec<i8>,   // the same activations rounded to int8
    xlo: Vec<i8>,  // x16's low bytes (signed) ...
    xhi: Vec<i8>,  // ... and the rest: x = 256·hi + lo
    xd: Vec<f32>,  // per block
    out: Vec<f32>,
}

static mut DATA: Option<Data> = None;

fn data() -> &'static mut Data {
    // SAFETY: single-threaded; set up once by `setup`.
    unsafe { (*core::ptr::addr_of_mut!(DATA)).as_mut().expect("setup first") }
}

#[no_mangle]
pub extern "C" fn setup(seed: u32) {
    let mut state = seed as u64 | 1;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let qs = (0..ROWS * COLS / 2).map(|_| next() as u8).collect();
    let d = (0..ROWS * NB).map(|_| (next() % 1000) as f32 / 1e5).collect();
    let x16: Vec<i16> = (0..COLS).map(|_| ((next() % 65279) as i32 - 32639) as i16).collect();
    let x8 = x16.iter().map(|&v| ((v as f32 / 257.0).round()) as i8).collect();
    let xlo: Vec<i8> = x16.iter().map(|&v| v as u16 as u8 as i8).collect();
    let xhi = x16.iter().zip(&xlo).map(|(&v, &lo)| ((v as i32 - lo as i32) >> 8) as i8).collect();
    let xd = (0..NB).map(|b| 1e-3 + b as f32 * 1e-5).collect();
    // SAFETY: as in `data`.
    unsafe { *core::ptr::addr_of_mut!(DATA) = Some(Data { qs, d, x16, x8, xlo, xhi, xd, out: vec![0.0; ROWS] }) };
}

#[no_mangle]
pub extern "C" fn out_ptr() -> *const f32 {
    data().out.as_ptr()
}

#[no_mangle]
pub extern "C" fn rows() -> usize {
    ROWS
}

/// Runs variant `v` `reps` times over the whole matrix.
#[no_mangle]
pub extern "C" fn run(v: u32, reps: u32) {
    let dt = data();
    for _ in 0..reps {
        for g in 0..ROWS / 4 {
            let mut acc = f32x4_splat(0.0);
            for b in 0..NB {
                // SAFETY: every offset is inside the vectors above.
                unsafe {
                    let q = dt.qs.as_ptr().add((g * NB + b) * 64);
                    let isum = match v {
                        0 => {
                            let xp = dt.x16.as_ptr().add(b * BLOCK) as *const v128;
                            let x = [v128_load(xp), v128_load(xp.add(1)), v128_load(xp.add(2)), v128_load(xp.add(3))];
                            lanes(simd128_row(q, &x), simd128_row(q.add(16), &x), simd128_row(q.add(32), &x), simd128_row(q.add(48), &x))
                        }
                        1 => {
                            let xp = dt.x8.as_ptr().add(b * BLOCK) as *const v128;
                            let x = [v128_load(xp), v128_load(xp.add(1))];
                            lanes(relaxed8_row(q, &x), relaxed8_row(q.add(16), &x), relaxed8_row(q.add(32), &x), relaxed8_row(q.add(48), &x))
                        }
                        _ => {
                            let (lo, hi) = (dt.xlo.as_ptr().add(b * BLOCK) as *const v128, dt.xhi.as_ptr().add(b * BLOCK) as *const v128);
                            let x = [v128_load(lo), v128_load(lo.add(1)), v128_load(hi), v128_load(hi.add(1))];
                            lanes(split_row(q, &x), split_row(q.add(16), &x), split_row(q.add(32), &x), split_row(q.add(48), &x))
                        }
                    };
                    let dw = v128_load(dt.d.as_ptr().add((g * NB + b) * 4) as *const v128);
                    // The int8 activations are the int16 ones / 257.
                    let xd = if v == 1 { dt.xd[b] * 257.0 } else { dt.xd[b] };
                    let term = f32x4_mul(f32x4_mul(dw, f32x4_splat(xd)), f32x4_convert_i32x4(isum));
                    acc = f32x4_add(acc, term);
                }
            }
            // SAFETY: 4 rows per group.
            unsafe { v128_store(dt.out.as_mut_ptr().add(g * 4) as *mut v128, acc) };
        }
    }
}

/// Low nibbles (weights 0..15) and high nibbles (16..31) of a row's block.
#[inline(always)]
unsafe fn nibbles(q: *const u8) -> (v128, v128) {
    let v = v128_load(q as *const v128);
    (v128_and(v, u8x16_splat(0x0f)), u8x16_shr(v, 4))
}

#[inline(always)]
unsafe fn simd128_row(q: *const u8, x: &[v128; 4]) -> v128 {
    let (low, high) = nibbles(q);
    let a = i32x4_add(i32x4_dot_i16x8(u16x8_extend_low_u8x16(low), x[0]), i32x4_dot_i16x8(u16x8_extend_high_u8x16(low), x[1]));
    let b = i32x4_add(i32x4_dot_i16x8(u16x8_extend_low_u8x16(high), x[2]), i32x4_dot_i16x8(u16x8_extend_high_u8x16(high), x[3]));
    i32x4_add(a, b)
}

#[inline(always)]
unsafe fn relaxed8_row(q: *const u8, x: &[v128; 2]) -> v128 {
    let (low, high) = nibbles(q);
    i32x4_relaxed_dot_i8x16_i7x16_add(x[1], high, i32x4_relaxed_dot_i8x16_i7x16_add(x[0], low, i32x4_splat(0)))
}

#[inline(always)]
unsafe fn split_row(q: *const u8, x: &[v128; 4]) -> v128 {
    let (low, high) = nibbles(q);
    let lo = i32x4_relaxed_dot_i8x16_i7x16_add(x[1], high, i32x4_relaxed_dot_i8x16_i7x16_add(x[0], low, i32x4_splat(0)));
    let hi = i32x4_relaxed_dot_i8x16_i7x16_add(x[3], high, i32x4_relaxed_dot_i8x16_i7x16_add(x[2], low, i32x4_splat(0)));
    i32x4_add(i32x4_shl(hi, 8), lo)
}

/// Four rows' partial sums → lane r = row r's total.
#[inline(always)]
fn lanes(a: v128, b: v128, c: v128, d: v128) -> v128 {
    let ab = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a, b), i32x4_shuffle::<2, 6, 3, 7>(a, b));
    let cd = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(c, d), i32x4_shuffle::<2, 6, 3, 7>(c, d));
    i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(ab, cd), i32x4_shuffle::<2, 3, 6, 7>(ab, cd))
}
