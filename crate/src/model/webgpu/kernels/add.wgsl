// x += y over the step's tokens: a residual (y as wide as x) or a bias (one row of y for every
// token, `broadcast`).
struct Dims {
    width: u32,
    broadcast: u32,
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(1) var<uniform> dims: Dims;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<storage, read> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if (i < step.tokens * dims.width) {
        x[i] += y[select(i, i % dims.width, dims.broadcast != 0u)];
    }
}
