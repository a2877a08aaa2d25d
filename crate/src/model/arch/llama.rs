//! `llama`: Llama 1–3, TinyLlama, SmolLM2. The converter permutes Q/K rows for adjacent-pair
//! RoPE ([`llama_permutation`] gives the row order that undoes it); Llama 3 files carry
//! `rope_freqs`.
use super::{Architecture, RopeFactors, RopePairs, BASE};

pub const LLAMA: Architecture =
    Architecture { name: "llama", rope_pairs: RopePairs::Adjacent, rope_factors: RopeFactors::Freqs, ..BASE };

/// The row order that undoes llama.cpp's Q/K permutation: `result[hf_row] = gguf_row`, so that
/// `hf_weight.row(r) = gguf_weight.row(result[r])` gives the layout for the usual half-split
/// ("rotate_half") RoPE. Within each head of `head_dim = n_rows / n_heads` rows, HF row
/// `s * head_dim/2 + i` (half `s`, index `i`) is GGUF row `2 * i + s` (`unpermute` in
/// `models/smollm2_source.py`). With the GGUF order as is, RoPE must rotate adjacent pairs instead.
///
/// # Panics
/// If `n_heads` is 0 or `n_rows` is not a multiple of `2 * n_heads` (never for the dims of a
/// `ModelParams`: `n_rows = heads * head_dim` with an even `head_dim`).
pub fn llama_permutation(n_rows: usize, n_heads: usize) -> Vec<usize> {
    assert!(
        n_heads > 0 && n_rows.is_multiple_of(2 * n_heads),
        "llama_permutation: {n_rows} rows do not split into {n_heads} heads of even size"
    );
    let hd = n_rows / n_heads;
    let half = hd / 2;
    let mut out = Vec::with_capacity(n_rows);
    for h in 0..n_heads {
        for s in 0..2 {
            for i in 0..half {
                out.push(h * hd + 2 * i + s);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_matches_the_python_unpermute() {
        // unpermute(w, 2) on 8 rows: reshape(2, 2, 2) -> swapaxes(1, 2): new[h, s, i] = old[h, i, s].
        assert_eq!(llama_permutation(8, 2), vec![0, 2, 1, 3, 4, 6, 5, 7]);
        assert_eq!(llama_permutation(6, 1), vec![0, 2, 4, 1, 3, 5]);
        let p = llama_permutation(576, 9);
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..576).collect::<Vec<_>>());
    }
}
