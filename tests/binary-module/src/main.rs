//! A test module compiled to a native binary, as ansible runs binary modules:
//! `binary_sleep ARGS_FILE`, the args file being one JSON object.
//!
//! Arguments: `seconds` (number, default 0) to sleep, `fail` (bool) to fail on purpose,
//! `msg` (string) to echo back. It answers `{"changed": true, "slept": S, "msg": M}`.

use std::time::Duration;

use serde_json::{json, Value};

fn main() {
    let args: Value = std::env::args_os()
        .nth(1)
        .and_then(|path| std::fs::read(path).ok())
        .and_then(|text| serde_json::from_slice(&text).ok())
        .unwrap_or_else(|| {
            answer(json!({"failed": true, "msg": "binary_sleep: no readable JSON args file"}), 1)
        });
    let seconds = args.get("seconds").and_then(Value::as_f64).unwrap_or(0.0);
    let msg = args.get("msg").and_then(Value::as_str).unwrap_or("slept").to_string();
    if !(0.0..=3600.0).contains(&seconds) {
        answer(json!({"failed": true, "msg": format!("seconds must be within 0..3600, got {seconds}")}), 1);
    }
    std::thread::sleep(Duration::from_secs_f64(seconds));
    if args.get("fail").and_then(Value::as_bool).unwrap_or(false) {
        answer(json!({"failed": true, "changed": false, "msg": msg, "slept": seconds}), 1);
    }
    answer(json!({"changed": true, "msg": msg, "slept": seconds, "pid": std::process::id()}), 0)
}

fn answer(result: Value, code: i32) -> ! {
    println!("{result}");
    std::process::exit(code)
}
