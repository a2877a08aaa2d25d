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

/// The model file, or `None` (after saying why) when it is missing outside CI.
pub fn model_file(name: &str) -> Option<PathBuf> {
    let path = smollm2_dir().join(name);
    if path.exists() {
        return Some(path);
    }
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI=true but {} is missing: run models/build.sh first", path.display());
    println!("SKIPPED: {} is missing (build it with models/build.sh)", path.display());
    None
}
