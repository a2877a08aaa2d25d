//! Chat templates: the Jinja template a chat model ships (`tokenizer.chat_template` in a GGUF,
//! `chat_template` in HF's `tokenizer_config.json`), rendered as HF's `apply_chat_template`
//! renders it, so that a prompt matches what the model was trained on.

use crate::error::{Error, Result};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, ErrorKind, Value};
use serde::{Deserialize, Serialize};

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct ChatMessage {
    /// "system", "user" or "assistant" (templates may accept others, e.g. "tool").
    pub role: String,
    pub content: String,
}

/// The special tokens a template may refer to (`{{ bos_token }}`). Absent ones are left out of
/// the context, so they are undefined and render empty, as in Jinja2 (a `none` would render
/// "None").
#[derive(Debug, Clone, Default, Serialize)]
pub struct SpecialTokens {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bos_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eos_token: Option<String>,
}

/// A compiled chat template.
pub struct ChatTemplate {
    source: String,
    env: Environment<'static>,
}

const NAME: &str = "chat_template";

impl ChatTemplate {
    /// Compiles `source` with the settings of HF's environment: blocks trimmed and
    /// left-stripped, loop controls, `tojson`, `raise_exception`, Python's string methods.
    pub fn new(source: &str) -> Result<Self> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build().map_err(template_error)?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |message: String| -> std::result::Result<Value, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
        });
        env.add_template_owned(NAME, source.to_string()).map_err(template_error)?;
        Ok(Self { source: source.to_string(), env })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The prompt for `messages`; with `add_generation_prompt`, it ends with what opens the
    /// assistant's turn, so that a generation from it is the reply.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool, special: &SpecialTokens) -> Result<String> {
        let template = self.env.get_template(NAME).map_err(template_error)?;
        let context = minijinja::context! {
            messages => Value::from(Serde(messages)),
            add_generation_prompt => add_generation_prompt,
            ..Value::from(Serde(special))
        };
        template.render(context).map_err(template_error)
    }
}

fn template_error(error: minijinja::Error) -> Error {
    // The detail is where a template raised an exception: its message is the useful part.
    match error.detail() {
        Some(detail) if error.kind() == ErrorKind::InvalidOperation => Error::ChatTemplate(detail.to_string()),
        _ => Error::ChatTemplate(error.to_string()),
    }
}
