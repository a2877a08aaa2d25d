// Q6_K: 32 signed bytes per block (q − 32, 8 u32) and two scales, one per 16 weights: the 4 rows
// of a group have their first scales, then their second ones, so the second is 4 further on.
fn block_dot(row: u32, block: u32, xi: u32) -> f32 {
    let s = slot(row, block);
    let first = (s / 4u) * 8u + s % 4u;
    var acc = vec2<f32>(0.0);
    for (var w = 0u; w < 8u; w++) {
        let p = bitcast<i32>(qs[s * 8u + w]);
        let q = vec4<f32>(f32(extractBits(p, 0u, 8u)), f32(extractBits(p, 8u, 8u)),
                          f32(extractBits(p, 16u, 8u)), f32(extractBits(p, 24u, 8u)));
        let d = dot(q, x4(xi + 4u * w));
        if (w < 4u) {
            acc.x += d;
        } else {
            acc.y += d;
        }
    }
    return scales[first] * acc.x + scales[first + 4u] * acc.y;
}
