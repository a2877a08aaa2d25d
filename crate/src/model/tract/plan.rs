//! The plan a [`TractModel`](super::TractModel) runs: the graph typed with symbolic shapes, its
//! KV cache moved into the model and its ops fused by tract-transformers' rewrites, optimised.

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::{bail, ensure, DimLike, TractErrorContext};
use tract_onnx::tract_core::transform::get_transform;

use super::{graph, quant_op};
use crate::model::onnx::INPUT_NAMES;
use crate::model::quant::Kernel;
use crate::model::ModelConfig;

/// Types the graph with symbolic shapes (the KV cache in `kv_type`), moves the KV cache into the
/// model and optimises it. Returns the plan and, for each of its inputs, which of (embeds, mask,
/// positions) it takes.
pub(super) fn build_plan(
    mut model: InferenceModel,
    config: &ModelConfig,
    kv_type: DatumType,
    rewrites: Rewrites,
    (quantised, kernel): (&graph::QuantisedWeights, Kernel),
    output_width: usize,
) -> TractResult<(Arc<TypedRunnableModel>, Vec<usize>)> {
    let s = model.symbols.sym("S");
    let p = model.symbols.sym("P");
    let s_dim = TDim::from(s.clone());
    let p_dim = TDim::from(p.clone());
    let input_names: Vec<String> = model
        .inputs
        .iter()
        .map(|o| model.node(o.node).name.clone())
        .collect();
    for (ix, name) in input_names.iter().enumerate() {
        let fact = match name.as_str() {
            "inputs_embeds" => InferenceFact::dt_shape(
                f32::datum_type(),
                [1.to_dim(), s_dim.clone(), config.hidden_size.to_dim()],
            ),
            "attention_mask" => InferenceFact::dt_shape(
                i64::datum_type(),
                [1.to_dim(), p_dim.clone() + s_dim.clone()],
            ),
            "position_ids" => {
                InferenceFact::dt_shape(i64::datum_type(), [1.to_dim(), s_dim.clone()])
            }
            _ => InferenceFact::dt_shape(
                kv_type,
                [
                    1.to_dim(),
                    config.num_key_value_heads.to_dim(),
                    p_dim.clone(),
                    config.head_dim.to_dim(),
                ],
            ),
        };
        model.set_input_fact(ix, fact)?;
    }
    let mut typed = model.into_typed()?;
    quant_op::bind_weights(&mut typed, quantised, kernel)?;
    let mut typed = typed.into_decluttered()?;
    apply_transformer_rewrites(&mut typed, rewrites)?;

    let plain_inputs = input_names.iter().filter(|n| INPUT_NAMES.contains(&n.as_str())).count();
    if typed.inputs.len() != plain_inputs || typed.outputs.len() != 1 {
        // Measured on a graph that counts positions from the mask (CumSum): the new keys' length
        // is then no longer the sequence's symbol, and the cache rewrite does not match.
        ensure!(
            plain_inputs == 3,
            "this graph computes its positions itself in a way tract's KV cache rewrite cannot follow \
             (from the attention mask?); export it with a position_ids input, as optimum does"
        );
        bail!(
            "moving the KV cache into the model left {} inputs and {} outputs (expected {plain_inputs} and 1): \
             are `present.{{i}}.*` plain Concat(past, new) of the past inputs?",
            typed.inputs.len(),
            typed.outputs.len()
        );
    }
    let slots = typed
        .inputs
        .iter()
        .map(|outlet| {
            let name = &typed.node(outlet.node).name;
            INPUT_NAMES
                .iter()
                .position(|n| n == name)
                .with_context(|| format!("unexpected input `{name}` after the KV cache rewrite"))
        })
        .collect::<TractResult<Vec<usize>>>()?;
    let output_fact = typed.outlet_fact(typed.outputs[0])?;
    if let Some(v) = output_fact.shape.last().and_then(|d| d.to_usize().ok()) {
        ensure!(v == output_width, "the output has {v} columns, expected {output_width}");
    }
    let plan = typed.into_optimized()?.into_runnable()?;
    Ok((plan, slots))
}

/// How [`apply_transformer_rewrites`] finds tract-transformers' rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rewrites {
    /// Through tract's transform registry, falling back to `Direct` if it is empty.
    ByName,
    /// Calling tract-transformers' public rules directly (the fallback; tested on its own).
    #[cfg_attr(not(test), allow(dead_code))]
    Direct,
}

