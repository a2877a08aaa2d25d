// The attention shape, shared by rope_store and attention.
struct Dims {
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    _pad: u32,
}
@group(0) @binding(1) var<uniform> dims: Dims;
