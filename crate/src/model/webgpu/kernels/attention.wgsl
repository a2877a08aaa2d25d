// Causal grouped-query attention of token t (y), head h (x) over the cached positions
// 0..=step.start + t (the last `dims.window` of them, when set): softmax(q·K / sqrt(head_dim)) · V,
// computed over chunks of 64 positions with a running max (online softmax), so any context fits
// in 16 KiB of workgroup memory. `dims` (heads, kv_heads, head_dim, window): heads.wgsl.
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k_cache: array<f32>;
@group(0) @binding(4) var<storage, read> v_cache: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const CHUNK: u32 = 64u;
// Finite, not -inf: WGSL implementations may assume no infinities.
const LOWEST: f32 = -3.0e38;
var<workgroup> query: array<f32, 256>;
var<workgroup> weights: array<f32, 64>;
var<workgroup> reduce: array<f32, 64>;

fn workgroup_reduce(local: u32, value: f32, is_max: bool) -> f32 {
    reduce[local] = value;
    workgroupBarrier();
    for (var half = 32u; half > 0u; half >>= 1u) {
        if (local < half) {
            let other = reduce[local + half];
            reduce[local] = select(reduce[local] + other, max(reduce[local], other), is_max);
        }
        workgroupBarrier();
    }
    let result = reduce[0];
    workgroupBarrier();
    return result;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) local: u32) {
    let h = group.x;
    let t = group.y;
    let hd = dims.head_dim;
    let kv = h / (dims.heads / dims.kv_heads);
    let kv_width = dims.kv_heads * hd;
    let scale = inverseSqrt(f32(hd));
    let len = step.start + t + 1u;
    var first = 0u;
    if (dims.window != 0u && len > dims.window) {
        first = len - dims.window;
    }
    let q_base = (t * dims.heads + h) * hd;
    for (var d = local; d < hd; d += 64u) {
        query[d] = q[q_base + d];
    }
    workgroupBarrier();
    // Thread `local` owns output dimensions local, local + 64, ... (head_dim ≤ 256).
    var acc = vec4<f32>(0.0);
    var running_max = LOWEST;
    var total = 0.0;
    for (var c = first; c < len; c += CHUNK) {
        let j = c + local;
        var score = LOWEST;
        if (j < len) {
            let k_base = j * kv_width + kv * hd;
            var s = 0.0;
            for (var d = 0u; d < hd; d++) {
                s += query[d] * k_cache[k_base + d];
            }
            score = s * scale;
        }
        let new_max = max(running_max, workgroup_reduce(local, score, true));
        let p = select(0.0, exp(score - new_max), j < len);
        weights[local] = p;
        let correction = exp(running_max - new_max);
        total = total * correction + workgroup_reduce(local, p, false);
        acc *= correction;
        let n = min(CHUNK, len - c);
        for (var jj = 0u; jj < n; jj++) {
            let v_base = (c + jj) * kv_width + kv * hd;
            let w = weights[jj];
            for (var r = 0u; r < 4u; r++) {
                let d = local + 64u * r;
                if (d < hd) {
                    acc[r] += w * v_cache[v_base + d];
                }
            }
        }
        running_max = new_max;
        workgroupBarrier();
    }
    for (var r = 0u; r < 4u; r++) {
        let d = local + 64u * r;
        if (d < hd) {
            out[q_base + d] = acc[r] / total;
        }
    }
}
