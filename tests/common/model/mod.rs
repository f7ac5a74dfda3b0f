//! A scripted model service on 127.0.0.1 for the real agent CLIs: it speaks
//! enough of the Anthropic Messages API, the OpenAI Chat Completions and
//! Responses APIs and the Gemini API (streaming included) for each CLI to
//! make real tool calls. What the "model" answers is decided by a `Script`:
//! a pure function of the conversation so far (`Turn`) that returns a
//! `Reply`, which each API's adapter renders in its own wire format and with
//! the tool names the CLI offered.
//!
//! The default script, `directives`, obeys lines in the prompt text:
//! - `MODEL-WRITE <path> <content>`: an implementer or integrator writes
//!   `<path>` (content: the rest of the line, `\n` for a newline), in order,
//!   one tool call per turn, then finishes with a short message;
//! - `MODEL-APPROVE-IF <path>`: a reviewer approves if the prompt (its diff)
//!   names `<path>`, and otherwise asks for it, with a `MODEL-WRITE <path>
//!   fixed` line that the next implementer prompt carries as feedback;
//!   a reviewer without this line approves;
//! - `MODEL-PLAN <key>,<key>,...`: a planner answers with a fenced YAML plan
//!   of one task per key, each writing `<key>.txt`.

#![allow(dead_code)]

mod anthropic;
mod gemini;
mod openai_chat;
mod openai_responses;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// Which wire protocol a request spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Anthropic,
    OpenAiChat,
    OpenAiResponses,
    Gemini,
}

/// The conversation as the script sees it, whatever the API.
#[derive(Debug, Clone, Default)]
pub struct Turn {
    /// The model the CLI asked for.
    pub model: String,
    /// The system prompt (the CLI's own instructions), if any.
    pub system: String,
    /// All text of the user's messages, oldest first (tool results excluded).
    pub user_text: String,
    /// How many tool results the conversation holds so far.
    pub tool_results: usize,
    /// The text of the last tool result, if any.
    pub last_tool_output: Option<String>,
    /// The names of the tools the CLI offered.
    pub tools: Vec<String>,
}

/// What the model does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Call the CLI's file-writing tool (each adapter knows its name and
    /// arguments; for aider, a whole-file edit block in the text).
    Write { path: String, content: String },
    /// A final message.
    Text(String),
}

/// The model's mind.
pub type Script = Arc<dyn Fn(&Turn) -> Reply + Send + Sync>;

/// One request the service saw, for assertions and for debugging.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub body: String,
    pub status: u16,
}

/// An HTTP answer.
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(value: &Value) -> Response {
        Response {
            status: 200,
            content_type: "application/json",
            body: value.to_string().into_bytes(),
        }
    }

    /// A server-sent event stream: `(event name or "", data)` pairs.
    pub fn sse(events: &[(&str, Value)]) -> Response {
        let mut body = String::new();
        for (name, data) in events {
            if !name.is_empty() {
                body.push_str(&format!("event: {name}\n"));
            }
            body.push_str(&format!("data: {data}\n\n"));
        }
        Response {
            status: 200,
            content_type: "text/event-stream",
            body: body.into_bytes(),
        }
    }

    /// SSE with raw data lines (e.g. OpenAI's closing `data: [DONE]`).
    pub fn sse_raw(body: String) -> Response {
        Response {
            status: 200,
            content_type: "text/event-stream",
            body: body.into_bytes(),
        }
    }

    pub fn not_found(what: &str) -> Response {
        Response {
            status: 404,
            content_type: "application/json",
            body: serde_json::json!({"error": {"message": format!("no route for {what}")}})
                .to_string()
                .into_bytes(),
        }
    }
}

/// A running service; it stops when dropped.
pub struct ModelService {
    port: u16,
    log: Arc<Mutex<Vec<Logged>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl ModelService {
    /// Start on an ephemeral port of 127.0.0.1 with `script`.
    pub fn start(script: Script) -> ModelService {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (log2, stop2) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (script, log) = (script.clone(), log2.clone());
                std::thread::spawn(move || serve(stream, &script, &log));
            }
        });
        ModelService { port, log, stop }
    }

    /// The default script: `directives`.
    pub fn scripted() -> ModelService {
        ModelService::start(Arc::new(directives))
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }

    /// The requests so far that the service could not answer (404s), as
    /// `METHOD path` lines: a test shows them when a CLI went astray.
    pub fn unanswered(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.status == 404)
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

impl Drop for ModelService {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Serve requests on one connection until the client closes it.
fn serve(stream: TcpStream, script: &Script, log: &Mutex<Vec<Logged>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut writer = stream;
    loop {
        let Some((method, path, headers, body)) = read_request(&mut reader) else {
            return;
        };
        let text = String::from_utf8_lossy(&body).into_owned();
        let response = answer(&method, &path, &headers, &text, script);
        log.lock().unwrap().push(Logged {
            method: method.clone(),
            path: path.clone(),
            body: text,
            status: response.status,
        });
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\n\r\n",
            response.status,
            if response.status == 200 { "OK" } else { "Error" },
            response.content_type,
            response.body.len()
        );
        if writer.write_all(head.as_bytes()).is_err()
            || writer.write_all(&response.body).is_err()
            || writer.flush().is_err()
        {
            return;
        }
    }
}

