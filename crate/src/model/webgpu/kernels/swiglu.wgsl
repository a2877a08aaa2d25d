// gate = silu(gate) · up, elementwise over the step's tokens' feed-forward activations.
struct Dims {
    width: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
@group(0) @binding(1) var<uniform> dims: Dims;
@group(0) @binding(2) var<storage, read_write> gate: array<f32>;
@group(0) @binding(3) var<storage, read> up: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if (i < step.tokens * dims.width) {
        let g = gate[i];
        gate[i] = g / (1.0 + exp(-g)) * up[i];
    }
}
