//! The Llama decoder graph for tract, built from a GGUF's weights.
//!
//! It is the graph `models/llama_onnx.py` writes for the ONNX files (the same signature, fed
//! embeddings, and the same shapes that tract-transformers' rewrites look for: KV cache as
//! `Concat(past, new)`, `rotate_half` RoPE, `Softmax(scores · scale + mask)`), written as an
//! ONNX protobuf in memory so that one tract pipeline serves both formats. What differs is the
//! weights: each block-quantised matrix is a [`QuantMatMul`](super::QuantMatMul) node that
//! names its matrix, and the protobuf holds only the norms and small constants. F16 and F32
//! matrices become ordinary initializers, which tract widens to f32 and multiplies with its
//! own kernels.

use std::collections::HashMap;
use std::sync::Arc;

use tract_onnx::pb;

use super::QuantMatMul;
use crate::model::onnx::{attr_int, attr_ints, attr_string, value_info, Dim, ONNX_FLOAT, ONNX_FLOAT16};
use crate::model::quant::QuantMatrix;
use crate::model::weights::{LlamaWeights, Matrix};

/// The matrices the graph's [`QuantMatMul`] nodes name.
pub type QuantisedWeights = HashMap<String, Arc<QuantMatrix>>;

const ONNX_INT64: i32 = 7;
const OPSET: i64 = 17;

