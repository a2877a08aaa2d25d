// F32, row-major, bound as u32 words.
fn block_dot(row: u32, block: u32, xi: u32) -> f32 {
    let base = row * dims.cols + block * 32u;
    var acc = 0.0;
    for (var w = 0u; w < 32u; w += 4u) {
        let v = vec4<f32>(bitcast<f32>(qs[base + w]), bitcast<f32>(qs[base + w + 1u]),
                          bitcast<f32>(qs[base + w + 2u]), bitcast<f32>(qs[base + w + 3u]));
        acc += dot(v, x4(xi + w));
    }
    return acc;
}
