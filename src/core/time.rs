//! Instants as whole Unix seconds, shown to clients as RFC 3339 UTC with a
//! `Z` suffix and second precision (`2026-03-25T14:00:00Z`), as §1 requires.

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

impl Timestamp {
    pub fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Timestamp(i64::try_from(secs).unwrap_or(MAX_SECONDS))
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
        OffsetDateTime::from_unix_timestamp(self.0.clamp(0, MAX_SECONDS))
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
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
        serializer.serialize_str(&self.to_rfc3339())
    }
}

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
    fn parses_offsets_and_drops_fractions() {
        let t = Timestamp::parse_rfc3339("2026-03-25T16:00:00.75+02:00").unwrap();
        assert_eq!(t, Timestamp(1_774_447_200));
        assert_eq!(Timestamp::parse_rfc3339("2026-03-25"), None);
        assert_eq!(Timestamp::parse_rfc3339("tomorrow"), None);
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
