//! The embedding table taken out of the graph, in its stored type: the
//! `model.embed_tokens.weight` initializer, or optimum's and transformers.js's embedding Gather
//! (f32, f16, 8-bit or block-quantised), with the graph rewired to take `inputs_embeds`.

use std::sync::Arc;

use tract_onnx::pb;

use super::proto::{
    attr_int, readers_of, rename_values, value_info, Dim, ONNX_FLOAT, ONNX_FLOAT16, ONNX_INT4,
    ONNX_INT8, ONNX_UINT4, ONNX_UINT8,
};
use super::{EMBED_TOKENS_INITIALIZER, INPUT_NAMES};
use crate::error::{Error, Result};
use crate::model::formats::GgmlType;
use crate::model::quant::{QuantMatrix, BLOCK};
use crate::model::{f16_bits_to_f32, EmbeddingStorage, EmbeddingTable};

/// optimum's and transformers.js's layout: `input_ids` in, and the embedding `Gather` inside the
/// graph. The Gather goes, its table becomes the [`EmbeddingTable`], and the graph takes
/// `inputs_embeds` where the Gather's output was, so that superposed decoding can feed any
/// embedding. optimum's graphs also read `Shape(input_ids)` (for the mask and the logits'
/// shape): those Shapes read the embeddings instead (see [`shape_of_ids_from_embeddings`]).
/// None: the graph takes `inputs_embeds` already.
pub(super) fn take_gathered_embeddings(graph: &mut pb::GraphProto) -> Result<Option<EmbeddingTable>> {
    let Some(ids_input) = graph.input.iter().position(|i| i.name == "input_ids") else {
        return Ok(None);
    };
    if graph.input.iter().any(|i| i.name == INPUT_NAMES[0]) {
        return Err(Error::Model("the model takes both `input_ids` and `inputs_embeds`: expected one".into()));
    }
    let readers = readers_of(&graph.node, "input_ids");
    let is_gather = |n: &pb::NodeProto| match n.op_type.as_str() {
        "Gather" => n.input.len() == 2 && n.input[1] == "input_ids",
        "GatherBlockQuantized" => n.input.get(1).is_some_and(|i| i == "input_ids"),
        _ => false,
    };
    let is_shape = |n: &pb::NodeProto| n.op_type == "Shape" && n.input.len() == 1;
    let gathers: Vec<usize> = readers.iter().copied().filter(|&i| is_gather(&graph.node[i])).collect();
    let gather = match gathers[..] {
        [ix] if readers.iter().all(|&i| i == ix || is_shape(&graph.node[i])) => ix,
        _ => {
            let names: Vec<String> = readers.iter().map(|&i| format!("{} ({})", graph.node[i].name, graph.node[i].op_type)).collect();
            return Err(Error::Model(format!(
                "`input_ids` must feed one embedding Gather, and otherwise only Shape nodes; it feeds {names:?}"
            )));
        }
    };
    for &ix in readers.iter().filter(|&&i| i != gather) {
        shape_of_ids_from_embeddings(&mut graph.node[ix]);
    }
    let node = graph.node.remove(gather);
    let (embeddings, gathered, f16_rows) = if node.op_type == "GatherBlockQuantized" {
        let (embeddings, f16_rows) = block_quantized_table(graph, &node)?;
        (embeddings, node.output.first().cloned().unwrap_or_default(), f16_rows)
    } else {
        let (embeddings, gathered) = gathered_table(graph, &node)?;
        let f16_rows = matches!(embeddings.storage(), EmbeddingStorage::F16(_));
        (embeddings, gathered, f16_rows)
    };
    let hidden = embeddings.hidden_size();
    graph.input[ids_input] = value_info(INPUT_NAMES[0].into(), ONNX_FLOAT, vec![Dim::Param("batch_size"), Dim::Param("sequence_length"), Dim::Value(hidden)]);
    if f16_rows {
        // The Gather gave f16 rows: the f32 embeddings fed are cast to what it gave.
        let cast = pb::NodeProto { op_type: "Cast".into(), name: format!("{}/cast_inputs_embeds", node.name), input: vec![INPUT_NAMES[0].into()], output: vec![gathered], attribute: vec![attr_int("to", ONNX_FLOAT16 as i64)], ..Default::default() };
        graph.node.insert(0, cast);
    } else {
        rename_values(&mut graph.node, &[(gathered, INPUT_NAMES[0].into())]);
    }
    Ok(Some(embeddings))
}

