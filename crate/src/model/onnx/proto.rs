//! The protobuf helpers the other files share: ONNX's element type numbers, who reads a value,
//! renaming values, and building value infos and attributes.

use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};

// ONNX TensorProto.DataType
pub(crate) const ONNX_FLOAT: i32 = 1;
pub(crate) const ONNX_FLOAT16: i32 = 10;
pub(super) const ONNX_UINT8: i32 = 2;
pub(super) const ONNX_INT8: i32 = 3;
pub(super) const ONNX_STRING: i32 = 8;
pub(super) const ONNX_UINT4: i32 = 21;
pub(super) const ONNX_INT4: i32 = 22;

/// Bytes per element of the tensor types an LLM's initializers use (None: another type).
pub(super) fn element_bytes(data_type: i32) -> Option<u64> {
    // ONNX TensorProto.DataType: FLOAT, UINT8, INT8, UINT16, INT16, INT32, INT64, BOOL, FLOAT16,
    // DOUBLE, UINT32, UINT64, BFLOAT16.
    Some(match data_type {
        2 | 3 | 9 => 1,
        4 | 5 | 10 | 16 => 2,
        1 | 6 | 12 => 4,
        7 | 11 | 13 => 8,
        _ => return None,
    })
}

/// The nodes (their indices) that read the value `name`.
pub(super) fn readers_of(nodes: &[pb::NodeProto], name: &str) -> Vec<usize> {
    (0..nodes.len()).filter(|&n| nodes[n].input.iter().any(|x| x == name)).collect()
}

/// Renames values in `nodes`, wherever they are read or written: `(from, to)` pairs.
pub(super) fn rename_values(nodes: &mut [pb::NodeProto], renames: &[(String, String)]) {
    for name in nodes.iter_mut().flat_map(|n| n.input.iter_mut().chain(n.output.iter_mut())) {
        if let Some((_, to)) = renames.iter().find(|(from, _)| from == name) {
            *name = to.clone();
        }
    }
}

pub(super) fn is_cast_to(node: &pb::NodeProto, elem_type: i32) -> bool {
    node.op_type == "Cast" && node.attribute.iter().any(|a| a.name == "to" && a.i == elem_type as i64)
}

/// A dimension of a declared shape: fixed, or named (symbolic).
pub(crate) enum Dim {
    Value(usize),
    Param(&'static str),
}

pub(crate) fn value_info(name: String, elem_type: i32, dims: Vec<Dim>) -> pb::ValueInfoProto {
    let dim = dims
        .into_iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Value(v) => dimension::Value::DimValue(v as i64),
                Dim::Param(p) => dimension::Value::DimParam(p.into()),
            }),
            ..Default::default()
        })
        .collect();
    let tensor = pb::type_proto::Tensor { elem_type, shape: Some(pb::TensorShapeProto { dim }) };
    pb::ValueInfoProto {
        name,
        r#type: Some(pb::TypeProto { value: Some(pb::type_proto::Value::TensorType(tensor)), ..Default::default() }),
        ..Default::default()
    }
}

pub(crate) fn attr_int(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i, ..Default::default() }
}

pub(crate) fn attr_ints(name: &str, ints: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: AttributeType::Ints as i32, ints: ints.to_vec(), ..Default::default() }
}

pub(crate) fn attr_string(name: &str, s: &str) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: AttributeType::String as i32, s: s.as_bytes().to_vec(), ..Default::default() }
}
