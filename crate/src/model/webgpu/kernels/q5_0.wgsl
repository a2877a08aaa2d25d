// Q5_0: w = d·(q − 16).
fn block_dot(row: u32, block: u32, xi: u32) -> f32 {
    let s = slot(row, block);
    let r = nibble5_dot(s, xi);
    return scales[s] * (r.x - 16.0 * r.y);
}
