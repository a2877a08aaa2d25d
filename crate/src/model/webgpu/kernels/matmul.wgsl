// out[t][row] (+)= Σ_col x[t][col] · W[row][col], for every token t of the dispatch (y) and every
// row (8 rows per workgroup, 8 lanes per row striding over the 32-weight blocks). The weight
// format file appended to this one defines `block_dot`. With `head`, token t reads x's row
// `step.logits_from + t`: the output projection only runs on the rows whose logits are read.
struct Dims {
    rows: u32,
    cols: u32,
    accumulate: u32,
    head: u32,
}
@group(0) @binding(1) var<uniform> dims: Dims;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> qs: array<u32>;
@group(0) @binding(5) var<storage, read> scales: array<f32>;
@group(0) @binding(6) var<storage, read> mins: array<f32>;

const LANES: u32 = 8u;
const ROWS_PER_GROUP: u32 = 8u;
var<workgroup> partial: array<f32, 64>;

fn x4(i: u32) -> vec4<f32> {
    return vec4<f32>(x[i], x[i + 1u], x[i + 2u], x[i + 3u]);
}

// The CPU layout of QuantMatrix: rows interleaved 4 per group, one (group, block) after another.
fn slot(row: u32, block: u32) -> u32 {
    return ((row / 4u) * (dims.cols / 32u) + block) * 4u + row % 4u;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) local: u32) {
    let row = group.x * ROWS_PER_GROUP + local / LANES;
    let lane = local % LANES;
    let t = group.y;
    let x_row = select(t, step.logits_from + t, dims.head == 1u);
    var sum = 0.0;
    if (row < dims.rows) {
        let x_base = x_row * dims.cols;
        for (var b = lane; b < dims.cols / 32u; b += LANES) {
            sum += block_dot(row, b, x_base + b * 32u);
        }
    }
    partial[local] = sum;
    workgroupBarrier();
    if (lane == 0u && row < dims.rows) {
        var total = 0.0;
        for (var i = 0u; i < LANES; i++) {
            total += partial[local + i];
        }
        let o = t * dims.rows + row;
        if (dims.accumulate == 1u) {
            out[o] += total;
        } else {
            out[o] = total;
        }
    }
}
