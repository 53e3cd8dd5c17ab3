//! The shape of a log line:
//!
//! `2026-03-25T14:00:00.007Z  INFO tokenward::http: method=POST path=/api/v1/tokens/verify status=200 latency_us=41`
//!
//! One line per request makes this the one formatting cost every request
//! pays, so it is written straight into the line buffer: no colours, no span
//! context (tokenward opens no spans), and strings quoted only when they
//! hold a space, a quote, an `=` or a control character, so a line stays
//! one line and every field stays unambiguous.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::core::time::Timestamp;

/// The `FormatEvent` to give the fmt subscriber.
pub struct LineFormat;

impl<S, N> FormatEvent<S, N> for LineFormat
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
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let stamp = Timestamp::rfc3339_millis(since_epoch);
        // The stamp is ASCII digits and separators only.
        writer.write_str(std::str::from_utf8(&stamp).unwrap_or("1970-01-01T00:00:00.000Z"))?;
        let metadata = event.metadata();
        writer.write_str(padded(*metadata.level()))?;
        writer.write_str(metadata.target())?;
        writer.write_char(':')?;
        let mut fields = Fields {
            writer: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

fn padded(level: Level) -> &'static str {
    match level {
        Level::ERROR => " ERROR ",
        Level::WARN => "  WARN ",
        Level::INFO => "  INFO ",
        Level::DEBUG => " DEBUG ",
        Level::TRACE => " TRACE ",
    }
}

/// Writes each field as ` name=value`, the message as ` text`.
struct Fields<'w, 'a> {
    writer: &'w mut Writer<'a>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    /// ` name=` (or just ` ` for the message), then `value` writes the rest.
    /// Names and plain values go in with `write_str`: the formatting
    /// machinery costs more than the line itself.
    fn write(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            self.writer.write_char(' ')?;
            if field.name() != "message" {
                self.writer.write_str(field.name())?;
                self.writer.write_char('=')?;
            }
            value(self.writer)
        })();
    }

    fn integer(&mut self, field: &Field, negative: bool, magnitude: u64) {
        self.write(field, |w| {
            let mut digits = [0u8; 21];
            let mut at = digits.len();
            let mut rest = magnitude;
            loop {
                at -= 1;
                digits[at] = b'0' + (rest % 10) as u8;
                rest /= 10;
                if rest == 0 {
                    break;
                }
            }
            if negative {
                at -= 1;
                digits[at] = b'-';
            }
            // ASCII digits and a sign only.
            w.write_str(std::str::from_utf8(&digits[at..]).unwrap_or("?"))
        });
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if needs_quotes(value) {
            self.write(field, |w| write!(w, "{value:?}"));
        } else {
            self.write(field, |w| w.write_str(value));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.integer(field, false, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.integer(field, value < 0, value.unsigned_abs());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.write(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    /// Messages and `%display` fields arrive here already as text to show.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, |w| write!(w, "{value:?}"));
    }
}

fn needs_quotes(value: &str) -> bool {
    value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '=')
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

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
            .event_format(LineFormat)
            .with_writer(captured.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_request_line_reads_as_name_value_pairs() {
        let line = logged(|| {
            tracing::info!(
                target: "tokenward::http",
                method = %"POST",
                path = "/api/v1/tokens/verify",
                status = 200u16,
                latency_us = 41u64,
            );
        });
        let (stamp, rest) = line.split_at(24);
        assert!(Timestamp::parse_rfc3339(stamp).is_some(), "{line}");
        assert_eq!(
            rest,
            "  INFO tokenward::http: method=POST path=/api/v1/tokens/verify status=200 latency_us=41\n"
        );
    }

    #[test]
    fn messages_come_first_and_odd_strings_are_quoted() {
        let line = logged(|| {
            tracing::warn!(
                path = "/a b\n\"x\"=y",
                empty = "",
                count = -3i64,
                "flush {} failed",
                2
            );
        });
        assert!(
            line.ends_with(
                "  WARN tokenward::logging::line::tests: flush 2 failed \
                 path=\"/a b\\n\\\"x\\\"=y\" empty=\"\" count=-3\n"
            ),
            "{line}"
        );
        assert_eq!(line.lines().count(), 1);
    }
}
