//! The checks before tract parses the graph: a causal LM with its KV cache, exactly the inputs
//! and outputs this runtime feeds and reads, and what tract's parser assumes of every node.

use tract_onnx::pb;

use super::proto::ONNX_STRING;
use super::{DEFAULT_CONTEXT_LENGTH, EMBED_TOKENS_INITIALIZER, INPUT_NAMES};
use crate::error::{Error, Result};
use crate::model::ModelConfig;

/// A decoder-only causal LM exported with its KV cache has a `logits` output and
/// `past_key_values.0.key` among its inputs. Anything else (an encoder, a model exported without
/// its cache) is refused before the rest is checked, saying what was expected and what it has.
pub(super) fn check_causal_lm_with_cache(graph: &pb::GraphProto) -> Result<()> {
    let initializers: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&str> = graph.input.iter().map(|i| i.name.as_str()).filter(|n| !initializers.contains(n)).collect();
    let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    if outputs.contains(&"logits") && inputs.contains(&"past_key_values.0.key") {
        return Ok(());
    }
    let few = |names: &[&str]| {
        let shown: Vec<&str> = names.iter().copied().take(6).collect();
        format!("{shown:?}{}", if names.len() > 6 { format!(" and {} more", names.len() - 6) } else { String::new() })
    };
    Err(Error::Model(format!(
        "this is not a causal language model exported with its KV cache: expected a `logits` output and \
         `past_key_values.{{i}}.key/value` inputs (optimum: `--task text-generation-with-past`), \
         but it has inputs {} and outputs {}",
        few(&inputs),
        few(&outputs)
    )))
}

/// What tract's ONNX parser assumes of a node without checking (each found by tests/fuzz.rs):
/// that it has an input unless it is a source (a Transpose without one indexed past the end),
/// that a Transpose `perm` is a permutation (one that is not made it allocate without bound),
/// and that no tensor in its attributes stores strings as raw bytes (see [`raw_strings`]).
fn check_node(node: &pb::NodeProto) -> Result<()> {
    let bad = |why: String| Err(Error::Model(format!("node `{}` ({}) {why}", node.name, node.op_type)));
    if node.input.is_empty() && !["Constant", "RandomNormal", "RandomUniform"].contains(&node.op_type.as_str()) {
        return bad("has no inputs".into());
    }
    for a in &node.attribute {
        if node.op_type == "Transpose" && a.name == "perm" {
            let mut sorted = a.ints.clone();
            sorted.sort_unstable();
            if !sorted.into_iter().eq(0..a.ints.len() as i64) {
                return bad(format!("has perm {:?}, which is not a permutation", a.ints));
            }
        }
        if a.t.iter().chain(&a.tensors).any(raw_strings) {
            return bad(format!("has a tensor of strings stored as raw bytes in attribute `{}`", a.name));
        }
    }
    Ok(())
}

/// Strings stored as raw bytes, which tract does not implement (it panics).
fn raw_strings(t: &pb::TensorProto) -> bool {
    t.data_type == ONNX_STRING && !t.raw_data.is_empty()
}

fn declared_dims(info: &pb::ValueInfoProto) -> Option<Vec<Option<i64>>> {
    use pb::tensor_shape_proto::dimension::Value;
    let pb::type_proto::Value::TensorType(t) = info.r#type.as_ref()?.value.as_ref()?;
    Some(
        t.shape
            .as_ref()?
            .dim
            .iter()
            .map(|d| match d.value {
                Some(Value::DimValue(v)) => Some(v),
                _ => None,
            })
            .collect(),
    )
}

