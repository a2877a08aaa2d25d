//! The decoder graph for tract, built from a GGUF's weights by the one layer loop
//! ([`decoder::build`]) that the WebGPU backend runs too.
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
use crate::model::arch::decoder::{self, inverse_frequencies, Builder, NormRole, Role};
use crate::model::arch::params::ModelParams;
use crate::model::arch::Activation;
use crate::model::onnx::{attr_int, attr_ints, attr_string, value_info, Dim, ONNX_FLOAT, ONNX_FLOAT16};
use crate::model::quant::QuantMatrix;
use crate::model::weights::{Matrix, ModelWeights};

/// The matrices the graph's [`QuantMatMul`] nodes name.
pub type QuantisedWeights = HashMap<String, Arc<QuantMatrix>>;

const ONNX_INT64: i32 = 7;
const OPSET: i64 = 17;

/// The graph, the quantised matrices it names, and a block-quantised output projection that the
/// graph leaves out (its output `logits` is then the normed hidden state, and the caller
/// projects only the rows it needs). The weights' f16/f32 matrices are copied into the protobuf
/// (transposed to `[in, out]`); quantised ones are shared, not copied. `context` is the
/// positions the model will hold (it chooses LongRoPE's factors).
pub fn onnx_graph(weights: &ModelWeights, context: usize) -> (pb::ModelProto, QuantisedWeights, Option<Arc<QuantMatrix>>) {
    let p = &weights.params;
    let (layers, hidden, kv_heads, head_dim) = (p.num_layers, p.hidden_size, p.num_kv_heads, p.head_dim);
    let mut b = TractBuilder::new(p, weights.rope_factors(context).map(<[f32]>::to_vec));
    let h = decoder::build(&mut b, weights, "inputs_embeds".to_string());
    let mut g = b.g;
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
        name: format!("{}_decoder", p.arch.name),
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

/// The decoder's operations as ONNX nodes; values are node output names.
struct TractBuilder<'a> {
    g: Graph,
    p: &'a ModelParams,
    rope_factors: Option<Vec<f32>>,
    /// Whether the key/query positions are visible to each other, `[B, S, T]`, for the masks.
    visible: String,
    /// The key positions `[T]` and the query positions `[B, S, 1]`, for the sliding windows.
    kpos: String,
    qpos: String,
    /// The additive attention bias `[B, 1, 1, S, T]`, per window (`None`: causal only).
    biases: HashMap<Option<usize>, String>,
    /// The `(cos, sin)` tables `[B, 1, S, head_dim]`, per distinct layer RoPE.
    ropes: Vec<(crate::model::arch::params::LayerRope, String, String)>,
}

impl<'a> TractBuilder<'a> {
    fn new(p: &'a ModelParams, rope_factors: Option<Vec<f32>>) -> Self {
        let mut g = Graph::default();
        let (heads, kv_heads, hd) = (p.num_heads, p.num_kv_heads, p.head_dim as i64);
        // Causal + padding visibility [B, S, T].
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
        g.i64s("c.half_s", &[hd / 2]);
        g.i64s("c.hd_e", &[hd]);
        g.i64s("c.zero_v", &[0]);
        g.i64s("c.ax3", &[3]);
        g.scalar_f32("c.eps", p.rms_norm_eps);
        g.scalar_f32("c.scale", p.attention_scale());
        g.i64s("c.shape_q", &[0, 0, p.q_width() as i64]);
        g.i64s(&format!("c.shape_{heads}"), &[0, 0, heads as i64, hd]);
        g.i64s(&format!("c.shape_{kv_heads}"), &[0, 0, kv_heads as i64, hd]);
        // Grouped-query attention without repeating K and V: query head h reads KV head
        // h / (heads / kv_heads), as HF's repeat_kv, so the heads of one group are adjacent and
        // the queries reshape to [B, kv_heads, group, S, hd] against K and V broadcast over the
        // group. tract packs a matmul's K and V on every step; repeating them would pack them
        // (heads / kv_heads) times over.
        g.i64s("c.shape_grouped", &[0, kv_heads as i64, (heads / kv_heads) as i64, -1, hd]);
        g.i64s("c.shape_heads", &[0, heads as i64, -1, hd]);
        TractBuilder { g, p, rope_factors, visible, kpos, qpos, biases: HashMap::new(), ropes: Vec::new() }
    }

