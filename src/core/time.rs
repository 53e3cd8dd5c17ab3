//! Instants as whole Unix seconds, shown to clients as RFC 3339 UTC with a
//! `Z` suffix and second precision (`2026-03-25T14:00:00Z`), as §1 requires.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Seconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// Latest instant the API accepts (9999-12-31T23:59:59Z): RFC 3339 has four
/// year digits, and clamping here keeps every arithmetic result printable.
const MAX_SECONDS: i64 = 253_402_300_799;

/// Seconds added to the system clock: 0 except when tests run the server
/// with `--clock-offset` to let expiry, grace and purge times pass without
/// waiting. A process-wide value rather than a clock passed around, because
/// every "now" in the product (handlers, the store, the sweeper) must move
/// together, and a relaxed atomic load costs nothing on the verify path.
static CLOCK_OFFSET: AtomicI64 = AtomicI64::new(0);

/// Moves this process's idea of "now" `seconds` ahead (tests only).
pub fn set_clock_offset(seconds: i64) {
    CLOCK_OFFSET.store(seconds, Ordering::Relaxed);
}

impl Timestamp {
    pub fn now() -> Self {
        Timestamp::at(SystemTime::now())
    }

    /// `time` as the product sees it: a request's own clock read gives both
    /// its decisions' "now" and the start of its latency.
    pub fn at(time: SystemTime) -> Self {
        let secs = time
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Timestamp(i64::try_from(secs).unwrap_or(MAX_SECONDS))
            .plus(CLOCK_OFFSET.load(Ordering::Relaxed))
    }

    /// `self + seconds`, clamped to the printable range.
    pub fn plus(self, seconds: i64) -> Self {
        Timestamp(self.0.saturating_add(seconds).clamp(0, MAX_SECONDS))
    }

    /// Seconds from `earlier` to `self` (negative when `self` is earlier).
    pub fn seconds_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    pub fn to_rfc3339(self) -> String {
        let bytes = self.rfc3339_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` without allocating: timestamps are in every
    /// response of the verify path. Civil date from days after Howard
    /// Hinnant's `civil_from_days`.
    pub fn rfc3339_bytes(self) -> [u8; 20] {
        let secs = self.0.clamp(0, MAX_SECONDS);
        let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let shifted_month = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
        let month = if shifted_month < 10 {
            shifted_month + 3
        } else {
            shifted_month - 9
        };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        let mut out = *b"0000-00-00T00:00:00Z";
        let mut put = |at: usize, width: usize, mut value: i64| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, rest / 3600);
        put(14, 2, rest % 3600 / 60);
        put(17, 2, rest % 60);
        out
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, for log lines: `since_epoch` with
    /// millisecond precision.
    pub fn rfc3339_millis(since_epoch: std::time::Duration) -> [u8; 24] {
        let secs = i64::try_from(since_epoch.as_secs()).unwrap_or(MAX_SECONDS);
        let whole = Timestamp(secs).rfc3339_bytes();
        let mut out = *b"0000-00-00T00:00:00.000Z";
        out[..19].copy_from_slice(&whole[..19]);
        let mut millis = since_epoch.subsec_millis();
        for at in (20..23).rev() {
            out[at] = b'0' + (millis % 10) as u8;
            millis /= 10;
        }
        out
    }

    /// Parses an RFC 3339 date-time with any offset; fractions of a second
    /// are dropped.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        let secs = parsed.unix_timestamp();
        (0..=MAX_SECONDS).contains(&secs).then_some(Timestamp(secs))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes = self.rfc3339_bytes();
        // The buffer holds ASCII digits and separators only.
        serializer.serialize_str(std::str::from_utf8(&bytes).unwrap_or("1970-01-01T00:00:00Z"))
    }
}

/// In the API document: an RFC 3339 date-time, UTC, second precision.
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some(
                "RFC 3339 in UTC with second precision and a Z suffix, e.g. 2026-03-25T14:00:00Z.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_z_and_whole_seconds() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp(1_774_447_200).to_rfc3339(),
            "2026-03-25T14:00:00Z"
        );
    }

    #[test]
    fn log_timestamps_have_milliseconds() {
        let at = std::time::Duration::from_millis(1_774_447_200_007);
        assert_eq!(&Timestamp::rfc3339_millis(at), b"2026-03-25T14:00:00.007Z");
        let at = std::time::Duration::from_nanos(999_999_999);
        assert_eq!(&Timestamp::rfc3339_millis(at), b"1970-01-01T00:00:00.999Z");
    }

    #[test]
    fn parses_offsets_and_drops_fractions() {
        let t = Timestamp::parse_rfc3339("2026-03-25T16:00:00.75+02:00").unwrap();
        assert_eq!(t, Timestamp(1_774_447_200));
        assert_eq!(Timestamp::parse_rfc3339("2026-03-25"), None);
        assert_eq!(Timestamp::parse_rfc3339("tomorrow"), None);
    }

    #[test]
    fn formatting_agrees_with_the_time_crate() {
        let mut secs = 0i64;
        while secs <= MAX_SECONDS {
            let reference = OffsetDateTime::from_unix_timestamp(secs)
                .unwrap()
                .format(&Rfc3339)
                .unwrap();
            assert_eq!(Timestamp(secs).to_rfc3339(), reference, "{secs}");
            // A stride that is not a whole number of days or years.
            secs += 86_399 * 37 + 12_345;
        }
        for secs in [951_782_400, 951_868_800, 4_107_542_399, MAX_SECONDS] {
            let reference = OffsetDateTime::from_unix_timestamp(secs)
                .unwrap()
                .format(&Rfc3339)
                .unwrap();
            assert_eq!(Timestamp(secs).to_rfc3339(), reference);
        }
    }

    #[test]
    fn arithmetic_is_clamped() {
        assert_eq!(Timestamp(5).plus(i64::MAX), Timestamp(MAX_SECONDS));
        assert_eq!(Timestamp(5).plus(-10), Timestamp(0));
        assert!(
            Timestamp(MAX_SECONDS)
                .to_rfc3339()
                .starts_with("9999-12-31")
        );
    }
}
