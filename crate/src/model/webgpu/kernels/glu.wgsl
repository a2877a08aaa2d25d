// gate = act(gate) · up, elementwise over the step's tokens' feed-forward activations; act is
// SiLU, or ggml's tanh-form GELU.
struct Dims {
    width: u32,
    gelu: u32,
    _pad1: u32,
    _pad2: u32,
}
@group(0) @binding(1) var<uniform> dims: Dims;
@group(0) @binding(2) var<storage, read_write> gate: array<f32>;
@group(0) @binding(3) var<storage, read> up: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if (i < step.tokens * dims.width) {
        let g = gate[i];
        var a: f32;
        if (dims.gelu != 0u) {
            // tanh itself overflows to NaN past |x| ≈ 44 on some drivers; it is ±1 long before.
            let inner = clamp(0.7978846 * g * (1.0 + 0.044715 * g * g), -20.0, 20.0);
            a = 0.5 * g * (1.0 + tanh(inner));
        } else {
            a = g / (1.0 + exp(-g));
        }
        gate[i] = a * up[i];
    }
}
