//! The shape of a log line:
//!
//! `2026-03-25T14:00:00.007Z  INFO tokenward::http: method=POST path=/api/v1/tokens/verify status=200 latency_us=41`
//!
//! No colours, no span context (tokenward opens no spans), and strings
//! quoted only when they hold a space, a quote, an `=` or a control
//! character, so a line stays one line and every field stays unambiguous.
//! Events from `tracing` are written by [`LineFormat`]; the one line every
//! request leaves is written by [`request_line`] without going through
//! `tracing` at all, from the same pieces.

use std::cell::Cell;
use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::core::time::Timestamp;

/// The target of request lines, as `TOKENWARD_LOG` names them.
pub const REQUEST_TARGET: &str = "tokenward::http";

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
        let metadata = event.metadata();
        write_head(&mut writer, *metadata.level(), metadata.target())?;
        let mut fields = Fields {
            writer: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// The line of one answered request: what [`LineFormat`] writes for
/// `info!(target: REQUEST_TARGET, method, path, status, latency_us)`.
pub fn request_line(
    out: &mut impl Write,
    at: SystemTime,
    method: &str,
    path: &str,
    status: u16,
    latency_us: u64,
) -> fmt::Result {
    write_stamp_at(out, at)?;
    write_level_and_target(out, Level::INFO, REQUEST_TARGET)?;
    out.write_str(" method=")?;
    write_text(out, method)?;
    out.write_str(" path=")?;
    write_text(out, path)?;
    out.write_str(" status=")?;
    write_integer(out, false, status.into())?;
    out.write_str(" latency_us=")?;
    write_integer(out, false, latency_us)?;
    out.write_char('\n')
}

/// `2026-03-25T14:00:00.007Z  INFO target:`
fn write_head(out: &mut impl Write, level: Level, target: &str) -> fmt::Result {
    write_stamp(out)?;
    write_level_and_target(out, level, target)
}

fn write_level_and_target(out: &mut impl Write, level: Level, target: &str) -> fmt::Result {
    out.write_str(padded(level))?;
    out.write_str(target)?;
    out.write_char(':')
}

/// Now, as `2026-03-25T14:00:00.007Z`.
pub(super) fn write_stamp(out: &mut impl Write) -> fmt::Result {
    write_stamp_at(out, SystemTime::now())
}

/// `at`, as `2026-03-25T14:00:00.007Z`.
pub(super) fn write_stamp_at(out: &mut impl Write, at: SystemTime) -> fmt::Result {
    thread_local! {
        // The last stamp this thread wrote: lines come many to a second,
        // and only the milliseconds then change.
        static LAST: Cell<(u64, [u8; 24])> = const { Cell::new((u64::MAX, [0; 24])) };
    }
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (last_second, mut stamp) = LAST.get();
    if since_epoch.as_secs() == last_second {
        let mut millis = since_epoch.subsec_millis();
        for digit in stamp[20..23].iter_mut().rev() {
            *digit = b'0' + (millis % 10) as u8;
            millis /= 10;
        }
    } else {
        stamp = Timestamp::rfc3339_millis(since_epoch);
    }
    LAST.set((since_epoch.as_secs(), stamp));
    // The stamp is ASCII digits and separators only.
    out.write_str(std::str::from_utf8(&stamp).unwrap_or("1970-01-01T00:00:00.000Z"))
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

/// A string value, quoted and escaped only when it needs to be.
fn write_text(out: &mut impl Write, value: &str) -> fmt::Result {
    if needs_quotes(value) {
        write!(out, "{value:?}")
    } else {
        out.write_str(value)
    }
}

/// Digits written directly: the formatting machinery costs more than the
/// number.
pub(super) fn write_integer(out: &mut impl Write, negative: bool, magnitude: u64) -> fmt::Result {
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
    out.write_str(std::str::from_utf8(&digits[at..]).unwrap_or("?"))
}

/// Writes each field as ` name=value`, the message as ` text`.
struct Fields<'w, 'a> {
    writer: &'w mut Writer<'a>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    /// ` name=` (or just ` ` for the message), then `value` writes the rest.
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
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, |w| write_text(w, value));
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

    /// Messages and `%display` fields arrive here already as text to show.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, |w| write!(w, "{value:?}"));
    }
}

fn needs_quotes(value: &str) -> bool {
    // One pass without an early exit, which the compiler turns into vector
    // code: a path is tested 16 or 32 bytes at a time, not byte by byte.
    // Every ASCII space and control character is at or below ' ', or DEL;
    // any byte from DEL up (non-ASCII included) sends the value to the
    // full test.
    let odd_or_wide = value.bytes().fold(false, |seen, b| {
        seen | (b <= b' ') | (b >= 0x7f) | (b == b'"') | (b == b'=')
    });
    if value.is_empty() {
        true
    } else if !odd_or_wide {
        false
    } else if value.is_ascii() {
        true
    } else {
        value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '=')
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

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
    fn a_stamp_within_the_last_lines_second_is_the_full_stamp() {
        let second = UNIX_EPOCH + std::time::Duration::from_secs(1_774_447_199);
        for millis in [0, 7, 999, 1_000, 1_001, 999, 60_123, 5] {
            let at = second + std::time::Duration::from_millis(millis);
            let mut written = String::new();
            write_stamp_at(&mut written, at).unwrap();
            let full = Timestamp::rfc3339_millis(at.duration_since(UNIX_EPOCH).unwrap());
            assert_eq!(written.as_bytes(), full, "{millis}");
        }
    }

    #[test]
    fn a_request_line_is_the_line_of_the_same_event() {
        for case in CASES {
            let from_tracing = logged(|| emit(case));
            let direct = written(request_line, case);
            // The stamps differ by when each was written.
            assert_eq!(direct[24..], from_tracing[24..], "{direct}");
        }
    }

    #[test]
    fn the_ascii_shortcut_quotes_exactly_what_the_full_test_quotes() {
        for byte in 0u8..0x80 {
            let c = char::from(byte);
            let full = c.is_whitespace() || c.is_control() || c == '"' || c == '=';
            assert_eq!(needs_quotes(&format!("a{c}b")), full, "{byte:#x}");
        }
        assert!(needs_quotes("caf\u{e9}\u{2003}"));
        assert!(!needs_quotes("caf\u{e9}"));
        // Long values are tested in blocks: an odd byte anywhere counts.
        for len in 1..80 {
            let plain = "/".repeat(len);
            assert!(!needs_quotes(&plain), "{len}");
            for at in 0..len {
                for odd in [" ", "=", "\"", "\u{7f}", "\u{a0}"] {
                    let value = format!("{}{odd}{}", &plain[..at], &plain[at + 1..]);
                    assert!(needs_quotes(&value), "{value:?}");
                }
                let wide = format!("{}\u{e9}{}", &plain[..at], &plain[at + 1..]);
                assert!(!needs_quotes(&wide), "{wide:?}");
            }
        }
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
