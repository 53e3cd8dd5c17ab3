//! When a token expires: the default, the maximum, "never", explicit
//! `expires_in` / `expires_at`, and the lifetimes of reset and domain tokens,
//! all from the live instance settings.

use super::settings::Settings;
use super::time::Timestamp;

/// What a create request asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpiryRequest {
    pub expires_in: Option<i64>,
    pub expires_at: Option<Timestamp>,
    pub never_expires: bool,
}

/// The latest expiry the creator may hand out: a session is unbounded, a
/// token may not create one that outlives itself (`None` = never expires).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ceiling {
    Unbounded,
    Creator(Option<Timestamp>),
}

impl Ceiling {
    fn cap(self, expires_at: Option<Timestamp>) -> Option<Timestamp> {
        match (self, expires_at) {
            (Ceiling::Creator(Some(limit)), Some(at)) => Some(at.min(limit)),
            (Ceiling::Creator(Some(limit)), None) => Some(limit),
            _ => expires_at,
        }
    }

    fn allows(self, expires_at: Option<Timestamp>) -> bool {
        self.cap(expires_at) == expires_at
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryError {
    /// The named field conflicts with another one; the text says how.
    Conflict(&'static str, &'static str),
    /// The named field is out of range; the text says how.
    Invalid(&'static str, &'static str),
    /// The named field asks for more than the instance allows.
    TooLong {
        field: &'static str,
        max_ttl_seconds: i64,
    },
    NoExpiryNotAllowed,
    /// Later than the creating token's own expiry (§9).
    BeyondCreator,
}

/// The expiry of a new token, or why the request cannot have it.
pub fn resolve(
    request: ExpiryRequest,
    settings: &Settings,
    now: Timestamp,
    ceiling: Ceiling,
) -> Result<Option<Timestamp>, ExpiryError> {
    let ExpiryRequest {
        expires_in,
        expires_at,
        never_expires,
    } = request;
    if expires_in.is_some() && expires_at.is_some() {
        return Err(ExpiryError::Conflict(
            "expires_at",
            "give either expires_in or expires_at, not both",
        ));
    }
    if never_expires && (expires_in.is_some() || expires_at.is_some()) {
        return Err(ExpiryError::Conflict(
            "never_expires",
            "cannot be combined with expires_in or expires_at",
        ));
    }
    if never_expires {
        if !settings.allow_no_expiry {
            return Err(ExpiryError::NoExpiryNotAllowed);
        }
        return if ceiling.allows(None) {
            Ok(None)
        } else {
            Err(ExpiryError::BeyondCreator)
        };
    }
    let explicit = match (expires_in, expires_at) {
        (Some(seconds), _) if seconds < 1 => {
            return Err(ExpiryError::Invalid(
                "expires_in",
                "must be at least 1 second",
            ));
        }
        (Some(seconds), _) if seconds > settings.max_ttl_seconds => {
            return Err(ExpiryError::TooLong {
                field: "expires_in",
                max_ttl_seconds: settings.max_ttl_seconds,
            });
        }
        (Some(seconds), _) => Some(now.plus(seconds)),
        (None, Some(at)) if at <= now => {
            return Err(ExpiryError::Invalid("expires_at", "must be in the future"));
        }
        (None, Some(at)) if at.seconds_since(now) > settings.max_ttl_seconds => {
            return Err(ExpiryError::TooLong {
                field: "expires_at",
                max_ttl_seconds: settings.max_ttl_seconds,
            });
        }
        (None, at) => at,
    };
    match explicit {
        Some(at) if ceiling.allows(Some(at)) => Ok(Some(at)),
        Some(_) => Err(ExpiryError::BeyondCreator),
        None => Ok(ceiling.cap(Some(now.plus(settings.default_ttl_seconds)))),
    }
}

/// A domain's own token never expires when the instance allows that, else
/// lives as long as allowed.
pub fn for_domain_token(
    settings: &Settings,
    now: Timestamp,
    ceiling: Ceiling,
) -> Option<Timestamp> {
    let wanted = if settings.allow_no_expiry {
        None
    } else {
        Some(now.plus(settings.max_ttl_seconds))
    };
    ceiling.cap(wanted)
}

/// A reset token lives as long as the one it replaces did (capped by the
/// maximum); a never-expiring token stays so.
pub fn for_reset(
    old_created_at: Timestamp,
    old_expires_at: Option<Timestamp>,
    settings: &Settings,
    now: Timestamp,
    ceiling: Ceiling,
) -> Option<Timestamp> {
    let wanted = old_expires_at.map(|expires| {
        let lifetime = expires.seconds_since(old_created_at).max(1);
        now.plus(lifetime.min(settings.max_ttl_seconds))
    });
    ceiling.cap(wanted)
}

/// The old token's new expiry after a reset: it keeps working for the grace
/// window, never longer than it would have anyway.
pub fn grace_end(
    old_expires_at: Option<Timestamp>,
    now: Timestamp,
    grace_seconds: i64,
) -> Timestamp {
    let end = now.plus(grace_seconds);
    old_expires_at.map_or(end, |expires| expires.min(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000);

    fn settings() -> Settings {
        Settings::default()
    }

    fn ask(expires_in: Option<i64>, expires_at: Option<i64>, never: bool) -> ExpiryRequest {
        ExpiryRequest {
            expires_in,
            expires_at: expires_at.map(Timestamp),
            never_expires: never,
        }
    }

    #[test]
    fn default_is_four_hours() {
        let at = resolve(ask(None, None, false), &settings(), NOW, Ceiling::Unbounded).unwrap();
        assert_eq!(at, Some(NOW.plus(14_400)));
    }

    #[test]
    fn explicit_expiry_is_capped_at_thirty_days() {
        let ok = resolve(
            ask(Some(2_592_000), None, false),
            &settings(),
            NOW,
            Ceiling::Unbounded,
        );
        assert_eq!(ok, Ok(Some(NOW.plus(2_592_000))));
        let long = resolve(
            ask(Some(2_592_001), None, false),
            &settings(),
            NOW,
            Ceiling::Unbounded,
        );
        assert_eq!(
            long,
            Err(ExpiryError::TooLong {
                field: "expires_in",
                max_ttl_seconds: 2_592_000
            })
        );
        let at = resolve(
            ask(None, Some(NOW.0 + 2_592_001), false),
            &settings(),
            NOW,
            Ceiling::Unbounded,
        );
        assert!(matches!(
            at,
            Err(ExpiryError::TooLong {
                field: "expires_at",
                ..
            })
        ));
        let huge = resolve(
            ask(Some(i64::MAX), None, false),
            &settings(),
            NOW,
            Ceiling::Unbounded,
        );
        assert!(matches!(huge, Err(ExpiryError::TooLong { .. })));
    }

    #[test]
    fn never_needs_the_admin_switch() {
        let denied = resolve(ask(None, None, true), &settings(), NOW, Ceiling::Unbounded);
        assert_eq!(denied, Err(ExpiryError::NoExpiryNotAllowed));
        let allowing = Settings {
            allow_no_expiry: true,
            ..settings()
        };
        assert_eq!(
            resolve(ask(None, None, true), &allowing, NOW, Ceiling::Unbounded),
            Ok(None)
        );
    }

    #[test]
    fn conflicting_and_invalid_requests_name_the_field() {
        let both = resolve(
            ask(Some(60), Some(NOW.0 + 60), false),
            &settings(),
            NOW,
            Ceiling::Unbounded,
        );
        assert!(matches!(both, Err(ExpiryError::Conflict("expires_at", _))));
        let never_and_in = resolve(
            ask(Some(60), None, true),
            &settings(),
            NOW,
            Ceiling::Unbounded,
        );
        assert!(matches!(
            never_and_in,
            Err(ExpiryError::Conflict("never_expires", _))
        ));
        let zero = resolve(
            ask(Some(0), None, false),
            &settings(),
            NOW,
            Ceiling::Unbounded,
        );
        assert!(matches!(zero, Err(ExpiryError::Invalid("expires_in", _))));
        let past = resolve(
            ask(None, Some(NOW.0), false),
            &settings(),
            NOW,
            Ceiling::Unbounded,
        );
        assert!(matches!(past, Err(ExpiryError::Invalid("expires_at", _))));
    }

    #[test]
    fn tokens_made_by_tokens_do_not_outlive_their_creator() {
        let parent = Ceiling::Creator(Some(NOW.plus(600)));
        let default = resolve(ask(None, None, false), &settings(), NOW, parent);
        assert_eq!(default, Ok(Some(NOW.plus(600))));
        let shorter = resolve(ask(Some(60), None, false), &settings(), NOW, parent);
        assert_eq!(shorter, Ok(Some(NOW.plus(60))));
        let later = resolve(ask(Some(601), None, false), &settings(), NOW, parent);
        assert_eq!(later, Err(ExpiryError::BeyondCreator));
        let allowing = Settings {
            allow_no_expiry: true,
            ..settings()
        };
        assert_eq!(
            resolve(ask(None, None, true), &allowing, NOW, parent),
            Err(ExpiryError::BeyondCreator)
        );
        let immortal = Ceiling::Creator(None);
        assert_eq!(
            resolve(ask(None, None, true), &allowing, NOW, immortal),
            Ok(None)
        );
        assert_eq!(
            resolve(ask(None, None, false), &settings(), NOW, immortal),
            Ok(Some(NOW.plus(14_400)))
        );
    }

    #[test]
    fn reset_keeps_the_lifetime_length_within_the_maximum() {
        let created = Timestamp(NOW.0 - 1000);
        let reset = for_reset(
            created,
            Some(created.plus(7200)),
            &settings(),
            NOW,
            Ceiling::Unbounded,
        );
        assert_eq!(reset, Some(NOW.plus(7200)));
        let long = for_reset(
            created,
            Some(created.plus(90 * 86_400)),
            &settings(),
            NOW,
            Ceiling::Unbounded,
        );
        assert_eq!(long, Some(NOW.plus(2_592_000)));
        assert_eq!(
            for_reset(created, None, &settings(), NOW, Ceiling::Unbounded),
            None
        );
        let capped = for_reset(
            created,
            None,
            &settings(),
            NOW,
            Ceiling::Creator(Some(NOW.plus(5))),
        );
        assert_eq!(capped, Some(NOW.plus(5)));
    }

    #[test]
    fn grace_never_extends_a_token() {
        assert_eq!(grace_end(None, NOW, 43_200), NOW.plus(43_200));
        assert_eq!(grace_end(Some(NOW.plus(100)), NOW, 43_200), NOW.plus(100));
        assert_eq!(grace_end(Some(NOW.plus(100)), NOW, 0), NOW);
    }

    #[test]
    fn domain_tokens_never_expire_when_allowed() {
        assert_eq!(
            for_domain_token(&settings(), NOW, Ceiling::Unbounded),
            Some(NOW.plus(2_592_000))
        );
        let allowing = Settings {
            allow_no_expiry: true,
            ..settings()
        };
        assert_eq!(for_domain_token(&allowing, NOW, Ceiling::Unbounded), None);
    }
}