/// A `Shape(input_ids)` rewired to read `inputs_embeds` `[batch, seq, hidden]`: its `start` and
/// `end`, resolved against the ids' rank 2, select the same `[batch, seq]` dims (or the part it
/// asked for). tract reads `start`/`end` at any opset.
fn shape_of_ids_from_embeddings(node: &mut pb::NodeProto) {
    let attr = |name: &str| node.attribute.iter().find(|a| a.name == name).map(|a| a.i);
    let resolve = |axis: i64| (if axis < 0 { axis + 2 } else { axis }).clamp(0, 2);
    let start = resolve(attr("start").unwrap_or(0));
    let end = resolve(attr("end").unwrap_or(2)).max(start);
    node.attribute.retain(|a| a.name != "start" && a.name != "end");
    node.attribute.extend([attr_int("start", start), attr_int("end", end)]);
    node.input[0] = INPUT_NAMES[0].into();
}

/// The table of a plain embedding `Gather` (f32, f16, or quantize_dynamic's 8-bit one with the
/// DequantizeLinear after it, which goes too), and the value that holds the gathered rows.
fn gathered_table(graph: &mut pb::GraphProto, node: &pb::NodeProto) -> Result<(EmbeddingTable, String)> {
    let table = &node.input[0];
    let Some(t) = graph.initializer.iter().position(|t| &t.name == table) else {
        return Err(Error::Model(format!(
            "the embedding Gather reads `{table}`, which is not an initializer (a quantised table is not supported yet)"
        )));
    };
    let mut gathered = node.output.first().cloned().unwrap_or_default();
    // quantize_dynamic's int8 table: Gather(int8) → DequantizeLinear(scale, zero point).
    let dequantize = if [ONNX_INT8, ONNX_UINT8].contains(&graph.initializer[t].data_type) {
        let dq = match readers_of(&graph.node, &gathered)[..] {
            [n] if graph.node[n].op_type == "DequantizeLinear" && graph.node[n].input.len() >= 2 => graph.node.remove(n),
            _ => return Err(Error::Model(format!("the embedding table `{table}` is 8-bit, but its Gather does not feed one DequantizeLinear"))),
        };
        let scale = scalar(graph, &dq.input[1]).ok_or_else(|| Error::Model(format!("the embedding's DequantizeLinear scale `{}` is not one constant", dq.input[1])))?;
        let zero_point = match dq.input.get(2).filter(|z| !z.is_empty()) {
            Some(z) => scalar(graph, z).ok_or_else(|| Error::Model(format!("the embedding's DequantizeLinear zero point `{z}` is not one constant")))?,
            None => 0.0,
        };
        gathered = dq.output.first().cloned().unwrap_or_default();
        Some((scale, zero_point))
    } else {
        None
    };
    let tensor = take_initializer(graph, table).expect("found above");
    Ok((embedding_table(tensor, dequantize)?, gathered))
}

/// An initializer, taken out of the graph unless a node still reads it (a tied output
/// projection may read the embedding table too), when it is cloned.
fn take_initializer(graph: &mut pb::GraphProto, name: &str) -> Option<pb::TensorProto> {
    let t = graph.initializer.iter().position(|t| t.name == name)?;
    Some(if readers_of(&graph.node, name).is_empty() { graph.initializer.remove(t) } else { graph.initializer[t].clone() })
}