/// The graph, the quantised matrices it names, and a block-quantised output projection that the
/// graph leaves out (its output `logits` is then the normed hidden state, and the caller
/// projects only the rows it needs). The weights' f16/f32 matrices are copied into the protobuf
/// (transposed to `[in, out]`); quantised ones are shared, not copied.
pub fn onnx_graph(weights: &LlamaWeights) -> (pb::ModelProto, QuantisedWeights, Option<Arc<QuantMatrix>>) {
    let p = &weights.params;
    let (layers, hidden, heads, kv_heads, head_dim) =
        (p.num_layers, p.hidden_size, p.num_heads, p.num_kv_heads, p.head_dim);
    let mut g = Graph::default();

    // Causal + padding mask, as an additive bias [B, 1, S, T].
    g.scalar_i64("c.one_s", 1);
    g.scalar_i64("c.zero_s", 0);
    let shape = g.op("Shape", &["attention_mask"], vec![]);
    let total = g.op("Gather", &[&shape, "c.one_s"], vec![attr_int("axis", 0)]);
    let kpos = g.op("Range", &["c.zero_s", &total, "c.one_s"], vec![]);
    g.i64s("c.ax1", &[1]);
    g.i64s("c.ax2", &[2]);
    let qpos = g.op("Unsqueeze", &["position_ids", "c.ax2"], vec![]);
    let causal = g.op("LessOrEqual", &[&kpos, &qpos], vec![]);
    g.scalar_i64("c.zero_i", 0);
    let padding = g.op("Equal", &["attention_mask", "c.zero_i"], vec![]);
    let keep = g.op("Not", &[&padding], vec![]);
    let keep = g.op("Unsqueeze", &[&keep, "c.ax1"], vec![]);
    let visible = g.op("And", &[&causal, &keep], vec![]);
    g.scalar_f32("c.zero_f", 0.0);
    // f32::MIN rather than -inf: a fully masked row gives a uniform softmax, not NaN.
    g.scalar_f32("c.neg_big", f32::MIN);
    let bias = g.op("Where", &[&visible, "c.zero_f", "c.neg_big"], vec![]);
    let bias = g.op("Unsqueeze", &[&bias, "c.ax1"], vec![]);
    let group_bias = g.op("Unsqueeze", &[&bias, "c.ax1"], vec![]); // [B, 1, 1, S, T]

    // RoPE tables in HF layout. libm's pow, so the constants do not depend on the platform.
    let inv_freq: Vec<f32> = (0..head_dim / 2)
        .map(|i| (1.0 / libm::pow(p.rope_theta as f64, (2 * i) as f64 / head_dim as f64)) as f32)
        .collect();
    g.f32s("rope.inv_freq", &[head_dim / 2], &inv_freq);
    let positions = g.op("Cast", &["position_ids"], vec![attr_int("to", ONNX_FLOAT as i64)]);
    let positions = g.op("Unsqueeze", &[&positions, "c.ax2"], vec![]);
    let freqs = g.op("Mul", &[&positions, "rope.inv_freq"], vec![]);
    let angles = g.op("Concat", &[&freqs, &freqs], vec![attr_int("axis", 2)]);
    let cos = g.op("Cos", &[&angles], vec![]);
    let cos = g.op("Unsqueeze", &[&cos, "c.ax1"], vec![]);
    let sin = g.op("Sin", &[&angles], vec![]);
    let sin = g.op("Unsqueeze", &[&sin, "c.ax1"], vec![]);

    let hd = head_dim as i64;
    g.i64s("c.half_s", &[hd / 2]);
    g.i64s("c.hd_e", &[hd]);
    g.i64s("c.zero_v", &[0]);
    g.i64s("c.ax3", &[3]);
    g.scalar_f32("c.eps", p.rms_norm_eps);
    g.scalar_f32("c.scale", (1.0 / (head_dim as f64).sqrt()) as f32);
    g.i64s("c.shape_h", &[0, 0, hidden as i64]);
    g.i64s(&format!("c.shape_{heads}"), &[0, 0, heads as i64, hd]);
    g.i64s(&format!("c.shape_{kv_heads}"), &[0, 0, kv_heads as i64, hd]);

    let rope = |g: &mut Graph, x: &str| {
        let x1 = g.op("Slice", &[x, "c.zero_v", "c.half_s", "c.ax3"], vec![]);
        let x2 = g.op("Slice", &[x, "c.half_s", "c.hd_e", "c.ax3"], vec![]);
        let minus_x2 = g.op("Neg", &[&x2], vec![]);
        let rotated = g.op("Concat", &[&minus_x2, &x1], vec![attr_int("axis", 3)]);
        let a = g.op("Mul", &[x, &cos], vec![]);
        let b = g.op("Mul", &[&rotated, &sin], vec![]);
        g.op("Add", &[&a, &b], vec![])
    };
    // [B,S,hidden] @ w -> [B,n,S,hd]
    let split_heads = |g: &mut Graph, x: &str, n: usize| {
        let y = g.op("Reshape", &[x, &format!("c.shape_{n}")], vec![]);
        g.op("Transpose", &[&y], vec![attr_ints("perm", &[0, 2, 1, 3])])
    };
    // Grouped-query attention without repeating K and V: query head h reads KV head
    // h / (heads / kv_heads), as HF's repeat_kv, so the heads of one group are adjacent and the
    // queries reshape to [B, kv_heads, group, S, hd] against K and V broadcast over the group.
    // tract packs a matmul's K and V on every step; repeating them would pack them (heads /
    // kv_heads) times over.
    g.i64s("c.shape_grouped", &[0, kv_heads as i64, (heads / kv_heads) as i64, -1, hd]);
    g.i64s("c.shape_heads", &[0, heads as i64, -1, hd]);

    let mut x = "inputs_embeds".to_string();
    for (i, layer) in weights.layers.iter().enumerate() {
        let h = g.rms_norm(&x, &format!("blk.{i}.attn_norm.weight"), &layer.attn_norm);
        let q = g.matmul(&h, &format!("blk.{i}.attn_q.weight"), &layer.q, None);
        let q = split_heads(&mut g, &q, heads);
        let q = rope(&mut g, &q);
        let k = g.matmul(&h, &format!("blk.{i}.attn_k.weight"), &layer.k, None);
        let k = split_heads(&mut g, &k, kv_heads);
        let k = rope(&mut g, &k);
        let v = g.matmul(&h, &format!("blk.{i}.attn_v.weight"), &layer.v, None);
        let v = split_heads(&mut g, &v, kv_heads);
        let axis2 = || vec![attr_int("axis", 2)];
        let k = g.op_to("Concat", &[&format!("past_key_values.{i}.key"), &k], &format!("present.{i}.key"), axis2());
        let v = g.op_to("Concat", &[&format!("past_key_values.{i}.value"), &v], &format!("present.{i}.value"), axis2());
        let k = g.op("Unsqueeze", &[&k, "c.ax2"], vec![]);
        let kt = g.op("Transpose", &[&k], vec![attr_ints("perm", &[0, 1, 2, 4, 3])]);
        let q = g.op("Reshape", &[&q, "c.shape_grouped"], vec![]);
        let scores = g.op("MatMul", &[&q, &kt], vec![]);
        let scores = g.op("Mul", &[&scores, "c.scale"], vec![]);
        let scores = g.op("Add", &[&scores, &group_bias], vec![]);
        let attention = g.op("Softmax", &[&scores], vec![attr_int("axis", 4)]);
        let v = g.op("Unsqueeze", &[&v, "c.ax2"], vec![]);
        let context = g.op("MatMul", &[&attention, &v], vec![]);
        let context = g.op("Reshape", &[&context, "c.shape_heads"], vec![]);
        let context = g.op("Transpose", &[&context], vec![attr_ints("perm", &[0, 2, 1, 3])]);
        let context = g.op("Reshape", &[&context, "c.shape_h"], vec![]);
        let attn_out = g.matmul(&context, &format!("blk.{i}.attn_output.weight"), &layer.o, None);
        x = g.op("Add", &[&x, &attn_out], vec![]);

        let h = g.rms_norm(&x, &format!("blk.{i}.ffn_norm.weight"), &layer.ffn_norm);
        let gate = g.matmul(&h, &format!("blk.{i}.ffn_gate.weight"), &layer.gate, None);
        let up = g.matmul(&h, &format!("blk.{i}.ffn_up.weight"), &layer.up, None);
        let sigmoid = g.op("Sigmoid", &[&gate], vec![]);
        let silu = g.op("Mul", &[&gate, &sigmoid], vec![]);
        let act = g.op("Mul", &[&silu, &up], vec![]);
        let down = g.matmul(&act, &format!("blk.{i}.ffn_down.weight"), &layer.down, None);
        x = g.op("Add", &[&x, &down], vec![]);
    }
    let h = g.rms_norm(&x, "output_norm.weight", &weights.output_norm);
    let (head, output_width) = match weights.output_matrix() {
        Matrix::Quant(q) => {
            g.op_to("Identity", &[&h], "logits", vec![]);
            (Some(q), hidden)
        }
        // An f16 head stays f32 in the graph: tract folds a Cast of a constant only within a
        // small budget, and would otherwise re-cast (and re-pack) the whole head on every step.
        matrix => {
            let name = if weights.output.is_some() { "output.weight" } else { "token_embd.weight" };
            g.matmul(&h, name, &matrix, Some("logits"));
            (None, p.vocab_size)
        }
    };

    let f32_input = |name: String, dims: Vec<Dim>| value_info(name, ONNX_FLOAT, dims);
    let kv_dims = || vec![Dim::Param("batch"), Dim::Value(kv_heads), Dim::Param("past"), Dim::Value(head_dim)];
    let kv_names = |prefix: &str| {
        (0..layers).flat_map(move |i| ["key", "value"].map(|kv| format!("{prefix}.{i}.{kv}"))).collect::<Vec<_>>()
    };
    let mut inputs = vec![
        f32_input("inputs_embeds".into(), vec![Dim::Param("batch"), Dim::Param("seq"), Dim::Value(hidden)]),
        value_info("attention_mask".into(), ONNX_INT64, vec![Dim::Param("batch"), Dim::Param("total")]),
        value_info("position_ids".into(), ONNX_INT64, vec![Dim::Param("batch"), Dim::Param("seq")]),
    ];
    inputs.extend(kv_names("past_key_values").into_iter().map(|n| f32_input(n, kv_dims())));
    let mut outputs = vec![f32_input(
        "logits".into(),
        vec![Dim::Param("batch"), Dim::Param("seq"), Dim::Value(output_width)],
    )];
    outputs.extend(kv_names("present").into_iter().map(|n| f32_input(n, kv_dims())));

    let graph = pb::GraphProto {
        name: "llama_decoder".into(),
        node: g.nodes,
        initializer: g.initializers,
        input: inputs,
        output: outputs,
        ..Default::default()
    };
    let model = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: OPSET }],
        producer_name: "decoding-playground (from GGUF)".into(),
        graph: Some(graph),
        ..Default::default()
    };
    (model, g.quantised, head)
}