/// tract-transformers' `transformers_detect_all`: the KV cache becomes stateful
/// `DynKeyValueCache` ops (what `detect_kv_cache` does), and RoPE / scaled masked softmax are
/// fused. Looked up by name in tract's transform registry; should that registry be empty (it is
/// filled by static constructors), the same rewrites are applied directly.
fn apply_transformer_rewrites(model: &mut TypedModel, rewrites: Rewrites) -> TractResult<()> {
    if rewrites == Rewrites::ByName {
        if let Some(transform) = get_transform("transformers_detect_all")? {
            return transform.transform(model);
        }
    }
    use tract_transformers::ops;
    for input in model.inputs.clone() {
        ops::replace_kv_cache(model, input.node)?;
    }
    tract_onnx::tract_core::model::Rewriter::default()
        .with_rule_for("detect-rotate-half", ops::rotate_half_rule)
        .with_rule_for("detect-apply-rope", ops::apply_rope_rule)
        .with_rule_for(
            "detect-scaled-masked-softmax",
            ops::scaled_masked_softmax_rule,
        )
        .with_rule_for(
            "detect-sdpa-kv-cache-broadcast",
            ops::fuse_kv_cache_broadcast_rule,
        )
        .with_rule_for("detect-diag-gather", ops::diag_gather_rule)
        .rewrite(&(), model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tract::TractModel;
    use crate::model::LanguageModel;

    const TINY: &[u8] = include_bytes!("../../../../models/tiny/model.onnx");

    /// The registry lookup finds the transform natively, and the direct fallback (for a platform
    /// where the registry's static constructors did not run) gives the same model.
    #[test]
    fn direct_rewrites_match_the_registry_transform() {
        assert!(get_transform("transformers_detect_all").unwrap().is_some());
        let ids = [398, 295, 283, 99, 497, 30, 237, 405];
        let mut by_name = TractModel::load(TINY, None, Rewrites::ByName).unwrap();
        let mut direct = TractModel::load(TINY, None, Rewrites::Direct).unwrap();
        let assert_close = |a: Vec<f32>, b: Vec<f32>| {
            let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
            assert!(diff < 1e-5, "max |diff| = {diff}");
        };
        assert_close(pollster::block_on(by_name.prefill_all_logits(&ids)).unwrap(), pollster::block_on(direct.prefill_all_logits(&ids)).unwrap());
        assert_close(pollster::block_on(by_name.step_token(452)).unwrap(), pollster::block_on(direct.step_token(452)).unwrap());
        // Every rewrite fired (2 layers): the same ops either way.
        let found = op_counts(&by_name);
        assert_eq!(found, op_counts(&direct));
        for (op, n) in [
            ("DynamicKeyValueCache", 4),
            ("ApplyRope", 4),
            ("ScaledMaskedSoftmax", 2),
            ("RmsNorm", 5),
        ] {
            assert_eq!(found.get(op), Some(&n), "{op}: {found:?}");
        }
    }

    fn op_counts(m: &TractModel) -> std::collections::BTreeMap<String, usize> {
        let mut ops = std::collections::BTreeMap::new();
        for node in m.plan.model().nodes() {
            *ops.entry(node.op().name().to_string()).or_default() += 1;
        }
        ops
    }

    /// The graph built for each architecture keeps the shapes tract-transformers fuses: one KV
    /// cache per K and V, RoPE on Q and K, one masked softmax and the RMSNorms of every layer
    /// (sliding-window layers included), so that no architecture runs unfused, slower ops.
    #[test]
    fn every_architecture_graph_is_rewritten_into_fused_ops() {
        let archs: [(&str, &[u8], usize); 6] = [
            ("tiny llama", include_bytes!("../../../../models/tiny/model.gguf"), 2),
            ("llama3", include_bytes!("../../../../models/tiny/archs/llama3.gguf"), 3),
            ("qwen2", include_bytes!("../../../../models/tiny/archs/qwen2.gguf"), 3),
            ("qwen3", include_bytes!("../../../../models/tiny/archs/qwen3.gguf"), 3),
            ("gemma3", include_bytes!("../../../../models/tiny/archs/gemma3.gguf"), 7),
            ("phi3", include_bytes!("../../../../models/tiny/archs/phi3.gguf"), 3),
        ];
        for (name, gguf, layers) in archs {
            let (model, _) = TractModel::from_gguf(gguf).unwrap();
            let found = op_counts(&model);
            let norms = match name {
                "qwen3" => 4 * layers + 1,
                "gemma3" => 6 * layers + 1,
                _ => 2 * layers + 1,
            };
            for (op, n) in [
                ("DynamicKeyValueCache", 2 * layers),
                ("ApplyRope", 2 * layers),
                ("ScaledMaskedSoftmax", layers),
                ("RmsNorm", norms),
            ] {
                assert_eq!(found.get(op), Some(&n), "{name}, {op}: {found:?}");
            }
        }
    }
}
