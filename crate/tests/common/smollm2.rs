//! Where the tests find SmolLM2-135M-Instruct (`models/smollm2-135m/`, built by `models/build.sh`,
//! git-ignored).

use std::path::PathBuf;

pub fn smollm2_dir() -> PathBuf {
    // SMOLLM2_DIR: another build of the same model (e.g. `build_model.py smollm2 --dtype f32
    // --out DIR`); the fixture is the f16 default build's, within the same tolerance.
    std::env::var_os("SMOLLM2_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/smollm2-135m"))
}

/// The model file, or `None` (after saying why) when it is missing and may be (see
/// [`built_file`](super::built_file)).
pub fn model_file(name: &str) -> Option<PathBuf> {
    super::built_file(smollm2_dir().join(name))
}
