//! The hyper-parameters of a decoder, read from a GGUF's `{arch}.*` keys as llama.cpp reads
//! them, and the tensors such a file must (and may) hold, with their dims.

use std::collections::{HashMap, HashSet};

use super::{Architecture, RopeFactors};
use crate::error::{Error, Result};
use crate::model::gguf::{GgufHeader, TensorInfo};

fn model_err(msg: impl Into<String>) -> Error {
    Error::Model(msg.into())
}

/// The dimensions and scalings of one model, checked against its file.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelParams {
    pub arch: &'static Architecture,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    /// Per head, of Q, K and V alike (`{arch}.attention.key_length`, else hidden / heads).
    pub head_dim: usize,
    pub context_length: usize,
    pub rms_norm_eps: f32,
    /// No `output.weight`: the logits use `token_embd.weight`.
    pub tied_embeddings: bool,
    pub rope: RopeParams,
    /// Positions a local layer sees, itself included, and which layers are local.
    pub sliding_window: Option<(usize, Vec<bool>)>,
    /// `logits = cap · tanh(logits / cap)`.
    pub final_softcap: Option<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RopeParams {
    pub base: f32,
    /// The base of sliding-window layers.
    pub local_base: f32,
    /// Linear scaling (1 / `rope.scaling.factor`), on global layers only.
    pub freq_scale: f32,
    /// Multiplies every cosine and sine (`rope.scaling.attn_factor`).
    pub attn_factor: f32,
    /// LongRoPE's switch: the long factors serve contexts past this many positions.
    pub original_context: usize,
}

impl RopeParams {
    /// One base for every layer, no scaling.
    pub fn plain(base: f32, context_length: usize) -> Self {
        RopeParams { base, local_base: base, freq_scale: 1.0, attn_factor: 1.0, original_context: context_length }
    }
}

/// One layer's RoPE, as both backends build their tables from it.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerRope {
    pub base: f32,
    pub freq_scale: f32,
    pub attn_factor: f32,
}

impl ModelParams {
    /// Reads the keys of the file's architecture and checks that every tensor it needs is
    /// there with the dims they imply, and no other (whose meaning would be unknown).
    pub fn from_header(h: &GgufHeader) -> Result<Self> {
        let arch = Architecture::named(h.architecture()?)?;
        let key = |k: &str| arch.key(k);
        let positive = |k: &str| -> Result<usize> {
            match h.get_usize(&key(k))? {
                0 => Err(model_err(format!("metadata key `{}` is 0", key(k)))),
                v => Ok(v),
            }
        };
        let optional_positive = |k: &str, default: usize| -> Result<usize> {
            match h.opt_usize(&key(k))? {
                Some(0) => Err(model_err(format!("metadata key `{}` is 0", key(k)))),
                v => Ok(v.unwrap_or(default)),
            }
        };
        let positive_f32 = |k: &str, default: Option<f32>| -> Result<f32> {
            let v = match default {
                Some(d) => h.opt_f32(&key(k))?.unwrap_or(d),
                None => h.get_f32(&key(k))?,
            };
            if !v.is_finite() || v <= 0.0 {
                return Err(model_err(format!("`{}` is {v}, expected a positive number", key(k))));
            }
            Ok(v)
        };
        let hidden = positive("embedding_length")?;
        let num_layers = positive("block_count")?;
        let num_heads = positive("attention.head_count")?;
        let num_kv_heads = optional_positive("attention.head_count_kv", num_heads)?;
        let ff = positive("feed_forward_length")?;
        let context_length = positive("context_length")?;
        let rms_norm_eps = positive_f32("attention.layer_norm_rms_epsilon", None)?;
        if h.opt_usize(&key("attention.key_length"))?.is_none() && hidden % num_heads != 0 {
            return Err(model_err(format!(
                "the embedding length {hidden} is not a multiple of the head count {num_heads}"
            )));
        }
        let head_dim = optional_positive("attention.key_length", hidden / num_heads)?;
        if head_dim % 2 != 0 {
            return Err(model_err(format!("the head dimension {head_dim} is odd (RoPE needs pairs)")));
        }
        for k in ["attention.value_length", "rope.dimension_count"] {
            if let Some(d) = h.opt_usize(&key(k))? {
                if d != head_dim {
                    return Err(model_err(format!(
                        "metadata key `{}` is {d}, but the head dimension is {head_dim}: only values \
                         as wide as keys, and RoPE over the whole head, are supported",
                        key(k)
                    )));
                }
            }
        }
        if num_heads % num_kv_heads != 0 {
            return Err(model_err(format!(
                "the head count {num_heads} is not a multiple of the KV head count {num_kv_heads}"
            )));
        }
        if let Some(n) = h.opt_usize(&key("expert_count"))? {
            if n > 0 {
                return Err(model_err(format!("mixture-of-experts models ({n} experts) are not supported")));
            }
        }
        let rope = read_rope(h, arch, context_length)?;
        let sliding_window = read_sliding_window(h, arch, num_layers)?;
        let final_softcap = match arch.final_softcap {
            true => h.opt_f32(&key("final_logit_softcapping"))?.filter(|&c| c != 0.0),
            false => None,
        };
        if let Some(cap) = final_softcap {
            if !cap.is_finite() || cap < 0.0 {
                return Err(model_err(format!("`{}` is {cap}, expected a positive number", key("final_logit_softcapping"))));
            }
        }
        let vocab_size = read_vocab_size(h, arch, hidden)?;
        let params = ModelParams {
            arch,
            vocab_size,
            hidden_size: hidden,
            intermediate_size: ff,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            context_length,
            rms_norm_eps,
            tied_embeddings: h.tensor("output.weight").is_none(),
            rope,
            sliding_window,
            final_softcap,
        };
        params.check_tensors(h)?;
        Ok(params)
    }

