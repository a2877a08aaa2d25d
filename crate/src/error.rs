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
    #[error("tokenizer error: {0}")]
    Tokenizer(String),
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("the prompt has {tokens} tokens but the context holds {context_length}, and one more is needed to generate")]
    PromptTooLong { tokens: usize, context_length: usize },
    #[error("generation was cancelled")]
    Cancelled,
    /// The model could not be loaded or run (corrupt bytes, an unexpected graph, an engine
    /// failure); the message says which.
    #[error("model error: {0}")]
    Model(String),
    /// The WebGPU backend failed: no adapter, a kernel or buffer the device refused, out of GPU
    /// memory, or a device lost mid-run. The automatic backend falls back to the CPU on it.
    #[error("WebGPU: {0}")]
    Gpu(String),
    /// An n-gram store that is corrupt, empty, or built with another tokenizer.
    #[error("n-gram store: {0}")]
    NgramStore(String),
    /// A generation's steps after a later call (start, score, logProbs) refilled the model's
    /// cache: the cache is no longer the generation's.
    #[error("this generation was replaced: a later start, score or logProbs call took over the model's cache; start it again")]
    Superseded,
    /// A call that would interleave with the generation running on the same model.
    #[error("a generation is running on this model: await it or cancel it first")]
    Busy,
    /// A call made while another one (a step, `score`, `logProbs`) awaits the model.
    #[error("another call on this model (a step, score or logProbs) is still running: await it first")]
    BusyCall,
    /// Feeding more tokens would take the sequence past the model's context length.
    #[error("the context is full: the model holds at most {context_length} tokens")]
    ContextFull { context_length: usize },
    /// A chat template that does not compile, or whose rendering failed (a template may refuse
    /// messages with `raise_exception`, e.g. roles that do not alternate), or a model without one.
    #[error("chat template: {0}")]
    ChatTemplate(String),
}

impl Error {
    /// A stable name for the kind of error, for callers to switch on instead of the message
    /// (in JS, `error.code`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidParameter { .. } | Error::InvalidConfig(_) => "InvalidConfig",
            Error::EmptyLogits | Error::NonFiniteLogit { .. } | Error::TokenOutOfRange { .. } | Error::AllTokensBanned | Error::EmptyPrompt => "InvalidInput",
            Error::PromptTooLong { .. } | Error::ContextFull { .. } => "ContextFull",
            Error::Tokenizer(_) => "Tokenizer",
            Error::Cancelled => "Cancelled",
            Error::Model(_) => "Model",
            Error::Gpu(_) => "WebGpu",
            Error::NgramStore(_) => "NgramStore",
            Error::Superseded => "Superseded",
            Error::Busy | Error::BusyCall => "Busy",
            Error::ChatTemplate(_) => "ChatTemplate",
        }
    }
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
