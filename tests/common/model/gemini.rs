//! The Gemini API adapter of the scripted model service, as Gemini CLI
//! 0.61.0 speaks it: `POST /v1beta/models/<model>:streamGenerateContent?alt=sse`
//! for the agent's turns and `:generateContent` for its side requests, with
//! `contents[].parts` (`text`, `functionCall`, `functionResponse`),
//! `systemInstruction` and `tools[].functionDeclarations`.
//!
//! Side requests ask for JSON that matches `generationConfig.
//! responseJsonSchema` (the model router's complexity classifier on every
//! prompt; the next-speaker and loop checks where enabled): they get a
//! valid object built from the schema, whatever the script says, so that the
//! CLI goes on with its real turn.

use serde_json::{json, Value};

use super::{Reply, Response, Turn, INPUT_TOKENS, OUTPUT_TOKENS};

/// The CLI's own file-writing tool (`{file_path, content}`).
const WRITE_TOOL: &str = "write_file";

/// The conversation of a request, as the script sees it. `path` names the
/// model (`/v1beta/models/<model>:<method>`).
pub fn turn(path: &str, body: &Value) -> Turn {
    let contents = body["contents"].as_array().cloned().unwrap_or_default();
    let parts = |role: &'static str| {
        contents
            .iter()
            .filter(move |c| c["role"].as_str().unwrap_or("user") == role)
            .flat_map(|c| c["parts"].as_array().cloned().unwrap_or_default())
    };
    let user_text = parts("user")
        .filter(|p| !p["thought"].as_bool().unwrap_or(false))
        .filter_map(|p| p["text"].as_str().map(str::to_string))
        .collect::<Vec<_>>()
        .join("\n");
    let results: Vec<Value> = parts("user")
        .filter_map(|p| p.get("functionResponse").cloned())
        .collect();
    let tools = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| {
            t["functionDeclarations"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|f| f["name"].as_str().map(str::to_string))
        .collect();
    Turn {
        model: model_of(path).to_string(),
        system: texts(&body["systemInstruction"]),
        user_text,
        tool_results: results.len(),
        last_tool_output: results.last().map(tool_output),
        tools,
    }
}

/// The reply rendered as this API's response: one JSON object, or for
/// `:streamGenerateContent?alt=sse` the same as server-sent events (the
/// content, then the finish reason with the usage).
pub fn respond(path: &str, body: &Value, turn: &Turn, reply: &Reply) -> Response {
    let part = match json_schema(body) {
        Some(schema) => json!({"text": example(schema).to_string()}),
        None => match reply {
            Reply::Text(text) => json!({"text": text}),
            Reply::Write { path, content } => json!({"functionCall": {
                "name": write_tool(&turn.tools),
                "args": {"file_path": path, "content": content},
            }}),
        },
    };
    let model = model_of(path);
    let usage = json!({
        "promptTokenCount": INPUT_TOKENS,
        "candidatesTokenCount": OUTPUT_TOKENS,
        "totalTokenCount": INPUT_TOKENS + OUTPUT_TOKENS,
    });
    let content = json!({"role": "model", "parts": [part]});
    if !path.contains(":streamGenerateContent") {
        return Response::json(&json!({
            "candidates": [{"content": content, "finishReason": "STOP", "index": 0}],
            "usageMetadata": usage,
            "modelVersion": model,
        }));
    }
    Response::sse(&[
        (
            "",
            json!({"candidates": [{"content": content, "index": 0}], "modelVersion": model}),
        ),
        (
            "",
            json!({
                "candidates": [{"content": {"role": "model", "parts": [{"text": ""}]},
                                "finishReason": "STOP", "index": 0}],
                "usageMetadata": usage,
                "modelVersion": model,
            }),
        ),
    ])
}

/// `<model>` of `/v1beta/models/<model>:<method>?<query>`.
fn model_of(path: &str) -> &str {
    let bare = path.split('?').next().unwrap_or(path);
    let last = bare.rsplit('/').next().unwrap_or(bare);
    last.split(':').next().unwrap_or(last)
}

/// All `text` parts of a `Content`, joined by newlines.
fn texts(content: &Value) -> String {
    content["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a tool returned: `response.output` (or `error`) as Gemini CLI puts
/// it, else the whole response as JSON.
fn tool_output(result: &Value) -> String {
    let response = &result["response"];
    ["output", "error"]
        .iter()
        .find_map(|k| response[*k].as_str().map(str::to_string))
        .unwrap_or_else(|| response.to_string())
}

/// The write tool among those offered; where none is (a read-only mode),
/// still `write_file`, as a model that ignores its tool list would call it,
/// so that a test sees the CLI refuse it.
fn write_tool(tools: &[String]) -> String {
    tools
        .iter()
        .find(|t| *t == WRITE_TOOL)
        .or_else(|| tools.iter().find(|t| t.contains("write")))
        .cloned()
        .unwrap_or_else(|| WRITE_TOOL.to_string())
}

/// The JSON schema a request wants its answer in, if it wants JSON.
fn json_schema(body: &Value) -> Option<&Value> {
    let config = &body["generationConfig"];
    ["responseJsonSchema", "responseSchema"]
        .iter()
        .map(|k| &config[*k])
        .find(|s| s.is_object())
        .or_else(|| (config["responseMimeType"] == "application/json").then_some(&Value::Null))
}

/// A value that satisfies `schema` (JSON Schema or the API's OpenAPI
/// subset, types in either case): every property set, the first of an
/// `enum`, the lowest number allowed.
fn example(schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    let kind = schema["type"]
        .as_str()
        .unwrap_or("object")
        .to_ascii_lowercase();
    match kind.as_str() {
        "string" => json!("scripted"),
        "integer" | "number" => schema["minimum"].as_f64().map_or(json!(1), |m| {
            if kind == "integer" {
                json!(m.ceil() as i64)
            } else {
                json!(m)
            }
        }),
        "boolean" => json!(false),
        "array" => json!([]),
        "null" => Value::Null,
        _ => Value::Object(
            schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, s)| (k.clone(), example(s)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_router_schema_gets_a_valid_object() {
        let schema = json!({"type": "OBJECT", "properties": {
            "complexity_reasoning": {"type": "STRING"},
            "complexity_score": {"type": "INTEGER"}},
            "required": ["complexity_reasoning", "complexity_score"]});
        assert_eq!(
            example(&schema),
            json!({"complexity_reasoning": "scripted", "complexity_score": 1})
        );
        let next = json!({"type": "object", "properties": {
            "next_speaker": {"type": "string", "enum": ["user", "model"]}}});
        assert_eq!(example(&next), json!({"next_speaker": "user"}));
    }
}