/// transformers.js's 4-bit embedding: `GatherBlockQuantized(data, input_ids, scales[, zero
/// points])`, each row quantised in blocks along its length (MatMulNBits' packing: two 4-bit
/// values a byte, the first in the low nibble; or 8-bit), to values as onnxruntime dequantises
/// them, `(q − zero point) · scale`, kept in blocks where it can (see below). Returns the table
/// and whether the Gather gave f16 rows.
fn block_quantized_table(graph: &mut pb::GraphProto, node: &pb::NodeProto) -> Result<(EmbeddingTable, bool)> {
    let bad = |why: String| Error::Model(format!("the embedding's GatherBlockQuantized `{}` {why}", node.name));
    let attr = |name: &str, default: i64| node.attribute.iter().find(|a| a.name == name).map_or(default, |a| a.i);
    let (gather_axis, quantize_axis, block, bits) = (attr("gather_axis", 0), attr("quantize_axis", 1), attr("block_size", 128), attr("bits", 4));
    if gather_axis != 0 || !matches!(quantize_axis, 1 | -1) {
        return Err(bad(format!("gathers along axis {gather_axis} and quantises along axis {quantize_axis}: expected rows gathered, quantised along each row")));
    }
    // (usize: a 64-bit block size would wrap to 0 in wasm.)
    let block = match usize::try_from(block) {
        Ok(b) if b >= 16 && b.is_power_of_two() => b,
        _ => return Err(bad(format!("has block_size {block}: expected a power of two, at least 16"))),
    };
    let mut input = |i: usize, what: &str| match node.input.get(i).filter(|name| !name.is_empty()) {
        None => Ok(None),
        Some(name) => take_initializer(graph, name).map(Some).ok_or_else(|| bad(format!("reads its {what} from `{name}`, which is not an initializer"))),
    };
    let data = input(0, "table")?.ok_or_else(|| bad("has no table".into()))?;
    let scales = input(2, "scales")?.ok_or_else(|| bad("has no scales".into()))?;
    let zero_points = input(3, "zero points")?;
    let (rows, stored_cols) = match data.dims[..] {
        [rows, cols] if rows > 0 && cols > 0 => (rows as usize, cols as usize),
        _ => return Err(bad(format!("has a table of dims {:?}: expected [vocab, hidden]", data.dims))),
    };
    // Values and zero points are read unsigned: int4's q ∈ [−8, 7] as the nibble q + 8 (its sign
    // bit flipped), which leaves every q − zero point as it is.
    let flip = if data.data_type == ONNX_INT4 { 8 } else { 0 };
    // Value `i` of row-major 4-bit values, two a byte.
    let nibble = |raw: &[u8], i: usize| ((raw[i / 2] >> (4 * (i % 2))) & 0xF) as i32 ^ flip;
    let (cols, default_zero_point) = match (data.data_type, bits) {
        (ONNX_UINT8, 4) => (stored_cols * 2, 8),
        (ONNX_UINT8, 8) => (stored_cols, 128),
        (ONNX_UINT4 | ONNX_INT4, 4) => (stored_cols, flip),
        (t, b) => return Err(bad(format!("stores {b}-bit values as element type {t}: expected 4-bit (uint8, uint4 or int4) or 8-bit (uint8)"))),
    };
    let elements = rows.checked_mul(cols).ok_or_else(|| bad(format!("has dims {:?}, too large", data.dims)))?;
    let stored_bytes = if bits == 8 { elements } else { elements.div_ceil(2) };
    if data.raw_data.len() != stored_bytes {
        return Err(bad(format!("holds {} bytes for {rows} x {cols} {bits}-bit values", data.raw_data.len())));
    }
    let blocks = cols.div_ceil(block);
    if scales.dims != [rows as i64, blocks as i64] {
        return Err(bad(format!("has scales of dims {:?}: expected [{rows}, {blocks}] (blocks of {block})", scales.dims)));
    }
    let f16_rows = scales.data_type == ONNX_FLOAT16;
    let scale = float_values(&scales, rows * blocks).map_err(|why| bad(format!("has scales of {why}")))?;
    let quant = |i: usize| if bits == 8 { data.raw_data[i] as i32 } else { nibble(&data.raw_data, i) };
    let zero_point: Vec<i32> = match &zero_points {
        None => vec![default_zero_point; rows * blocks],
        Some(zp) => {
            // Row r's zero points start at nibble r · stride: 4-bit uint8 ones pad each row to a
            // whole byte, uint4 and int4 ones run on across rows.
            let (zp_cols, stride) = match (data.data_type, bits) {
                (ONNX_UINT8, 4) => (blocks.div_ceil(2), blocks.div_ceil(2) * 2),
                _ => (blocks, blocks),
            };
            let bytes = if bits == 8 { rows * blocks } else { (rows * stride).div_ceil(2) };
            if zp.data_type != data.data_type || zp.dims != [rows as i64, zp_cols as i64] || zp.raw_data.len() != bytes {
                return Err(bad(format!("has zero points of type {} and dims {:?}: expected the table's type, dims [{rows}, {zp_cols}]", zp.data_type, zp.dims)));
            }
            let at = |s: usize| if bits == 8 { zp.raw_data[s] as i32 } else { nibble(&zp.raw_data, s / blocks * stride + s % blocks) };
            (0..rows * blocks).map(at).collect()
        }
    };
    // Kept in 32-blocks where a format of our kernels holds the values exactly or within an f32
    // rounding: 4-bit ones as Q4_0 when every zero point is 8, else as Q4_1 with min −zero point
    // · scale; 8-bit ones as Q8_0 when every zero point is 128. Others (blocks of 16, or 8-bit
    // with other zero points) widen to f32.
    let format = match bits {
        _ if block % BLOCK != 0 || cols % BLOCK != 0 => None,
        4 if zero_point.iter().all(|&z| z == 8) => Some(GgmlType::Q4_0),
        4 => Some(GgmlType::Q4_1),
        _ if zero_point.iter().all(|&z| z == 128) => Some(GgmlType::Q8_0),
        _ => None,
    };
    let storage = match format {
        Some(format) => {
            let centre = if format == GgmlType::Q8_0 { 128 } else { 0 };
            let blocks_of_32 = |r: usize, b: usize| {
                let s = r * blocks + b * BLOCK / block;
                let first = r * cols + b * BLOCK;
                (std::array::from_fn(|j| quant(first + j) - centre), scale[s], -(zero_point[s] as f32) * scale[s])
            };
            EmbeddingStorage::Quant(Arc::new(QuantMatrix::from_block_quants(format, rows, cols, blocks_of_32).map_err(|e| bad(e.to_string()))?))
        }
        None => EmbeddingStorage::F32(
            (0..elements)
                .map(|i| {
                    let s = i / cols * blocks + i % cols / block;
                    (quant(i) - zero_point[s]) as f32 * scale[s]
                })
                .collect(),
        ),
    };
    let table = EmbeddingTable::new(rows, cols, storage).map_err(|e| bad(e.to_string()))?;
    Ok((table, f16_rows))
}

