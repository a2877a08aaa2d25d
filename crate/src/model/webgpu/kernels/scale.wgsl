// x *= factor over the step's tokens (gemma's √hidden on the embeddings).
struct Dims {
    width: u32,
    factor: f32,
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(1) var<uniform> dims: Dims;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if (i < step.tokens * dims.width) {
        x[i] *= dims.factor;
    }
}
