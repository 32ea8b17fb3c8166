//! A module's answer: one JSON object on stdout.

use std::io::Write;

use serde_json::{json, Value};

/// `{"failed": true, "msg": msg}`, the shape of every failure ansible understands.
pub fn failure(msg: impl Into<String>) -> Value {
    json!({"failed": true, "msg": msg.into()})
}

/// Prints `value` as the module's answer and exits with `code`.
pub fn exit(value: &Value, code: i32) -> ! {
    let mut out = std::io::stdout().lock();
    // Nothing useful can be done when stdout is gone; the exit code still tells.
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
    std::process::exit(code)
}
