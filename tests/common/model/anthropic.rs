//! The Anthropic Messages API (`POST /v1/messages`) of the scripted model
//! service, as Claude Code 2.1.197 speaks it: a `system` list of text
//! blocks, `messages` whose `content` is a string or a list of blocks
//! (`text`, `tool_use`, `tool_result`; Claude Code also puts `role: system`
//! messages between them), `tools` with `name` and `input_schema`, and
//! `stream: true`, answered with the `message_start`, `content_block_*`,
//! `message_delta`, `message_stop` events.
//!
//! `Reply::Write` becomes a call of Claude Code's `Write` tool
//! (`file_path`, `content`); its `file_path` must be absolute, so a relative
//! path is joined to the "Primary working directory" that Claude Code's
//! system prompt names; a file that exists is `Read` first, as Claude
//! Code's `Write` demands. A request that offers no tools (Claude Code's
//! session-title request, made when it authenticates with
//! `ANTHROPIC_AUTH_TOKEN`) gets text, whatever the script says.

use serde_json::{json, Value};

use super::{Reply, Response, Turn, INPUT_TOKENS, OUTPUT_TOKENS};

/// The conversation of a request, as the script sees it.
pub fn turn(body: &Value) -> Turn {
    let mut turn = Turn {
        model: body["model"].as_str().unwrap_or_default().to_string(),
        system: text_of(&body["system"]),
        tools: body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str().map(String::from))
            .collect(),
        ..Turn::default()
    };
    let user_messages = body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "user");
    for message in user_messages {
        match &message["content"] {
            Value::String(text) => push_text(&mut turn.user_text, text),
            Value::Array(blocks) => {
                for block in blocks {
                    match block["type"].as_str() {
                        Some("text") => {
                            push_text(&mut turn.user_text, block["text"].as_str().unwrap_or(""))
                        }
                        Some("tool_result") if is_read_first(block) => {}
                        Some("tool_result") => {
                            turn.tool_results += 1;
                            turn.last_tool_output = Some(text_of(&block["content"]));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    turn
}

/// The reply rendered as a Messages API response (streamed when asked).
pub fn respond(body: &Value, turn: &Turn, reply: &Reply) -> Response {
    let (block, stop_reason) = match reply {
        Reply::Text(text) => (json!({"type": "text", "text": text}), "end_turn"),
        // A side request without tools (Claude Code's session title): text.
        Reply::Write { path, .. } if turn.tools.is_empty() => (
            json!({"type": "text", "text": format!("Write {path}")}),
            "end_turn",
        ),
        Reply::Write { path, .. } if must_read_first(body, turn, &absolute(turn, path)) => (
            json!({
                "type": "tool_use",
                "id": format!("{READ_FIRST}{}", turn.tool_results),
                "name": "Read",
                "input": {"file_path": absolute(turn, path)},
            }),
            "tool_use",
        ),
        Reply::Write { path, content } => (
            json!({
                "type": "tool_use",
                "id": format!("toolu_scripted_{}", turn.tool_results),
                "name": write_tool(turn),
                "input": {"file_path": absolute(turn, path), "content": content},
            }),
            "tool_use",
        ),
    };
    let model = body["model"].as_str().unwrap_or("scripted");
    let id = format!("msg_scripted_{}", turn.tool_results);
    let usage = json!({"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS});
    if body["stream"] != true {
        return Response::json(&json!({
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": [block], "stop_reason": stop_reason, "stop_sequence": null,
            "usage": usage,
        }));
    }
    Response::sse(&[
        (
            "message_start",
            json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 1},
            }}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": opened(&block)}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": delta(&block)}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": {"output_tokens": OUTPUT_TOKENS}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ])
}

/// The id prefix of the `Read` calls the adapter makes of its own: Claude
/// Code's `Write` refuses to overwrite a file that the conversation has not
/// read ("File has not been read yet"), so an existing file is read first.
/// Their results are not the script's: `turn` does not count them.
const READ_FIRST: &str = "toolu_scripted_read_first_";

fn is_read_first(result: &Value) -> bool {
    result["tool_use_id"]
        .as_str()
        .is_some_and(|id| id.starts_with(READ_FIRST))
}

/// Whether `file` exists (the service runs beside the CLI, on the same
/// disk) and no earlier `Read` call of this conversation read it.
fn must_read_first(body: &Value, turn: &Turn, file: &str) -> bool {
    if !turn.tools.iter().any(|t| t == "Read") || !std::path::Path::new(file).is_file() {
        return false;
    }
    let read_before = body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "assistant")
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .any(|b| b["type"] == "tool_use" && b["name"] == "Read" && b["input"]["file_path"] == file);
    !read_before
}

/// A content block as `content_block_start` opens it: empty, filled by
/// the one delta that follows.
fn opened(block: &Value) -> Value {
    match block["type"].as_str() {
        Some("tool_use") => json!({
            "type": "tool_use", "id": block["id"], "name": block["name"], "input": {},
        }),
        _ => json!({"type": "text", "text": ""}),
    }
}

fn delta(block: &Value) -> Value {
    match block["type"].as_str() {
        Some("tool_use") => {
            json!({"type": "input_json_delta", "partial_json": block["input"].to_string()})
        }
        _ => json!({"type": "text_delta", "text": block["text"]}),
    }
}

/// Claude Code's file-writing tool: `Write` where offered (it is, whenever
/// the CLI may edit), else the first tool whose name says it writes, else
/// `Write` anyway, so that a CLI without it shows the refusal it makes.
fn write_tool(turn: &Turn) -> String {
    let offered = |name: &str| turn.tools.iter().any(|t| t == name);
    if offered("Write") {
        return "Write".into();
    }
    turn.tools
        .iter()
        .find(|t| t.to_ascii_lowercase().contains("write"))
        .cloned()
        .unwrap_or_else(|| "Write".into())
}

/// `path` made absolute against the working directory that the system
/// prompt names (Claude Code's `Write` refuses relative paths).
fn absolute(turn: &Turn, path: &str) -> String {
    if path.starts_with('/') {
        return path.to_string();
    }
    let cwd = turn.system.lines().find_map(|l| {
        l.trim()
            .trim_start_matches("- ")
            .strip_prefix("Primary working directory:")
            .map(str::trim)
    });
    match cwd {
        Some(dir) if !dir.is_empty() => format!("{}/{path}", dir.trim_end_matches('/')),
        _ => path.to_string(),
    }
}

/// The text of a string or of a list of blocks (their `text` fields).
fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => {
            let mut out = String::new();
            for block in blocks {
                push_text(&mut out, block["text"].as_str().unwrap_or(""));
            }
            out
        }
        _ => String::new(),
    }
}

fn push_text(out: &mut String, text: &str) {
    if text.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(text);
}
