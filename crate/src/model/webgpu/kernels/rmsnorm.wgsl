// out[r] = x[r] / sqrt(mean(x[r]²) + eps) · weight, one workgroup per row r of `width` values
// (a token's hidden state, or one head of a token's Q or K).
struct Dims {
    width: u32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(1) var<uniform> dims: Dims;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;

var<workgroup> sums: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) local: u32) {
    let base = group.x * dims.width;
    var s = 0.0;
    for (var i = local; i < dims.width; i += 256u) {
        s += x[base + i] * x[base + i];
    }
    sums[local] = s;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if (local < half) {
            sums[local] += sums[local + half];
        }
        workgroupBarrier();
    }
    let scale = inverseSqrt(sums[0] / f32(dims.width) + dims.eps);
    for (var i = local; i < dims.width; i += 256u) {
        out[base + i] = x[base + i] * scale * weight[i];
    }
}