    /// The additive bias of a layer with `window` (`None`: causal only), built once per window.
    fn bias(&mut self, window: Option<usize>) -> String {
        if let Some(bias) = self.biases.get(&window) {
            return bias.clone();
        }
        let g = &mut self.g;
        let mut visible = self.visible.clone();
        if let Some(w) = window {
            // llama.cpp masks key p0 from query p1 when p1 - p0 >= window.
            let name = format!("c.window_{w}");
            g.scalar_i64(&name, w as i64);
            let reach = g.op("Add", &[&self.kpos, &name], vec![]);
            let recent = g.op("Greater", &[&reach, &self.qpos], vec![]);
            visible = g.op("And", &[&visible, &recent], vec![]);
        }
        let bias = g.op("Where", &[&visible, "c.zero_f", "c.neg_big"], vec![]);
        let bias = g.op("Unsqueeze", &[&bias, "c.ax1"], vec![]);
        let bias = g.op("Unsqueeze", &[&bias, "c.ax1"], vec![]);
        self.biases.insert(window, bias.clone());
        bias
    }

    /// The cos and sin tables of `layer`'s RoPE (HF layout), built once per distinct RoPE.
    fn rope_tables(&mut self, layer: usize) -> (String, String) {
        let rope = self.p.layer_rope(layer);
        if let Some((_, cos, sin)) = self.ropes.iter().find(|(r, _, _)| *r == rope) {
            return (cos.clone(), sin.clone());
        }
        let inv_freq = inverse_frequencies(&rope, self.p.head_dim, self.rope_factors.as_deref());
        let g = &mut self.g;
        let name = format!("rope.inv_freq.{}", self.ropes.len());
        g.f32s(&name, &[inv_freq.len()], &inv_freq);
        let positions = g.op("Cast", &["position_ids"], vec![attr_int("to", ONNX_FLOAT as i64)]);
        let positions = g.op("Unsqueeze", &[&positions, "c.ax2"], vec![]);
        let freqs = g.op("Mul", &[&positions, &name], vec![]);
        let angles = g.op("Concat", &[&freqs, &freqs], vec![attr_int("axis", 2)]);
        let mut tables = ["Cos", "Sin"].map(|f| g.op(f, &[&angles], vec![]));
        if rope.attn_factor != 1.0 {
            let factor = format!("{name}.attn_factor");
            g.scalar_f32(&factor, rope.attn_factor);
            tables = tables.map(|t| g.op("Mul", &[&t, &factor], vec![]));
        }
        let [cos, sin] = tables.map(|t| g.op("Unsqueeze", &[&t, "c.ax1"], vec![]));
        self.ropes.push((rope, cos.clone(), sin.clone()));
        (cos, sin)
    }

    /// `[B, S, n·hd]` → `[B, n, S, hd]`.
    fn split_heads(&mut self, x: &str, n: usize) -> String {
        let y = self.g.op("Reshape", &[x, &format!("c.shape_{n}")], vec![]);
        self.g.op("Transpose", &[&y], vec![attr_ints("perm", &[0, 2, 1, 3])])
    }

    fn rope(&mut self, x: &str, cos: &str, sin: &str) -> String {
        let g = &mut self.g;
        let x1 = g.op("Slice", &[x, "c.zero_v", "c.half_s", "c.ax3"], vec![]);
        let x2 = g.op("Slice", &[x, "c.half_s", "c.hd_e", "c.ax3"], vec![]);
        let minus_x2 = g.op("Neg", &[&x2], vec![]);
        let rotated = g.op("Concat", &[&minus_x2, &x1], vec![attr_int("axis", 3)]);
        let a = g.op("Mul", &[x, cos], vec![]);
        let b = g.op("Mul", &[&rotated, sin], vec![]);
        g.op("Add", &[&a, &b], vec![])
    }

    fn constant(&mut self, value: f32) -> String {
        let name = format!("c.f32_{:08x}", value.to_bits());
        if !self.g.initializers.iter().any(|t| t.name == name) {
            self.g.scalar_f32(&name, value);
        }
        name
    }
}

