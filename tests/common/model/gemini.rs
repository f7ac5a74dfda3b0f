//! The gemini adapter of the scripted model service.

use serde_json::Value;

use super::{Reply, Response, Turn};

/// The conversation of a request, as the script sees it.
pub fn turn(_body: &Value) -> Turn {
    Turn::default()
}

/// The reply rendered as this API's response (streamed when asked).
pub fn respond(_path: &str, _body: &Value, _turn: &Turn, _reply: &Reply) -> Response {
    Response::not_found("gemini: not written yet")
}
