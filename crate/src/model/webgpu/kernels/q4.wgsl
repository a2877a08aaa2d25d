// Q4_0 and Q4_1 share ggml's nibble order: byte j's low nibble is weight j, its high nibble
// weight j + 16. Returns (Σ q·x, Σ x) over one block.
fn nibble_dot(s: u32, xi: u32) -> vec2<f32> {
    var qx = 0.0;
    var sx = 0.0;
    for (var w = 0u; w < 4u; w++) {
        let p = qs[s * 4u + w];
        let lo = vec4<f32>(f32(p & 15u), f32((p >> 8u) & 15u), f32((p >> 16u) & 15u), f32((p >> 24u) & 15u));
        let hi = vec4<f32>(f32((p >> 4u) & 15u), f32((p >> 12u) & 15u), f32((p >> 20u) & 15u), f32(p >> 28u));
        let xl = x4(xi + 4u * w);
        let xh = x4(xi + 16u + 4u * w);
        qx += dot(lo, xl) + dot(hi, xh);
        sx += dot(xl + xh, vec4<f32>(1.0));
    }
    return vec2<f32>(qx, sx);
}
