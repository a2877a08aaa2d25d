// F16, row-major, two halves per u32 (low half first), widened with unpack2x16float.
fn block_dot(row: u32, block: u32, xi: u32) -> f32 {
    let base = (row * dims.cols + block * 32u) / 2u;
    var acc = 0.0;
    for (var w = 0u; w < 16u; w += 2u) {
        let a = unpack2x16float(qs[base + w]);
        let b = unpack2x16float(qs[base + w + 1u]);
        acc += dot(vec4<f32>(a, b), x4(xi + 2u * w));
    }
    return acc;
}