/// Removes the embedding initializer from the graph and returns it as a table.
pub(super) fn take_embeddings(graph: &mut pb::GraphProto) -> Result<EmbeddingTable> {
    let ix = graph
        .initializer
        .iter()
        .position(|t| t.name == EMBED_TOKENS_INITIALIZER)
        .ok_or_else(|| {
            Error::Model(format!(
                "the model has no `{EMBED_TOKENS_INITIALIZER}` initializer (the token embedding table) \
                 and no `input_ids` input with an embedding Gather"
            ))
        })?;
    let t = graph.initializer.remove(ix);
    graph.input.retain(|i| i.name != EMBED_TOKENS_INITIALIZER);
    embedding_table(t, None)
}

/// The value of a one-element constant (an initializer of any numeric type), as f32.
fn scalar(graph: &pb::GraphProto, name: &str) -> Option<f32> {
    let t = graph.initializer.iter().find(|t| t.name == name)?;
    if t.dims.iter().product::<i64>() != 1 {
        return None;
    }
    let raw = &t.raw_data;
    Some(match t.data_type {
        ONNX_FLOAT if raw.len() == 4 => f32::from_le_bytes(raw[..4].try_into().ok()?),
        ONNX_FLOAT => *t.float_data.first()?,
        ONNX_INT8 if raw.len() == 1 => raw[0] as i8 as f32,
        ONNX_UINT8 if raw.len() == 1 => raw[0] as f32,
        ONNX_INT8 | ONNX_UINT8 => *t.int32_data.first()? as f32,
        _ => return None,
    })
}

