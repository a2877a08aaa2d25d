//! Graph rewrites for the layouts optimum and onnxruntime export: a merged decoder's
//! `use_cache_branch` inlined, a half-precision export's KV Casts removed, and wide integer
//! matmuls split where tract would not fold their zero-point sums.

use tract_onnx::pb;

use super::proto::{
    attr_int, is_cast_to, readers_of, rename_values, ONNX_FLOAT, ONNX_FLOAT16, ONNX_INT8,
    ONNX_UINT8,
};
use crate::error::{Error, Result};

/// optimum's merged decoder takes `use_cache_branch` and chooses, by an `If`, between its graph
/// with a past and without. This runtime always feeds a past (empty at first, which the with-past
/// branch takes too), so the `If` is replaced by its with-past branch, inlined, and the rest of
/// the loader sees a plain decoder.
pub(super) fn take_use_cache_branch(graph: &mut pb::GraphProto) -> Result<()> {
    const NAME: &str = "use_cache_branch";
    let Some(input) = graph.input.iter().position(|i| i.name == NAME) else { return Ok(()) };
    graph.input.remove(input);
    let readers = readers_of(&graph.node, NAME);
    let [ix] = readers[..] else {
        return Err(Error::Model(format!("`{NAME}` must feed one If node (optimum's merged decoder); it feeds {} nodes", readers.len())));
    };
    let node = graph.node.remove(ix);
    let branch = node.attribute.iter().find(|a| a.name == "then_branch").and_then(|a| a.g.clone());
    let (true, Some(branch)) = (node.op_type == "If", branch) else {
        return Err(Error::Model(format!("`{NAME}` must feed an If node with a then_branch (optimum's merged decoder), not {} `{}`", node.op_type, node.name)));
    };
    let renames: Vec<(String, String)> = branch.output.iter().map(|o| o.name.clone()).zip(node.output.iter().cloned()).collect();
    let mut inlined = branch.node;
    rename_values(&mut inlined, &renames);
    graph.node.splice(ix..ix, inlined);
    graph.initializer.extend(branch.initializer);
    Ok(())
}

/// The most i32 elements tract 0.23 folds into a constant (`CONST_FOLD_MEM_BUDGET`, 4 MiB).
pub const TRACT_CONST_FOLD_ELEMENTS: usize = (4 << 20) / 4;

/// Splits each `MatMulInteger` whose int8 weight `[k, n]` has more than `max_elements` elements
/// into column blocks under it, joined by a `Concat`. tract computes a quantised product's
/// zero-point sums from the weight widened to i32, and folds that into a constant only within
/// its budget: past it (a `quantize_dynamic` export's lm_head, 576 × 49152 for SmolLM2) it
/// widens, sums and packs the whole weight on every forward pass, 13× slower decode. Applied at
/// load with [`TRACT_CONST_FOLD_ELEMENTS`].
pub fn split_wide_integer_matmuls(graph: &mut pb::GraphProto, max_elements: usize) {
    let mut at = 0;
    while at < graph.node.len() {
        let Some(blocks) = column_blocks(graph, &graph.node[at], max_elements) else {
            at += 1;
            continue;
        };
        let node = graph.node.remove(at);
        let take = |graph: &mut pb::GraphProto, name: &str| {
            let index = graph.initializer.iter().position(|t| t.name == name).expect("checked by column_blocks");
            graph.initializer.swap_remove(index)
        };
        let weight = take(graph, &node.input[1]);
        let zero_point = node.input.get(3).filter(|name| !name.is_empty()).map(|name| take(graph, name));
        let n = weight.dims[1] as usize;
        let mut parts = Vec::new();
        for (start, end) in blocks {
            // Rows of `columns` values, row-major: their [start, end) columns.
            let block = |t: &pb::TensorProto, columns: usize, dims: Vec<i64>| pb::TensorProto {
                name: format!("{}.cols{start}", t.name),
                dims,
                data_type: t.data_type,
                raw_data: t.raw_data.chunks_exact(columns).flat_map(|row| &row[start..end]).copied().collect(),
                ..Default::default()
            };
            let mut inputs = node.input.clone();
            let w = block(&weight, n, vec![weight.dims[0], (end - start) as i64]);
            inputs[1] = w.name.clone();
            graph.initializer.push(w);
            if let Some(zp) = zero_point.as_ref().filter(|zp| per_column(zp, n)) {
                let zp = block(zp, n, vec![(end - start) as i64]);
                inputs[3] = zp.name.clone();
                graph.initializer.push(zp);
            }
            let part = format!("{}.cols{start}", node.output[0]);
            parts.push(part.clone());
            graph.node.insert(at, pb::NodeProto { name: format!("{}.cols{start}", node.name), input: inputs, output: vec![part], ..node.clone() });
            at += 1;
        }
        if let Some(zp) = zero_point.filter(|zp| !per_column(zp, n)) {
            graph.initializer.push(zp);
        }
        let concat = pb::NodeProto { op_type: "Concat".into(), name: format!("{}.concat", node.name), input: parts, output: node.output, attribute: vec![attr_int("axis", -1)], ..Default::default() };
        graph.node.insert(at, concat);
        at += 1;
    }
}

