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
    env: Environment<'static>,
}

const NAME: &str = "chat_template";

/// `source` if it compiles (`None` stays `None`): what a setter keeps, so that a template that
/// does not compile is refused when set, not when first applied.
pub fn checked_source(source: Option<&str>) -> Result<Option<String>> {
    if let Some(source) = source {
        ChatTemplate::new(source)?;
    }
    Ok(source.map(str::to_string))
}

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
        env.add_filter("tojson", python_json);
        env.add_template_owned(NAME, source.to_string()).map_err(template_error)?;
        Ok(Self { env })
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

/// HF's `tojson` is Python's `json.dumps(ensure_ascii=False)`: `", "` and `": "` between items
/// (`","` and newlines with an indent), no escaping of `<`, `>` or `&`. minijinja's own is
/// compact and HTML-escaped, so tool definitions would not render as the model saw them.
fn python_json(value: &Value, indent: Option<usize>, kwargs: minijinja::value::Kwargs) -> std::result::Result<Value, minijinja::Error> {
    let indent = match indent {
        Some(width) => Some(width),
        None => kwargs.get::<Option<usize>>("indent")?,
    };
    kwargs.assert_all_used()?;
    let mut out = Vec::new();
    let written = match indent {
        Some(width) => {
            let spaces = " ".repeat(width);
            value.serialize(&mut serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(spaces.as_bytes())))
        }
        None => value.serialize(&mut serde_json::Serializer::with_formatter(&mut out, PythonFormatter)),
    };
    written.map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}")))?;
    Ok(Value::from_safe_string(String::from_utf8(out).unwrap_or_default()))
}

/// serde_json's compact output with Python's default separators.
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, first: bool) -> std::io::Result<()> {
        if first { Ok(()) } else { writer.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, first: bool) -> std::io::Result<()> {
        if first { Ok(()) } else { writer.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

fn template_error(error: minijinja::Error) -> Error {
    // The detail is where a template raised an exception: its message is the useful part.
    match error.detail() {
        Some(detail) if error.kind() == ErrorKind::InvalidOperation => Error::ChatTemplate(detail.to_string()),
        _ => Error::ChatTemplate(error.to_string()),
    }
}
