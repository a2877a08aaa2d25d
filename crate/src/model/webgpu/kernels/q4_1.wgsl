// Q4_1 (and Q4_K, repacked as Q4_1): w = d·q + m, so Σ w·x = d·Σ q·x + m·Σ x.
fn block_dot(row: u32, block: u32, xi: u32) -> f32 {
    let s = slot(row, block);
    let r = nibble_dot(s, xi);
    return scales[s] * r.x + mins[s] * r.y;
}
