// Q8_0: 32 signed bytes per block (8 u32), w = d·q.
fn block_dot(row: u32, block: u32, xi: u32) -> f32 {
    let s = slot(row, block);
    var acc = 0.0;
    for (var w = 0u; w < 8u; w++) {
        let p = bitcast<i32>(qs[s * 8u + w]);
        let q = vec4<f32>(f32(extractBits(p, 0u, 8u)), f32(extractBits(p, 8u, 8u)),
                          f32(extractBits(p, 16u, 8u)), f32(extractBits(p, 24u, 8u)));
        acc += dot(q, x4(xi + 4u * w));
    }
    return scales[s] * acc;
}
