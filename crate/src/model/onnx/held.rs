//! How tract holds the graph's weights (the weight types a model reports).

use tract_onnx::pb;

use super::proto::{
    element_bytes, is_cast_to, readers_of, ONNX_FLOAT, ONNX_FLOAT16, ONNX_INT8, ONNX_UINT8,
};

/// How tract holds the graph's weights (initializers of 1024 elements or more), most bytes
/// first: their stored types (an int8 weight of `MatMulInteger` stays int8), except for
/// `MatMulNBits`, whose 4-bit weights and their scales tract keeps as Q4_0 blocks when the block
/// is 32 and K a multiple of it, and otherwise widens to F32, and for a weight read only through
/// a Cast to f32, which tract folds into an f32 constant.
pub fn weight_types(graph: &pb::GraphProto) -> Vec<&'static str> {
    let mut nbits: std::collections::HashMap<&str, &'static str> = std::collections::HashMap::new();
    for node in graph.node.iter().filter(|n| n.op_type == "MatMulNBits") {
        let attr = |name: &str| node.attribute.iter().find(|a| a.name == name).map(|a| a.i);
        let q4_0 = attr("block_size") == Some(32) && attr("K").is_some_and(|k| k % 32 == 0) && attr("bits").unwrap_or(4) == 4;
        for input in node.input.iter().skip(1).take(2) {
            nbits.insert(input, if q4_0 { "Q4_0" } else { "F32" });
        }
    }
    // An f16 weight read only through a Cast to f32 (our converter's f16 layout) is folded to f32.
    let widened = |name: &str| {
        let readers = readers_of(&graph.node, name);
        !readers.is_empty() && readers.iter().all(|&n| is_cast_to(&graph.node[n], ONNX_FLOAT))
    };
    let mut bytes: Vec<(&'static str, u64)> = Vec::new();
    for t in &graph.initializer {
        let elements: i64 = t.dims.iter().product();
        let (Some(size), true) = (element_bytes(t.data_type), elements >= 1024 || nbits.contains_key(t.name.as_str())) else { continue };
        let name = match t.data_type {
            _ if nbits.contains_key(t.name.as_str()) => nbits[t.name.as_str()],
            _ if widened(&t.name) => "F32",
            ONNX_FLOAT => "F32",
            ONNX_FLOAT16 => "F16",
            16 => "BF16",
            ONNX_INT8 => "INT8",
            ONNX_UINT8 => "UINT8",
            _ => continue,
        };
        match bytes.iter_mut().find(|(n, _)| *n == name) {
            Some((_, b)) => *b += size * elements as u64,
            None => bytes.push((name, size * elements as u64)),
        }
    }
    bytes.sort_by(|a, b| b.1.cmp(&a.1));
    bytes.into_iter().map(|(name, _)| name).collect()
}
