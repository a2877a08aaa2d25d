use thiserror::Error;

/// Every way the decoding core can refuse its input. In wasm each becomes a JS `Error`
/// carrying the same message.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Error {
    #[error("{name} must be {expected}, got {value}")]
    InvalidParameter {
        name: &'static str,
        expected: &'static str,
        value: String,
    },
    #[error("logits are empty")]
    EmptyLogits,
    #[error("logit {index} is {value}; logits must be finite numbers")]
    NonFiniteLogit { index: usize, value: f32 },
    #[error("token {token} is outside the vocabulary of {vocab_size} tokens")]
    TokenOutOfRange { token: u32, vocab_size: usize },
    #[error("every token is banned by the logit bias")]
    AllTokensBanned,
    #[error("invalid config: {0}")]
    InvalidConfig(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Returns an `InvalidParameter` error unless `ok`.
pub(crate) fn check(
    ok: bool,
    name: &'static str,
    expected: &'static str,
    value: impl std::fmt::Display,
) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            name,
            expected,
            value: value.to_string(),
        })
    }
}