type Headers = Vec<(String, String)>;

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, String, Headers, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(length, 0);
        reader.read_exact(&mut body).ok()?;
    }
    if header("content-encoding").is_some_and(|v| v.contains("gzip") || v.contains("zstd")) {
        // Nothing here decompresses: say so instead of misreading the body.
        body = b"{}".to_vec();
    }
    Some((method, path, headers, body))
}

/// Route one request to its API's adapter.
fn answer(method: &str, path: &str, _headers: &Headers, body: &str, script: &Script) -> Response {
    let bare = path.split('?').next().unwrap_or(path);
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let api = if bare.ends_with("/messages") && method == "POST" {
        Api::Anthropic
    } else if bare.ends_with("/chat/completions") {
        Api::OpenAiChat
    } else if bare.ends_with("/responses") {
        Api::OpenAiResponses
    } else if bare.contains(":generateContent") || bare.contains(":streamGenerateContent") {
        Api::Gemini
    } else {
        return other(method, bare);
    };
    let turn = match api {
        Api::Anthropic => anthropic::turn(&json),
        Api::OpenAiChat => openai_chat::turn(&json),
        Api::OpenAiResponses => openai_responses::turn(&json),
        Api::Gemini => gemini::turn(path, &json),
    };
    let reply = script(&turn);
    match api {
        Api::Anthropic => anthropic::respond(&json, &turn, &reply),
        Api::OpenAiChat => openai_chat::respond(&json, &turn, &reply),
        Api::OpenAiResponses => openai_responses::respond(&json, &turn, &reply),
        Api::Gemini => gemini::respond(path, &json, &turn, &reply),
    }
}

/// Requests that are not a model turn: model lists, token counts, telemetry.
fn other(method: &str, path: &str) -> Response {
    match (method, path) {
        (_, p) if p.ends_with("/models") => Response::json(&serde_json::json!({
            "object": "list",
            "data": [{"id": "scripted", "object": "model", "owned_by": "tests"}],
            "models": [{"name": "models/scripted"}]
        })),
        (_, p) if p.ends_with(":countTokens") => {
            Response::json(&serde_json::json!({"totalTokens": 100}))
        }
        (_, p) if p.ends_with("/messages/count_tokens") => {
            Response::json(&serde_json::json!({"input_tokens": 100}))
        }
        // Claude Code's connection warm-up (`HEAD /`): an empty 200, as a
        // HEAD answer has no body.
        ("HEAD", _) => Response {
            status: 200,
            content_type: "text/plain",
            body: Vec::new(),
        },
        _ => Response::not_found(&format!("{method} {path}")),
    }
}

/// Token counts every adapter reports, so that usage can be checked.
pub const INPUT_TOKENS: u64 = 120;
pub const OUTPUT_TOKENS: u64 = 30;

/// Which of git-agent's roles a prompt is for, from its built-in wording.
pub fn role_of(text: &str) -> &'static str {
    if text.contains("You are the reviewer") {
        "reviewer"
    } else if text.contains("You are the planner") {
        "planner"
    } else if text.contains("# Resolve a merge conflict") {
        "integrator"
    } else {
        "implementer"
    }
}

/// The default script (see the module doc).
pub fn directives(turn: &Turn) -> Reply {
    let text = &turn.user_text;
    match role_of(text) {
        "reviewer" => review(text),
        "planner" => plan(text),
        _ => {
            let writes = writes(text);
            match writes.get(turn.tool_results) {
                Some((path, content)) => Reply::Write {
                    path: path.clone(),
                    content: content.clone(),
                },
                None => Reply::Text(format!("Done: wrote {} file(s).", writes.len())),
            }
        }
    }
}

/// The `MODEL-WRITE` lines of `text`, deduplicated by path (the last wins),
/// in order of first appearance.
pub fn writes(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim().split_once("MODEL-WRITE ").map(|(_, r)| r) else {
            continue;
        };
        let Some((path, content)) = rest.trim().split_once(' ') else {
            continue;
        };
        let content = format!("{}\n", content.replace("\\n", "\n"));
        match out.iter_mut().find(|(p, _)| p == path) {
            Some(entry) => entry.1 = content,
            None => out.push((path.to_string(), content)),
        }
    }
    out
}

fn review(text: &str) -> Reply {
    let wanted = text.lines().find_map(|l| {
        l.trim()
            .split_once("MODEL-APPROVE-IF ")
            .map(|(_, p)| p.trim().to_string())
    });
    match wanted {
        Some(path) if !diff_names(text, &path) => Reply::Text(format!(
            "- {path} is missing.\nMODEL-WRITE {path} fixed\nVERDICT: CHANGES"
        )),
        _ => Reply::Text("The change does what the task asks.\nVERDICT: APPROVE".into()),
    }
}

/// Whether the diff in a review prompt adds `path` (a `+++ b/<path>` line).
fn diff_names(text: &str, path: &str) -> bool {
    text.lines().any(|l| l.trim() == format!("+++ b/{path}"))
}

fn plan(text: &str) -> Reply {
    let keys = text
        .lines()
        .find_map(|l| {
            l.split_once("MODEL-PLAN ")
                .map(|(_, k)| k.trim().to_string())
        })
        .unwrap_or_else(|| "one".into());
    let mut yaml = String::from("```yaml\ntasks:\n");
    for key in keys.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        yaml.push_str(&format!(
            "  - key: {key}\n    title: Write {key}.txt\n    spec: |\n      MODEL-WRITE {key}.txt {key}\n"
        ));
    }
    yaml.push_str("```\n");
    Reply::Text(format!("Here is the plan.\n\n{yaml}"))
}
