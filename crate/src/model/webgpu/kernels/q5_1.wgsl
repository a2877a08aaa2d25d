// Q5_1 (and Q5_K): w = d·q + m, so Σ w·x = d·Σ q·x + m·Σ x.
fn block_dot(row: u32, block: u32, xi: u32) -> f32 {
    let s = slot(row, block);
    let r = nibble5_dot(s, xi);
    return scales[s] * r.x + mins[s] * r.y;
}