impl Builder for TractBuilder<'_> {
    type Value = String;

    fn scale(&mut self, x: String, by: f32) -> String {
        let by = self.constant(by);
        self.g.op("Mul", &[&x, &by], vec![])
    }

    fn norm(&mut self, x: &String, layer: usize, role: NormRole, weight: &[f32]) -> String {
        let name = role.tensor(layer);
        let heads = match role {
            NormRole::QHead => self.p.num_heads,
            NormRole::KHead => self.p.num_kv_heads,
            _ => return self.g.rms_norm(x, &name, weight),
        };
        let split = self.g.op("Reshape", &[x, &format!("c.shape_{heads}")], vec![]);
        let normed = self.g.rms_norm(&split, &name, weight);
        let width = format!("c.shape_width_{}", heads * self.p.head_dim);
        if !self.g.initializers.iter().any(|t| t.name == width) {
            self.g.i64s(&width, &[0, 0, (heads * self.p.head_dim) as i64]);
        }
        self.g.op("Reshape", &[&normed, &width], vec![])
    }

    fn project(&mut self, x: &String, layer: usize, role: Role, w: &Matrix, bias: Option<&[f32]>) -> String {
        let name = format!("blk.{layer}.{}", role.tensor());
        let out = self.g.matmul(x, &format!("{name}.weight"), w, None);
        let Some(bias) = bias else { return out };
        self.g.f32s(&format!("{name}.bias"), &[bias.len()], bias);
        self.g.op("Add", &[&out, &format!("{name}.bias")], vec![])
    }

    fn attention(&mut self, layer: usize, q: String, k: String, v: String) -> String {
        let (heads, kv_heads) = (self.p.num_heads, self.p.num_kv_heads);
        let (cos, sin) = self.rope_tables(layer);
        let bias = self.bias(self.p.window(layer));
        let q = self.split_heads(&q, heads);
        let q = self.rope(&q, &cos, &sin);
        let k = self.split_heads(&k, kv_heads);
        let k = self.rope(&k, &cos, &sin);
        let v = self.split_heads(&v, kv_heads);
        let g = &mut self.g;
        let axis2 = || vec![attr_int("axis", 2)];
        let k = g.op_to("Concat", &[&format!("past_key_values.{layer}.key"), &k], &format!("present.{layer}.key"), axis2());
        let v = g.op_to("Concat", &[&format!("past_key_values.{layer}.value"), &v], &format!("present.{layer}.value"), axis2());
        let k = g.op("Unsqueeze", &[&k, "c.ax2"], vec![]);
        let kt = g.op("Transpose", &[&k], vec![attr_ints("perm", &[0, 1, 2, 4, 3])]);
        let q = g.op("Reshape", &[&q, "c.shape_grouped"], vec![]);
        let scores = g.op("MatMul", &[&q, &kt], vec![]);
        let scores = g.op("Mul", &[&scores, "c.scale"], vec![]);
        let scores = g.op("Add", &[&scores, &bias], vec![]);
        let attention = g.op("Softmax", &[&scores], vec![attr_int("axis", 4)]);
        let v = g.op("Unsqueeze", &[&v, "c.ax2"], vec![]);
        let context = g.op("MatMul", &[&attention, &v], vec![]);
        let context = g.op("Reshape", &[&context, "c.shape_heads"], vec![]);
        let context = g.op("Transpose", &[&context], vec![attr_ints("perm", &[0, 2, 1, 3])]);
        g.op("Reshape", &[&context, "c.shape_q"], vec![])
    }

    fn gated(&mut self, gate: String, up: String, act: Activation) -> String {
        let activated = match act {
            Activation::Silu => {
                let sigmoid = self.g.op("Sigmoid", &[&gate], vec![]);
                self.g.op("Mul", &[&gate, &sigmoid], vec![])
            }
            Activation::GeluTanh => {
                // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
                let [c, root, half, one] = [0.044715, 0.797_884_6, 0.5, 1.0].map(|v| self.constant(v));
                let g = &mut self.g;
                let square = g.op("Mul", &[&gate, &gate], vec![]);
                let cube = g.op("Mul", &[&square, &gate], vec![]);
                let cube = g.op("Mul", &[&cube, &c], vec![]);
                let inner = g.op("Add", &[&gate, &cube], vec![]);
                let inner = g.op("Mul", &[&inner, &root], vec![]);
                let t = g.op("Tanh", &[&inner], vec![]);
                let t = g.op("Add", &[&t, &one], vec![]);
                let x = g.op("Mul", &[&gate, &half], vec![]);
                g.op("Mul", &[&x, &t], vec![])
            }
        };
        self.g.op("Mul", &[&activated, &up], vec![])
    }

    fn residual(&mut self, x: String, branch: String) -> String {
        self.g.op("Add", &[&x, &branch], vec![])
    }
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