/// Whether a weight zero point has one (8-bit) value a column, kept as raw bytes.
fn per_column(zero_point: &pb::TensorProto, columns: usize) -> bool {
    columns > 1 && zero_point.dims == [columns as i64] && zero_point.raw_data.len() == columns
}

/// The column blocks, each `(start, end)`, of a `MatMulInteger` worth splitting: its weight is
/// an int8 initializer `[k, n]` over `max_elements`, its weight zero point a scalar or
/// per-column initializer, and it alone reads them.
fn column_blocks(graph: &pb::GraphProto, node: &pb::NodeProto, max_elements: usize) -> Option<Vec<(usize, usize)>> {
    if node.op_type != "MatMulInteger" || node.input.len() < 2 || node.output.len() != 1 {
        return None;
    }
    let initializer = |name: &str| graph.initializer.iter().find(|t| t.name == name);
    let only_reader = |name: &str| readers_of(&graph.node, name).len() == 1;
    let weight = initializer(&node.input[1]).filter(|_| only_reader(&node.input[1]))?;
    let (k, n) = match weight.dims[..] {
        [k, n] if k > 0 && n > 0 => (k as usize, n as usize),
        _ => return None,
    };
    let elements = k.checked_mul(n)?;
    let int8 = matches!(weight.data_type, ONNX_INT8 | ONNX_UINT8) && weight.raw_data.len() == elements;
    let zero_point_ok = match node.input.get(3).filter(|name| !name.is_empty()) {
        None => true,
        Some(name) => initializer(name).is_some_and(|zp| per_column(zp, n) || zp.dims.iter().product::<i64>() == 1) && only_reader(name),
    };
    if !int8 || elements <= max_elements || !zero_point_ok {
        return None;
    }
    let width = (max_elements / k).max(1);
    Some((0..n).step_by(width).map(|start| (start, (start + width).min(n))).collect())
}

/// The element type a graph input or output declares.
fn declared_type(info: &pb::ValueInfoProto) -> Option<i32> {
    match info.r#type.as_ref()?.value.as_ref()? {
        pb::type_proto::Value::TensorType(t) => Some(t.elem_type),
    }
}

fn set_declared_type(info: &mut pb::ValueInfoProto, elem_type: i32) {
    if let Some(pb::TypeProto { value: Some(pb::type_proto::Value::TensorType(t)), .. }) = info.r#type.as_mut() {
        t.elem_type = elem_type;
    }
}

/// A half-precision export computes in f16 but may keep f32 at its edges (onnxruntime's
/// `keep_io_types`: a Cast after each past input and before each present output). tract's KV
/// cache rewrite needs `present = Concat(past, new)` with nothing between, so those Casts go and
/// the cache is kept in f16, as the graph computes it. Returns whether the cache is f16.
pub(super) fn kv_cache_in_stored_type(graph: &mut pb::GraphProto) -> Result<bool> {
    let mut renames: Vec<(String, String)> = Vec::new();
    let mut casts: Vec<usize> = Vec::new();
    for input in graph.input.iter_mut().filter(|i| i.name.starts_with("past_key_values.")) {
        if let [n] = readers_of(&graph.node, &input.name)[..] {
            let node = &graph.node[n];
            if is_cast_to(node, ONNX_FLOAT16) {
                renames.push((node.output[0].clone(), input.name.clone()));
                casts.push(n);
                set_declared_type(input, ONNX_FLOAT16);
            }
        }
    }
    for output in graph.output.iter_mut().filter(|o| o.name.starts_with("present.")) {
        let producer = graph.node.iter().position(|n| n.output.contains(&output.name));
        if let Some(n) = producer.filter(|&n| graph.node[n].op_type == "Cast" && graph.node[n].input.len() == 1) {
            renames.push((graph.node[n].input[0].clone(), output.name.clone()));
            casts.push(n);
            set_declared_type(output, ONNX_FLOAT16);
        }
    }
    casts.sort_unstable();
    for n in casts.into_iter().rev() {
        graph.node.remove(n);
    }
    rename_values(&mut graph.node, &renames);
    let kv_type = graph.input.iter().find(|i| i.name == "past_key_values.0.key").and_then(declared_type);
    if let Some(logits) = graph.output.iter_mut().find(|o| o.name == "logits" && declared_type(o) == Some(ONNX_FLOAT16)) {
        // Logits are read as f32: an f16 graph output gets a Cast.
        logits.name = "logits_f16".into();
        set_declared_type(logits, ONNX_FLOAT);
        rename_values(&mut graph.node, &[("logits".into(), "logits_f16".into())]);
        graph.node.push(pb::NodeProto { op_type: "Cast".into(), name: "logits_to_f32".into(), input: vec!["logits_f16".into()], output: vec!["logits".into()], attribute: vec![attr_int("to", ONNX_FLOAT as i64)], ..Default::default() });
        graph.output.iter_mut().find(|o| o.name == "logits_f16").expect("renamed above").name = "logits".into();
    }
    Ok(kv_type == Some(ONNX_FLOAT16))
}