#[derive(Default)]
struct Graph {
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
    quantised: QuantisedWeights,
}

impl Graph {
    /// Adds a node with one output, named after the node; returns the output's name.
    fn op(&mut self, op_type: &str, inputs: &[&str], attribute: Vec<pb::AttributeProto>) -> String {
        let output = format!("/{op_type}_{}_out", self.nodes.len() + 1);
        self.op_to(op_type, inputs, &output, attribute)
    }

    fn op_to(&mut self, op_type: &str, inputs: &[&str], output: &str, attribute: Vec<pb::AttributeProto>) -> String {
        self.nodes.push(pb::NodeProto {
            name: format!("/{op_type}_{}", self.nodes.len() + 1),
            op_type: op_type.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute,
            ..Default::default()
        });
        output.into()
    }

    fn initializer(&mut self, name: &str, dims: &[usize], data_type: i32, raw_data: Vec<u8>) {
        self.initializers.push(pb::TensorProto {
            name: name.into(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type,
            raw_data,
            ..Default::default()
        });
    }

    fn i64s(&mut self, name: &str, values: &[i64]) {
        self.initializer(name, &[values.len()], ONNX_INT64, values.iter().flat_map(|v| v.to_le_bytes()).collect());
    }

    fn scalar_i64(&mut self, name: &str, value: i64) {
        self.initializer(name, &[], ONNX_INT64, value.to_le_bytes().to_vec());
    }

    fn f32s(&mut self, name: &str, dims: &[usize], values: &[f32]) {
        self.initializer(name, dims, ONNX_FLOAT, values.iter().flat_map(|v| v.to_le_bytes()).collect());
    }

    fn scalar_f32(&mut self, name: &str, value: f32) {
        self.f32s(name, &[], &[value]);
    }

    /// RMSNorm in the form tract-transformers fuses: `x / sqrt(mean(x²) + eps) * weight`.
    fn rms_norm(&mut self, x: &str, name: &str, weight: &[f32]) -> String {
        let squares = self.op("Mul", &[x, x], vec![]);
        let mean = self.op("ReduceMean", &[&squares], vec![attr_ints("axes", &[-1]), attr_int("keepdims", 1)]);
        let shifted = self.op("Add", &[&mean, "c.eps"], vec![]);
        let root = self.op("Sqrt", &[&shifted], vec![]);
        let normed = self.op("Div", &[x, &root], vec![]);
        self.f32s(name, &[weight.len()], weight);
        self.op("Mul", &[&normed, name], vec![])
    }

    /// `x · Wᵀ` for a `[rows × cols]` weight: a [`QuantMatMul`] for blocks, else a MatMul with a
    /// transposed `[cols, rows]` initializer.
    fn matmul(&mut self, x: &str, name: &str, weight: &Matrix, output: Option<&str>) -> String {
        let output = output.map_or_else(|| format!("{name}.out"), String::from);
        let (rows, cols) = (weight.rows(), weight.cols());
        let transposed = |value: &dyn Fn(usize) -> [u8; 4]| -> Vec<u8> {
            (0..rows * cols).flat_map(|i| value((i % rows) * cols + i / rows)).collect()
        };
        match weight {
            Matrix::Quant(q) => {
                self.quantised.insert(name.into(), q.clone());
                let attrs = vec![attr_string("weight", name), attr_int("rows", rows as i64)];
                return self.op_to(QuantMatMul::ONNX_OP, &[x], &output, attrs);
            }
            Matrix::F32 { values, .. } => {
                self.initializer(name, &[cols, rows], ONNX_FLOAT, transposed(&|i| values[i].to_le_bytes()));
            }
            Matrix::F16 { bits, .. } if output == "logits" => {
                let widened = |i: usize| crate::model::f16_bits_to_f32(bits[i]).to_le_bytes();
                self.initializer(name, &[cols, rows], ONNX_FLOAT, transposed(&widened));
            }
            Matrix::F16 { bits, .. } => {
                let raw = (0..rows * cols).flat_map(|i| bits[(i % rows) * cols + i / rows].to_le_bytes()).collect();
                self.initializer(name, &[cols, rows], ONNX_FLOAT16, raw);
                let widened = self.op("Cast", &[name], vec![attr_int("to", ONNX_FLOAT as i64)]);
                return self.op_to("MatMul", &[x, &widened], &output, vec![]);
            }
        }
        self.op_to("MatMul", &[x, name], &output, vec![])
    }
}
