//! [`QuantMatMul`]: `y = x · Wᵀ` over a block-quantised weight, as a tract op.
//!
//! tract-linalg has no Q4_1 format and no wasm kernel for its Q4_0, and its kernel registry is
//! private, so the product runs in our own op with our kernels. The ONNX graph built from a
//! GGUF names the weight in a node attribute; tract's op register takes plain fn pointers
//! (no captured state), so the op is created unbound and [`bind_weights`] hands it its matrix by
//! name once the graph is typed. No rewrite touches the op: `declutter`, `codegen` and
//! `change_axes` keep their "no change" defaults.

use std::sync::Arc;

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::graph::QuantisedWeights;
use crate::model::quant::{Kernel, QuantMatrix};

/// `y[.., n] = Σ_k x[.., k] · W[n, k]`, with `W` a [`QuantMatrix`].
#[derive(Debug, Clone)]
pub struct QuantMatMul {
    /// The weight's tensor name in the GGUF.
    pub name: String,
    pub rows: usize,
    weight: Option<Arc<QuantMatrix>>,
    kernel: Kernel,
}

impl QuantMatMul {
    /// The op type of the node in the ONNX graph built by [`super::graph`].
    pub const ONNX_OP: &'static str = "PlaygroundQuantMatMul";
}

impl PartialEq for QuantMatMul {
    fn eq(&self, other: &Self) -> bool {
        let same_weight = match (&self.weight, &other.weight) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        self.name == other.name && same_weight && self.kernel == other.kernel
    }
}

impl Eq for QuantMatMul {}

impl Op for QuantMatMul {
    fn name(&self) -> StaticName {
        "QuantMatMul".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(match &self.weight {
            Some(w) => vec![format!("{} {} [{} x {}]", self.name, w.format().name(), w.rows(), w.cols())],
            None => vec![format!("{} (unbound)", self.name)],
        })
    }

    op_as_typed_op!();
}

impl EvalOp for QuantMatMul {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let weight = self.weight.as_ref().with_context(|| format!("{} has no weights bound", self.name))?;
        let x = args_1!(inputs);
        let shape = x.shape();
        let k = *shape.last().context("QuantMatMul needs an input of rank >= 1")?;
        ensure!(k == weight.cols(), "{}: input width {k}, weight has {} columns", self.name, weight.cols());
        let m = shape[..shape.len() - 1].iter().product::<usize>();
        let mut out_shape: TVec<usize> = shape.into();
        *out_shape.last_mut().expect("rank >= 1") = weight.rows();
        let x = x.try_as_plain_ram()?;
        let mut out = vec![0f32; m * weight.rows()];
        weight
            .matmul_with(self.kernel, x.as_slice::<f32>()?, m, &mut out)
            .map_err(|e| format_err!("{}: {e}", self.name))?;
        Ok(tvec!(Tensor::from_shape(&out_shape, &out)?.into_tvalue()))
    }
}

impl TypedOp for QuantMatMul {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs[0].datum_type == f32::datum_type(), "QuantMatMul takes f32 activations");
        let mut shape = inputs[0].shape.to_tvec();
        *shape.last_mut().context("QuantMatMul needs an input of rank >= 1")? = self.rows.to_dim();
        Ok(tvec!(f32::fact(shape)))
    }

    as_op!();
}

/// Gives every [`QuantMatMul`] of `model` its weight and the kernel to run.
pub fn bind_weights(model: &mut TypedModel, weights: &QuantisedWeights, kernel: Kernel) -> TractResult<()> {
    for node in model.nodes_mut() {
        if let Some(op) = node.op_as_mut::<QuantMatMul>() {
            let weight = weights.get(&op.name).with_context(|| format!("no weights for `{}`", op.name))?;
            ensure!(weight.rows() == op.rows, "`{}` has {} rows, the graph expects {}", op.name, weight.rows(), op.rows);
            op.weight = Some(weight.clone());
            op.kernel = kernel;
        }
    }
    Ok(())
}

/// The inference-time form: infers the output shape, then wires an unbound [`QuantMatMul`].
#[derive(Debug, Clone)]
struct QuantMatMulExpansion {
    name: String,
    rows: usize,
}

impl Expansion for QuantMatMulExpansion {
    fn name(&self) -> StaticName {
        "QuantMatMul".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].datum_type, &inputs[0].datum_type)?;
        s.equals(&outputs[0].rank, &inputs[0].rank)?;
        let rows = self.rows.to_dim();
        s.given(&inputs[0].rank, move |s, rank| {
            let rank = rank as usize;
            for axis in 0..rank - 1 {
                s.equals(&outputs[0].shape[axis], &inputs[0].shape[axis])?;
            }
            s.equals(&outputs[0].shape[rank - 1], rows.clone())
        })
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let op = QuantMatMul { name: self.name.clone(), rows: self.rows, weight: None, kernel: Kernel::Simd };
        model.wire_node(prefix, op, inputs)
    }
}

/// The op register entry for [`QuantMatMul::ONNX_OP`] nodes (attributes `weight`, `rows`).
pub fn onnx_builder(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let name: String = node.get_attr("weight")?;
    let rows: usize = node.get_attr("rows")?;
    Ok((expand(QuantMatMulExpansion { name, rows }), vec![]))
}
