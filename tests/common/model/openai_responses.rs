//! The OpenAI Responses API (`POST /v1/responses`) of the scripted model
//! service, as Codex CLI 0.171.0 speaks it to a custom `model_providers`
//! entry: `input` is a list of items (`message` with role `developer` or
//! `user` and `input_text` parts; the model's own `message`,
//! `function_call` and `custom_tool_call` items; and their
//! `function_call_output` / `custom_tool_call_output` results), `tools`
//! holds `function`, `custom` (freeform) and `namespace` tools, and
//! `stream: true` is answered with `response.created`,
//! `response.output_item.added`, `response.output_text.delta`,
//! `response.output_item.done` and `response.completed` (with `usage`).
//!
//! `Reply::Write` becomes an `apply_patch` of one `*** Add File:` hunk (an
//! Add File replaces a file that exists), through whichever tool the request
//! offered: the freeform `custom` `apply_patch` (models in Codex's catalog,
//! e.g. `gpt-5.5`); a `function` `apply_patch` (`{"input": patch}`);
//! code mode's JavaScript `exec` tool (`await tools.apply_patch(patch)`:
//! Codex's default model, `gpt-6.2-sol`, is offered only `exec` and a few
//! others, in an `additional_tools` input item instead of `tools`); or else
//! the shell tool (`exec_command {"cmd": "apply_patch <<'PATCH' … PATCH"}`,
//! for a model Codex has no metadata for), which Codex intercepts and
//! applies itself instead of running a program.

use serde_json::{json, Value};

use super::{Reply, Response, Turn, INPUT_TOKENS, OUTPUT_TOKENS};

/// The conversation of a request, as the script sees it.
pub fn turn(body: &Value) -> Turn {
    let mut turn = Turn {
        model: body["model"].as_str().unwrap_or_default().to_string(),
        system: body["instructions"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        tools: tools(body).map(|(_, name)| name.to_string()).collect(),
        ..Turn::default()
    };
    if let Some(text) = body["input"].as_str() {
        turn.user_text = text.to_string();
    }
    for item in body["input"].as_array().into_iter().flatten() {
        match item["type"].as_str() {
            Some("message") | None if item["role"] == "user" => {
                push_text(&mut turn.user_text, &text_of(&item["content"]))
            }
            Some("message") | None if item["role"] == "developer" || item["role"] == "system" => {
                push_text(&mut turn.system, &text_of(&item["content"]))
            }
            Some("function_call_output") | Some("custom_tool_call_output") => {
                turn.tool_results += 1;
                turn.last_tool_output = Some(text_of(&item["output"]));
            }
            _ => {}
        }
    }
    turn
}

/// The reply rendered as a Responses API response (streamed when asked).
pub fn respond(body: &Value, turn: &Turn, reply: &Reply) -> Response {
    let n = turn.tool_results;
    let item = match reply {
        Reply::Text(text) => json!({
            "type": "message", "id": format!("msg_scripted_{n}"), "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }),
        Reply::Write { path, content } => write_call(body, n, &patch(path, content)),
    };
    let id = format!("resp_scripted_{n}");
    let usage = json!({
        "input_tokens": INPUT_TOKENS,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": OUTPUT_TOKENS,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
    });
    let model = body["model"].as_str().unwrap_or("scripted");
    let response = |status: &str, output: Value, usage: Value| {
        json!({
            "id": id, "object": "response", "created_at": 0, "status": status,
            "model": model, "output": output, "usage": usage,
        })
    };
    if body["stream"] != true {
        return Response::json(&response("completed", json!([item]), usage));
    }
    let mut events = vec![
        (
            "response.created",
            json!({"type": "response.created", "response": response("in_progress", json!([]), Value::Null)}),
        ),
        (
            "response.output_item.added",
            json!({"type": "response.output_item.added", "output_index": 0, "item": item}),
        ),
    ];
    if let Reply::Text(text) = reply {
        events.push((
            "response.output_text.delta",
            json!({
                "type": "response.output_text.delta", "item_id": item["id"],
                "output_index": 0, "content_index": 0, "delta": text,
            }),
        ));
    }
    events.push((
        "response.output_item.done",
        json!({"type": "response.output_item.done", "output_index": 0, "item": item}),
    ));
    events.push((
        "response.completed",
        json!({"type": "response.completed", "response": response("completed", json!([item]), usage)}),
    ));
    Response::sse(&events)
}

/// `(type, name)` of every tool the request offered: in `tools`, and in
/// `additional_tools` input items (where Codex's code mode puts them), a
/// namespace's own tools included; a tool without a name (`web_search`)
/// goes by its type.
fn tools(body: &Value) -> impl Iterator<Item = (&str, &str)> {
    let extra = body["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["type"] == "additional_tools")
        .flat_map(|i| i["tools"].as_array().into_iter().flatten());
    let top = body["tools"].as_array().into_iter().flatten().chain(extra);
    let nested = top
        .clone()
        .flat_map(|t| t["tools"].as_array().into_iter().flatten());
    top.chain(nested).filter_map(|t| {
        let kind = t["type"].as_str()?;
        Some((kind, t["name"].as_str().unwrap_or(kind)))
    })
}

/// A call that writes the file by `patch`, through the best tool offered.
fn write_call(body: &Value, n: usize, patch: &str) -> Value {
    let call_id = format!("call_scripted_{n}");
    let offered = |kind: &str, name: &str| tools(body).any(|t| t == (kind, name));
    let function = |name: &str, arguments: Value| {
        json!({
            "type": "function_call", "id": format!("fc_scripted_{n}"), "status": "completed",
            "call_id": call_id, "name": name, "arguments": arguments.to_string(),
        })
    };
    if offered("custom", "apply_patch") {
        json!({
            "type": "custom_tool_call", "id": format!("ctc_scripted_{n}"), "status": "completed",
            "call_id": call_id, "name": "apply_patch", "input": patch,
        })
    } else if offered("function", "apply_patch") {
        function("apply_patch", json!({"input": patch}))
    } else if offered("custom", "exec") {
        let script = format!("text(await tools.apply_patch({}));", Value::from(patch));
        json!({
            "type": "custom_tool_call", "id": format!("ctc_scripted_{n}"), "status": "completed",
            "call_id": call_id, "name": "exec", "input": script,
        })
    } else if offered("function", "shell") {
        function("shell", json!({"command": ["apply_patch", patch]}))
    } else {
        function(
            "exec_command",
            json!({"cmd": format!("apply_patch <<'PATCH'\n{patch}PATCH\n")}),
        )
    }
}

/// An apply_patch body that creates (or replaces) `path` with `content`.
fn patch(path: &str, content: &str) -> String {
    let mut patch = format!("*** Begin Patch\n*** Add File: {path}\n");
    for line in content.strip_suffix('\n').unwrap_or(content).split('\n') {
        patch.push_str(&format!("+{line}\n"));
    }
    patch.push_str("*** End Patch\n");
    patch
}

/// The text of a message's content or a tool's output: a string, or the
/// `text` of each part of a list.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn push_text(all: &mut String, text: &str) {
    if !all.is_empty() {
        all.push('\n');
    }
    all.push_str(text);
}