    /// The context a backend holds: `requested`, else `default`, checked against the model's.
    pub fn context(&self, requested: Option<usize>, default: usize) -> Result<usize> {
        let context_length = requested.unwrap_or(default);
        crate::error::check(
            (1..=self.context_length).contains(&context_length),
            "contextLength",
            "at least 1 and at most the model's context length",
            format!("{context_length} (the model's is {})", self.context_length),
        )?;
        Ok(context_length)
    }

    /// The width of Q (and of the attention's output), `heads · head_dim`.
    pub fn q_width(&self) -> usize {
        self.num_heads * self.head_dim
    }

    pub fn kv_width(&self) -> usize {
        self.num_kv_heads * self.head_dim
    }

    /// The positions layer `layer` attends to before its own: `None` for all of them.
    pub fn window(&self, layer: usize) -> Option<usize> {
        self.sliding_window.as_ref().and_then(|(w, local)| local[layer].then_some(*w))
    }

    /// Layer `layer`'s RoPE (sliding-window layers have their own base and no linear scaling,
    /// as llama.cpp's `get_rope_freq_base`/`_scale`).
    pub fn layer_rope(&self, layer: usize) -> LayerRope {
        let r = &self.rope;
        match self.window(layer) {
            Some(_) => LayerRope { base: r.local_base, freq_scale: 1.0, attn_factor: r.attn_factor },
            None => LayerRope { base: r.base, freq_scale: r.freq_scale, attn_factor: r.attn_factor },
        }
    }

    /// Q·K is scaled by 1/√head_dim in every architecture here (gemma3 scales Q by it and
    /// attention by 1; its 27B model alone, not supported, uses √(hidden / heads)).
    pub fn attention_scale(&self) -> f32 {
        (1.0 / (self.head_dim as f64).sqrt()) as f32
    }

