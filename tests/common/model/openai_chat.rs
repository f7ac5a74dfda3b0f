//! The OpenAI Chat Completions adapter of the scripted model service
//! (`POST /v1/chat/completions`), spoken by aider (through litellm) and by
//! opencode (through `@ai-sdk/openai-compatible`).
//!
//! A streamed answer is `data: {chunk}` lines ending with `data: [DONE]`;
//! the usage comes in a chunk of its own with empty `choices` when the
//! request asks for it (`stream_options.include_usage`), else on the chunk
//! that finishes the choice. A `Reply::Write` becomes a call of the write
//! tool the request offered (its parameter names read from the tool's
//! schema); a request that offers no tools at all (aider, opencode's title
//! request) gets the file in aider's "whole" edit format instead: the path on
//! a line of its own, then a fenced block with the whole new content. A
//! request that offers tools but no write tool (a read-only agent) gets a
//! call of `write` anyway, as a model might make, so that a test sees the
//! CLI refuse it.

use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Reply, Response, Turn, INPUT_TOKENS, OUTPUT_TOKENS};

/// The conversation of a request, as the script sees it.
pub fn turn(body: &Value) -> Turn {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let of_role = |roles: &[&str]| -> Vec<String> {
        messages
            .iter()
            .filter(|m| roles.contains(&m["role"].as_str().unwrap_or("")))
            .map(|m| text_of(&m["content"]))
            .collect()
    };
    let tool_outputs = of_role(&["tool"]);
    Turn {
        model: body["model"].as_str().unwrap_or("").to_string(),
        system: of_role(&["system", "developer"]).join("\n"),
        user_text: of_role(&["user"]).join("\n"),
        tool_results: tool_outputs.len(),
        last_tool_output: tool_outputs.last().cloned(),
        tools: tools(body)
            .iter()
            .filter_map(|t| t["function"]["name"].as_str().map(String::from))
            .collect(),
    }
}

/// The reply rendered as this API's response (streamed when asked).
pub fn respond(body: &Value, _turn: &Turn, reply: &Reply) -> Response {
    let (message, finish) = match reply {
        Reply::Text(text) => (json!({"role": "assistant", "content": text}), "stop"),
        Reply::Write { path, content } if tools(body).is_empty() => (
            json!({"role": "assistant", "content": whole_file(path, content)}),
            "stop",
        ),
        Reply::Write { path, content } => (
            json!({"role": "assistant", "content": null, "tool_calls": [write_call(body, path, content)]}),
            "tool_calls",
        ),
    };
    let usage = json!({
        "prompt_tokens": INPUT_TOKENS,
        "completion_tokens": OUTPUT_TOKENS,
        "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
    });
    let model = body["model"].as_str().unwrap_or("scripted");
    if body["stream"].as_bool() == Some(true) {
        let separate_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
        stream(model, message, finish, usage, separate_usage)
    } else {
        Response::json(&json!({
            "id": next_id("chatcmpl"),
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }))
    }
}

/// The SSE chunks of one answer: the whole delta at once, the finish, the
/// usage, `[DONE]`.
fn stream(
    model: &str,
    message: Value,
    finish: &str,
    usage: Value,
    separate_usage: bool,
) -> Response {
    let id = next_id("chatcmpl");
    let chunk = |choices: Value, usage: Option<&Value>| {
        let mut chunk = json!({
            "id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": choices,
        });
        if let Some(usage) = usage {
            chunk["usage"] = usage.clone();
        }
        chunk
    };
    let mut delta = message;
    if let Some(calls) = delta["tool_calls"].as_array_mut() {
        for (index, call) in calls.iter_mut().enumerate() {
            call["index"] = json!(index);
        }
    }
    let mut chunks = vec![
        chunk(
            json!([{"index": 0, "delta": delta, "finish_reason": null}]),
            None,
        ),
        chunk(
            json!([{"index": 0, "delta": {}, "finish_reason": finish}]),
            (!separate_usage).then_some(&usage),
        ),
    ];
    if separate_usage {
        chunks.push(chunk(json!([]), Some(&usage)));
    }
    let mut body: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    body.push_str("data: [DONE]\n\n");
    Response::sse_raw(body)
}

/// A call of the request's write tool (or of `write`, if it offers none),
/// with the argument names its schema uses.
fn write_call(body: &Value, path: &str, content: &str) -> Value {
    let tools = tools(body);
    let tool = ["write", "write_file", "create_file"]
        .iter()
        .find_map(|name| tools.iter().find(|t| t["function"]["name"] == *name));
    let name = tool
        .and_then(|t| t["function"]["name"].as_str())
        .unwrap_or("write");
    let properties = tool.map(|t| t["function"]["parameters"]["properties"].clone());
    let pick = |candidates: &[&'static str]| -> &'static str {
        candidates
            .iter()
            .copied()
            .find(|key| properties.as_ref().is_some_and(|p| p.get(*key).is_some()))
            .unwrap_or(candidates[0])
    };
    let mut arguments = serde_json::Map::new();
    arguments.insert(
        pick(&["filePath", "file_path", "path", "absolute_path", "filename"]).into(),
        json!(path),
    );
    arguments.insert(
        pick(&["content", "contents", "text"]).into(),
        json!(content),
    );
    json!({
        "id": next_id("call"),
        "type": "function",
        "function": {"name": name, "arguments": Value::Object(arguments).to_string()},
    })
}

/// A file in aider's "whole" edit format.
fn whole_file(path: &str, content: &str) -> String {
    let newline = if content.ends_with('\n') { "" } else { "\n" };
    format!("{path}\n```\n{content}{newline}```\n")
}

/// The tools a request offers.
fn tools(body: &Value) -> Vec<Value> {
    body["tools"].as_array().cloned().unwrap_or_default()
}

/// The text of a message's content: a string, or an array of parts.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str().or_else(|| p.as_str()))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// An id unique within the test process.
fn next_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{prefix}_{}", NEXT.fetch_add(1, Ordering::SeqCst))
}