/// Checks that the graph has exactly the inputs and outputs this runtime feeds and reads, and
/// returns the dimensions it declares (context length: [`DEFAULT_CONTEXT_LENGTH`]).
pub(super) fn check_signature(graph: &pb::GraphProto, vocab: usize, hidden: usize) -> Result<ModelConfig> {
    let initializers: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&pb::ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !initializers.contains(i.name.as_str()))
        .collect();
    if let Some(t) = graph.initializer.iter().find(|t| raw_strings(t)) {
        return Err(Error::Model(format!("initializer `{}` holds strings stored as raw bytes", t.name)));
    }
    let input = |name: &str| inputs.iter().copied().find(|i| i.name == name);
    let has_output = |name: &str| graph.output.iter().any(|o| o.name == name);
    let expected = "expected inputs input_ids or inputs_embeds, attention_mask, position_ids (optional), \
                    past_key_values.{i}.key/value and outputs logits, present.{i}.key/value";

    let require = |present: bool, kind: &str, name: &str| -> Result<()> {
        if present {
            Ok(())
        } else {
            Err(Error::Model(format!("the model has no {kind} `{name}` ({expected})")))
        }
    };
    for name in &INPUT_NAMES[..2] {
        require(input(name).is_some(), "input", name)?;
    }
    // Without position_ids, the graph computes its positions (as transformers does from the
    // cache's length when none is given).
    let plain_inputs = if input(INPUT_NAMES[2]).is_some() { 3 } else { 2 };
    let layers = (0..)
        .take_while(|i| input(&format!("past_key_values.{i}.key")).is_some())
        .count();
    require(layers > 0, "input", "past_key_values.0.key")?;
    for i in 0..layers {
        for kv in ["key", "value"] {
            let name = format!("past_key_values.{i}.{kv}");
            require(input(&name).is_some(), "input", &name)?;
            let name = format!("present.{i}.{kv}");
            require(has_output(&name), "output", &name)?;
        }
    }
    require(has_output("logits"), "output", "logits")?;
    // Every tensor a node reads and every graph output must be produced by something (tract's
    // parser indexes them without checking).
    let mut produced: std::collections::HashSet<&str> = graph
        .input
        .iter()
        .map(|i| i.name.as_str())
        .chain(initializers.iter().copied())
        .collect();
    produced.insert(EMBED_TOKENS_INITIALIZER);
    produced.insert("");
    for node in &graph.node {
        produced.extend(node.output.iter().map(|o| o.as_str()));
    }
    for node in &graph.node {
        if let Some(missing) = node.input.iter().find(|i| !produced.contains(i.as_str())) {
            return Err(Error::Model(format!(
                "the graph is incomplete: node `{}` ({}) reads `{missing}`, which nothing produces",
                node.name, node.op_type
            )));
        }
        check_node(node)?;
    }
    if let Some(missing) = graph
        .output
        .iter()
        .find(|o| !produced.contains(o.name.as_str()))
    {
        return Err(Error::Model(format!(
            "the graph is incomplete: nothing produces its output `{}`",
            missing.name
        )));
    }
    if inputs.len() != plain_inputs + 2 * layers {
        let extra: Vec<&str> = inputs
            .iter()
            .map(|i| i.name.as_str())
            .filter(|n| !INPUT_NAMES.contains(n) && !n.starts_with("past_key_values."))
            .collect();
        return Err(Error::Model(format!(
            "the model has unexpected inputs {extra:?} ({expected})"
        )));
    }

    let kv_dims = declared_dims(input("past_key_values.0.key").expect("checked"));
    let (kv_heads, head_dim) = match kv_dims.as_deref() {
        Some([_, Some(h), _, Some(d)]) if *h > 0 && *d > 0 => (*h as usize, *d as usize),
        _ => {
            return Err(Error::Model(format!(
                "`past_key_values.0.key` must be declared [batch, kv_heads, past, head_dim] \
                 with fixed kv_heads and head_dim, got {kv_dims:?}"
            )))
        }
    };
    if let Some(Some(h)) = declared_dims(input("inputs_embeds").expect("checked"))
        .as_deref()
        .and_then(|d| d.last())
    {
        if *h as usize != hidden {
            return Err(Error::Model(format!(
                "`inputs_embeds` has width {h} but the embedding table has {hidden}"
            )));
        }
    }
    Ok(ModelConfig {
        vocab_size: vocab,
        hidden_size: hidden,
        num_layers: layers,
        num_key_value_heads: kv_heads,
        head_dim,
        context_length: DEFAULT_CONTEXT_LENGTH,
    })
}
