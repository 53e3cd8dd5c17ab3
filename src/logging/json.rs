//! The JSON shape of a log line (`--log-format json`): one object per line
//! with the fields of the text line, for log collectors that parse JSON.
//!
//! `{"ts":"2026-03-25T14:00:00.007Z","level":"INFO","target":"tokenward::http","message":"","method":"POST","path":"/api/v1/tokens/verify","status":200,"latency_us":41}`
//!
//! `ts`, `level`, `target` and `message` are on every line (`message` is
//! empty when the event has none, as request lines), then the event's own
//! fields: numbers and booleans as JSON numbers and booleans, everything
//! else as strings. What goes in is exactly what the text line shows, so
//! the same rules keep secrets out.

use std::fmt::{self, Write};
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::line::{REQUEST_TARGET, write_integer, write_stamp_at};

/// The `FormatEvent` to give the fmt subscriber for JSON lines.
pub struct JsonFormat;

impl<S, N> FormatEvent<S, N> for JsonFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        write_head(&mut writer, *metadata.level(), metadata.target())?;
        let mut fields = Fields {
            out: &mut writer,
            message: false,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        if !fields.message {
            writer.write_str(r#","message":"""#)?;
        }
        writer.write_str("}\n")
    }
}

/// The JSON line of one answered request: what [`JsonFormat`] writes for
/// `info!(target: REQUEST_TARGET, method, path, status, latency_us)`.
pub fn request_line(
    out: &mut impl Write,
    at: SystemTime,
    method: &str,
    path: &str,
    status: u16,
    latency_us: u64,
) -> fmt::Result {
    write_head_at(out, at, Level::INFO, REQUEST_TARGET)?;
    out.write_str(r#","method":"#)?;
    write_string(out, method)?;
    out.write_str(r#","path":"#)?;
    write_string(out, path)?;
    out.write_str(r#","status":"#)?;
    write_integer(out, false, status.into())?;
    out.write_str(r#","latency_us":"#)?;
    write_integer(out, false, latency_us)?;
    out.write_str(r#","message":""}"#)?;
    out.write_char('\n')
}

/// `{"ts":"…","level":"INFO","target":"…"`, without the closing brace.
fn write_head(out: &mut impl Write, level: Level, target: &str) -> fmt::Result {
    write_head_at(out, SystemTime::now(), level, target)
}

fn write_head_at(out: &mut impl Write, at: SystemTime, level: Level, target: &str) -> fmt::Result {
    out.write_str(r#"{"ts":""#)?;
    write_stamp_at(out, at)?;
    out.write_str(r#"","level":""#)?;
    out.write_str(level.as_str())?;
    out.write_str(r#"","target":"#)?;
    write_string(out, target)
}

/// A JSON string: quotes, backslashes and control characters escaped.
fn write_string(out: &mut impl Write, value: &str) -> fmt::Result {
    out.write_char('"')?;
    let mut plain = 0;
    for (at, c) in value.char_indices() {
        let escaped = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if c < ' ' => "",
            _ => continue,
        };
        out.write_str(&value[plain..at])?;
        if escaped.is_empty() {
            write!(out, "\\u{:04x}", u32::from(c))?;
        } else {
            out.write_str(escaped)?;
        }
        plain = at + c.len_utf8();
    }
    out.write_str(&value[plain..])?;
    out.write_char('"')
}

/// Writes each field as `,"name":value`.
struct Fields<'w, 'a> {
    out: &'w mut Writer<'a>,
    /// Whether the event had a message.
    message: bool,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn write(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        if name == "message" {
            self.message = true;
        }
        self.result = (|| {
            self.out.write_char(',')?;
            // A field named like a line's own key keeps both readable.
            if matches!(name, "ts" | "level" | "target") {
                write_string(self.out, &format!("field_{name}"))?;
            } else {
                write_string(self.out, name)?;
            }
            self.out.write_char(':')?;
            value(self.out)
        })();
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, |w| write_string(w, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.write(field, |w| write_integer(w, false, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.write(field, |w| write_integer(w, value < 0, value.unsigned_abs()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.write(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.write(field, |w| write!(w, "{value}"));
        } else {
            self.write(field, |w| write_string(w, &value.to_string()));
        }
    }

    /// Messages and `%display` fields arrive here already as text to show.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, |w| write_string(w, &format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use serde_json::{Value, json};
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;
    use crate::logging::request_cases::{CASES, emit, written};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    fn logged(emit: impl FnOnce()) -> String {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonFormat)
            .with_writer(captured.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    fn without_ts(line: &str) -> Value {
        let mut value: Value = serde_json::from_str(line).unwrap();
        let ts = value["ts"].take();
        assert_eq!(ts.as_str().map(str::len), Some(24), "{line}");
        value
    }

    #[test]
    fn an_event_is_one_object_with_typed_fields() {
        let line = logged(|| {
            tracing::warn!(
                path = "/a b\n\"x\"=y\u{1}",
                count = -3i64,
                ok = true,
                ratio = 0.5,
                target = "mine",
                "flush {} failed",
                2
            );
        });
        assert!(line.ends_with("}\n") && line.lines().count() == 1, "{line}");
        assert_eq!(
            without_ts(&line),
            json!({
                "ts": null,
                "level": "WARN",
                "target": "tokenward::logging::json::tests",
                "message": "flush 2 failed",
                "path": "/a b\n\"x\"=y\u{1}",
                "count": -3,
                "ok": true,
                "ratio": 0.5,
                "field_target": "mine",
            })
        );
    }

    #[test]
    fn a_request_line_is_the_line_of_the_same_event() {
        for case in CASES {
            let from_tracing = logged(|| emit(case));
            let direct = written(request_line, case);
            assert_eq!(without_ts(&direct), without_ts(&from_tracing), "{direct}");
            assert_eq!(without_ts(&direct)["path"], case.1);
            assert_eq!(without_ts(&direct)["message"], "");
        }
    }
}
