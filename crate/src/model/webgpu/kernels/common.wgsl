// What every kernel of one submit shares: the tokens it feeds (a chunk of at most MAX_CHUNK),
// the position of the first, and the first of them whose logits are read back.
struct Step {
    tokens: u32,
    start: u32,
    logits_from: u32,
    _pad: u32,
}
@group(0) @binding(0) var<uniform> step: Step;

// f32 math only (no `enable f16`): SwiftShader, the browser's fallback adapter, lacks shader-f16.