    /// The tensors of this model, by name, with their dims in ggml order and whether the file
    /// must hold them. A layer's Q/K/V come fused (`attn_qkv`) when the file has that tensor.
    pub fn tensors(&self, h: &GgufHeader) -> Vec<(String, Vec<usize>, bool)> {
        let (d, ff, vocab) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let (q, kv, hd) = (self.q_width(), self.kv_width(), self.head_dim);
        let mut want = vec![
            ("token_embd.weight".to_string(), vec![d, vocab], true),
            ("output_norm.weight".into(), vec![d], true),
            ("output.weight".into(), vec![d, vocab], false),
        ];
        let factor = |name: &str| (format!("{name}.weight"), vec![hd / 2], false);
        match self.arch.rope_factors {
            RopeFactors::None => {}
            RopeFactors::Freqs => want.push(factor("rope_freqs")),
            RopeFactors::ShortLong => want.extend([factor("rope_factors_short"), factor("rope_factors_long")]),
        }
        for i in 0..self.num_layers {
            let t = |name: &str, dims: Vec<usize>, required: bool| (format!("blk.{i}.{name}"), dims, required);
            want.push(t("attn_norm.weight", vec![d], true));
            if h.tensor(&format!("blk.{i}.attn_qkv.weight")).is_some() {
                want.extend([t("attn_qkv.weight", vec![d, q + 2 * kv], true), t("attn_qkv.bias", vec![q + 2 * kv], false)]);
            } else {
                for (name, width) in [("attn_q", q), ("attn_k", kv), ("attn_v", kv)] {
                    want.extend([t(&format!("{name}.weight"), vec![d, width], true), t(&format!("{name}.bias"), vec![width], false)]);
                }
            }
            want.push(t("attn_output.weight", vec![q, d], true));
            if self.arch.qk_norm {
                want.extend([t("attn_q_norm.weight", vec![hd], true), t("attn_k_norm.weight", vec![hd], true)]);
            }
            want.push(t("ffn_norm.weight", vec![d], true));
            if self.arch.fused_gate_up {
                want.push(t("ffn_up.weight", vec![d, 2 * ff], true));
            } else {
                want.extend([t("ffn_gate.weight", vec![d, ff], true), t("ffn_up.weight", vec![d, ff], true)]);
            }
            want.push(t("ffn_down.weight", vec![ff, d], true));
            if self.arch.post_norms {
                want.extend([t("post_attention_norm.weight", vec![d], true), t("post_ffw_norm.weight", vec![d], true)]);
            }
        }
        want
    }

    fn check_tensors(&self, h: &GgufHeader) -> Result<()> {
        // A block count that the tensor records cannot hold is refused before the list of
        // expected tensors is built: 2^32 - 1 layers made it ask for hundreds of GB (found by
        // tests/fuzz.rs). Every layer has at least 6 tensors; one layer more is let through, so
        // that a count one too high still names the first missing tensor below.
        if self.num_layers > h.tensors.len() / 6 + 1 {
            return Err(model_err(format!(
                "`{}` is {}, but the file has only {} tensors (at least 6 per layer)",
                self.arch.key("block_count"),
                self.num_layers,
                h.tensors.len()
            )));
        }
        let by_name: HashMap<&str, &TensorInfo> = h.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
        let want = self.tensors(h);
        for (name, dims, required) in &want {
            match by_name.get(name.as_str()) {
                None if *required => return Err(model_err(format!("tensor `{name}` is missing"))),
                Some(t) if &t.dims != dims => {
                    return Err(model_err(format!(
                        "tensor `{name}` has dims {:?} (ggml order), expected {dims:?}",
                        t.dims
                    )))
                }
                _ => {}
            }
        }
        let known: HashSet<&str> = want.iter().map(|(n, _, _)| n.as_str()).collect();
        if let Some(t) = h.tensors.iter().find(|t| !known.contains(t.name.as_str())) {
            return Err(model_err(format!(
                "tensor `{}` is not part of a {}-layer {} model (unknown tensors could change the \
                 model's math)",
                t.name, self.num_layers, self.arch.name
            )));
        }
        Ok(())
    }
}

