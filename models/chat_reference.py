"""Renders chat templates with Python's Jinja2, configured as transformers' `apply_chat_template`
configures it (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loop controls,
`raise_exception`, `tojson`), and prints the cases and their renderings as JSON. The Rust test
crate/tests/native/chat.rs renders the same cases with minijinja and compares.

    models/.venv/bin/python models/chat_reference.py [model.gguf] [--without-special-tokens]

With a GGUF, its `tokenizer.chat_template` is one of the templates (SmolLM2's by default). The
templates of crate/tests/fixtures/chat_templates/ (Qwen2.5's, Qwen3's, Gemma 3's) are too.
Without special tokens, `bos_token` and `eos_token` are undefined, as for a model whose
tokenizer names none.
"""
import json
import sys
from pathlib import Path

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def hf_environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


# Templates in the styles chat models ship: block tags on their own lines (trim/lstrip),
# `| trim` and `.strip()`, `loop` variables, `raise_exception`, `bos_token`/`eos_token`.
LLAMA3 = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
MISTRAL = """{{ bos_token }}
{% for message in messages %}
    {% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
    {% endif %}
    {% if message['role'] == 'user' %}
        {{ '[INST] ' + message['content'].strip() + ' [/INST]' }}
    {% elif message['role'] == 'assistant' %}
        {{ message['content'] + eos_token }}
    {% endif %}
{% endfor %}
"""
# tojson as tool-calling templates use it: whole objects, with and without an indent.
JSON = "{{ messages | tojson }}\n{{ messages[0] | tojson(indent=2) }}{% if add_generation_prompt %}<think>{% endif %}"
LOOPS = """{% for message in messages %}
{% if message.role == 'system' %}{% continue %}{% endif %}
{{ loop.index }}/{{ loop.length }} {{ message.role | upper }}: {{ message.content | tojson }}{% if not loop.last %} | {% endif %}
{% endfor %}
{% if add_generation_prompt %}
ASSISTANT:{% endif %}"""

CHAT = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "  What is Mirostat? "},
    {"role": "assistant", "content": "A sampler that targets a surprise level."},
    {"role": "user", "content": "And \"superposed\" decoding — in one line? <b>&</b>"},
]
ALTERNATING = CHAT[1:]
# Tool results and a reasoning trace, as Qwen's templates lay them out (Gemma's refuses the roles).
TOOLS = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {"role": "assistant", "content": "<think>\nThe user wants the weather.\n</think>\n\nLet me look it up."},
    {"role": "tool", "content": "{\"temperature\": 21}"},
    {"role": "tool", "content": "{\"sky\": \"clear\"}"},
    {"role": "assistant", "content": "<think>\nBoth tools answered.\n</think>\n\nIt is 21 °C and clear."},
    {"role": "user", "content": "<tool_response>ignored as a query</tool_response>"},
]
# A reasoning trace before the last question, which Qwen3's template leaves out.
REASONING = [
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "<think>\nSimple.\n</think>\n\n4"},
    {"role": "user", "content": "And 3+3?"},
]
TEMPLATES = Path(__file__).resolve().parent.parent / "crate" / "tests" / "fixtures" / "chat_templates"


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    gguf_path = Path(args[0] if args else Path(__file__).parent / "smollm2-135m/model.gguf")
    templates = {"llama3": LLAMA3, "mistral": MISTRAL, "loops": LOOPS, "json": JSON}
    templates.update({path.stem: path.read_text(encoding="utf-8") for path in sorted(TEMPLATES.glob("*.jinja"))})
    if gguf_path.exists():
        import gguf

        field = gguf.GGUFReader(gguf_path).fields["tokenizer.chat_template"]
        templates["gguf"] = bytes(field.parts[field.data[0]]).decode()
    special = {} if "--without-special-tokens" in sys.argv else {"bos_token": "<s>", "eos_token": "</s>"}
    env = hf_environment()
    cases = []
    for name, source in templates.items():
        conversations = [(CHAT, "with a system turn"), (ALTERNATING, "user first"), (CHAT[1:2], "one user turn"),
                         (TOOLS, "tools and reasoning"), (REASONING, "an earlier reasoning trace")]
        for messages, label in conversations:
            for add_generation_prompt in (True, False):
                case = {"name": f"{name}, {label}, add_generation_prompt={add_generation_prompt}", "template": source,
                        "messages": messages, "add_generation_prompt": add_generation_prompt, **special}
                try:
                    case["expected"] = env.from_string(source).render(
                        messages=messages, add_generation_prompt=add_generation_prompt, **special)
                except jinja2.exceptions.UndefinedError as e:
                    # e.g. `+ eos_token` without one: an error in both, whose wording differs.
                    case["error"], case["error_kind"] = str(e), "undefined"
                except jinja2.exceptions.TemplateError as e:
                    # raise_exception's: the template's own message, the same in both.
                    case["error"], case["error_kind"] = str(e), "raised"
                cases.append(case)
    json.dump({"gguf": str(gguf_path) if "gguf" in templates else None, "cases": cases}, sys.stdout, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
