// The attention shape, shared by rope_store and attention; `window`: the positions a query
// sees, itself included, in sliding-window layers (0: all before it).
struct Dims {
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    window: u32,
}
@group(0) @binding(1) var<uniform> dims: Dims;