fn read_vocab_size(h: &GgufHeader, arch: &Architecture, hidden: usize) -> Result<usize> {
    let key = arch.key("vocab_size");
    let n_tokens = h.opt_str_array("tokenizer.ggml.tokens")?.map(|t| t.len());
    let vocab_size = match (n_tokens, h.opt_usize(&key)?) {
        (Some(n), Some(d)) if n != d => {
            return Err(model_err(format!("the tokenizer has {n} tokens but `{key}` is {d}")))
        }
        (Some(n), _) => n,
        (None, Some(d)) => d,
        (None, None) => {
            return Err(model_err(format!(
                "cannot tell the vocabulary size: metadata keys `tokenizer.ggml.tokens` and `{key}` \
                 are both missing"
            )))
        }
    };
    if vocab_size == 0 {
        return Err(model_err("the vocabulary is empty"));
    }
    let embd = h.tensor("token_embd.weight").ok_or_else(|| model_err("tensor `token_embd.weight` is missing"))?;
    if embd.dims.len() == 2 && embd.dims[0] == hidden && embd.dims[1] != vocab_size {
        return Err(model_err(format!(
            "the vocabulary has {vocab_size} tokens but `token_embd.weight` has {} rows",
            embd.dims[1]
        )));
    }
    Ok(vocab_size)
}

fn read_rope(h: &GgufHeader, arch: &Architecture, context_length: usize) -> Result<RopeParams> {
    let key = |k: &str| arch.key(k);
    let positive = |k: &str, default: f32| -> Result<f32> {
        let v = h.opt_f32(&key(k))?.unwrap_or(default);
        if !v.is_finite() || v <= 0.0 {
            return Err(model_err(format!("`{}` is {v}, expected a positive number", key(k))));
        }
        Ok(v)
    };
    let base = positive("rope.freq_base", 10000.0)?;
    let local_base = positive("rope.freq_base_swa", arch.sliding_window.map_or(base, |w| w.local_rope_base))?;
    let factor = match h.opt_f32(&key("rope.scaling.factor"))? {
        None | Some(0.0) => 1.0,
        Some(f) => positive("rope.scaling.factor", f)?,
    };
    let kind = h.opt_str(&key("rope.scaling.type"))?.unwrap_or("linear");
    match kind {
        "none" | "linear" => {}
        "longrope" if arch.rope_factors == super::RopeFactors::ShortLong => {}
        other => return Err(model_err(format!("RoPE scaling `{other}` is not supported for {}", arch.name))),
    }
    Ok(RopeParams {
        base,
        local_base,
        freq_scale: if kind == "linear" { 1.0 / factor } else { 1.0 },
        attn_factor: positive("rope.scaling.attn_factor", 1.0)?,
        original_context: match h.opt_usize(&key("rope.scaling.original_context_length"))? {
            Some(n) => n,
            None => context_length,
        },
    })
}

/// llama.cpp's `load_swa_pattern`: a per-layer array of bools, else a period whose last layer
/// is global.
fn read_sliding_window(h: &GgufHeader, arch: &Architecture, layers: usize) -> Result<Option<(usize, Vec<bool>)>> {
    let Some(layout) = arch.sliding_window else { return Ok(None) };
    let window = match h.opt_usize(&arch.key("attention.sliding_window"))? {
        None | Some(0) => return Ok(None),
        Some(w) => w,
    };
    let pattern_key = arch.key("attention.sliding_window_pattern");
    let local = match h.get(&pattern_key) {
        Some(v) if v.as_array().is_some() => {
            let flags: Option<Vec<bool>> = v.as_array().unwrap_or_default().iter().map(|b| b.as_bool()).collect();
            match flags {
                Some(f) if f.len() == layers => f,
                _ => return Err(model_err(format!("`{pattern_key}` must be {layers} booleans, one per layer"))),
            }
        }
        _ => {
            let period = h.opt_usize(&pattern_key)?.unwrap_or(layout.period);
            (0..layers).map(|i| period == 0 || i % period < period - 1).collect()
        }
    };
    Ok(Some((window, local)))
}
