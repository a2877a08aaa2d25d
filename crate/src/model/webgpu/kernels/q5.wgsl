// Q5_1 (and Q5_K, repacked as it): 5 words per block, Q4's nibbles (byte j's low
// nibble is weight j, its high nibble weight j + 16) and then a word whose bit j is weight j's
// fifth bit. Returns (Σ q·x, Σ x) over one block.
fn nibble5_dot(s: u32, xi: u32) -> vec2<f32> {
    let h = qs[s * 5u + 4u];
    var qx = 0.0;
    var sx = 0.0;
    for (var w = 0u; w < 4u; w++) {
        let p = qs[s * 5u + w];
        let hl = h >> (4u * w);
        let hh = h >> (16u + 4u * w);
        let lo = vec4<f32>(f32((p & 15u) | ((hl & 1u) << 4u)), f32(((p >> 8u) & 15u) | ((hl & 2u) << 3u)),
                           f32(((p >> 16u) & 15u) | ((hl & 4u) << 2u)), f32(((p >> 24u) & 15u) | ((hl & 8u) << 1u)));
        let hi = vec4<f32>(f32(((p >> 4u) & 15u) | ((hh & 1u) << 4u)), f32(((p >> 12u) & 15u) | ((hh & 2u) << 3u)),
                           f32(((p >> 20u) & 15u) | ((hh & 4u) << 2u)), f32((p >> 28u) | ((hh & 8u) << 1u)));
        let xl = x4(xi + 4u * w);
        let xh = x4(xi + 16u + 4u * w);
        qx += dot(lo, xl) + dot(hi, xh);
        sx += dot(xl + xh, vec4<f32>(1.0));
    }
    return vec2<f32>(qx, sx);
}