/// An embedding initializer `[vocab, hidden]` as a table: f32 or f16 in its stored type, or an
/// 8-bit one with its (scale, zero point) widened to f32 (4× its size: the table is read row by
/// row, and the graph's matrices stay 8-bit).
fn embedding_table(t: pb::TensorProto, dequantize: Option<(f32, f32)>) -> Result<EmbeddingTable> {
    let name = t.name.clone();
    let bad = |why: String| Error::Model(format!("`{name}`: {why}"));
    if t.dims.len() != 2 || t.dims.iter().any(|&d| d <= 0) {
        return Err(bad(format!(
            "expected a [vocab, hidden] matrix, got dims {:?}",
            t.dims
        )));
    }
    let (vocab, hidden) = (t.dims[0] as usize, t.dims[1] as usize);
    let n = vocab
        .checked_mul(hidden)
        .ok_or_else(|| bad(format!("dims {:?} are too large", t.dims)))?;
    let storage = match t.data_type {
        ONNX_FLOAT if !t.raw_data.is_empty() => {
            EmbeddingStorage::F32(le_elements(&t.raw_data, n, f32::from_le_bytes).map_err(bad)?)
        }
        ONNX_FLOAT => EmbeddingStorage::F32(t.float_data),
        ONNX_FLOAT16 if !t.raw_data.is_empty() => {
            EmbeddingStorage::F16(le_elements(&t.raw_data, n, u16::from_le_bytes).map_err(bad)?)
        }
        // ONNX keeps f16 values without raw_data in int32_data, one per element.
        ONNX_FLOAT16 => EmbeddingStorage::F16(t.int32_data.iter().map(|&x| x as u16).collect()),
        ONNX_INT8 | ONNX_UINT8 if dequantize.is_some() && t.raw_data.len() == n => {
            let (scale, zero_point) = dequantize.expect("checked");
            let value = |b: u8| if t.data_type == ONNX_INT8 { b as i8 as f32 } else { b as f32 };
            EmbeddingStorage::F32(t.raw_data.iter().map(|&b| (value(b) - zero_point) * scale).collect())
        }
        other => {
            return Err(bad(format!(
                "element type {other} is not supported (float32, float16, or 8-bit with a DequantizeLinear)"
            )))
        }
    };
    EmbeddingTable::new(vocab, hidden, storage).map_err(|e| bad(e.to_string()))
}

/// The `n` values of a float32 or float16 tensor, as f32.
fn float_values(t: &pb::TensorProto, n: usize) -> Result<Vec<f32>, String> {
    match t.data_type {
        ONNX_FLOAT if !t.raw_data.is_empty() => le_elements(&t.raw_data, n, f32::from_le_bytes),
        ONNX_FLOAT if t.float_data.len() == n => Ok(t.float_data.clone()),
        ONNX_FLOAT16 if !t.raw_data.is_empty() => Ok(le_elements(&t.raw_data, n, u16::from_le_bytes)?.into_iter().map(f16_bits_to_f32).collect()),
        ONNX_FLOAT16 if t.int32_data.len() == n => Ok(t.int32_data.iter().map(|&x| f16_bits_to_f32(x as u16)).collect()),
        other => Err(format!("element type {other}: expected {n} float32 or float16 values")),
    }
}

/// Exactly `n` little-endian elements of `N` bytes each, as ONNX stores `raw_data`.
fn le_elements<T, const N: usize>(raw: &[u8], n: usize, from: fn([u8; N]) -> T) -> Result<Vec<T>, String> {
    // Checked: dims of 2^31 x 2^31 give an `n` whose byte count overflows (a panic in debug
    // builds, and in release a wrapped product that could match; found by tests/fuzz.rs).
    if n.checked_mul(N) != Some(raw.len()) {
        return Err(format!("{} bytes of data for {n} elements of {N} bytes", raw.len()));
    }
    Ok(raw.chunks_exact(N).map(|b| from(b.try_into().expect("chunks_exact yields N bytes"))).collect())
}
