// Rotates q in place and k into the layer's key cache (HF's rotate_half RoPE, angles from a
// table computed on the CPU), and copies v into the value cache, at positions step.start + t.
// Caches are [position][kv head][head_dim]. One workgroup per token.
// `dims` (heads, kv_heads, head_dim): heads.wgsl.
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(6) var<storage, read_write> v_cache: array<f32>;
// [position][head_dim / 2] cosines, then the sines in the same layout.
@group(0) @binding(7) var<storage, read> angles: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) local: u32) {
    let t = group.x;
    let pos = step.start + t;
    let half = dims.head_dim / 2u;
    let sines = arrayLength(&angles) / 2u;
    let q_pairs = dims.heads * half;
    let k_pairs = dims.kv_heads * half;
    let kv_width = dims.kv_heads * dims.head_dim;
    for (var j = local; j < q_pairs + k_pairs; j += 64u) {
        let is_q = j < q_pairs;
        let pair = select(j - q_pairs, j, is_q);
        let head = pair / half;
        let i = pair % half;
        let c = angles[pos * half + i];
        let s = angles[sines + pos * half + i];
        if (is_q) {
            let at = (t * dims.heads + head) * dims.head_dim + i;
            let a = q[at];
            let b = q[at + half];
            q[at] = a * c - b * s;
            q[at + half] = b * c + a * s;
        } else {
            let src = t * kv_width + head * dims.head_dim + i;
            let dst = pos * kv_width + head * dims.head_dim + i;
            let a = k[src];
            let b = k[src + half];
            k_cache[dst] = a * c - b * s;
            k_cache[dst + half] = b * c + a * s;
        }
    }
    for (var j = local; j < kv_width; j += 64u) {
        v_cache[pos * kv_width + j] = v[t * kv_width + j];
    }
}
