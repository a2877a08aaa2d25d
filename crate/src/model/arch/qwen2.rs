//! `qwen2`: Qwen2 and Qwen2.5. Its Q/K/V biases are optional tensors of every architecture.
use super::{Architecture, BASE};

pub const QWEN2: Architecture = Architecture { name: "qwen2", ..BASE };
