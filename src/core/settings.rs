//! Instance settings (§4 "Instance settings") and the rules a change must
//! keep.

use std::collections::BTreeMap;

use serde::Serialize;

use super::token_format::Prefix;

pub const TTL_RANGE: (i64, i64) = (60, 31_536_000);
pub const GRACE_RANGE: (i64, i64) = (0, 604_800);
pub const PURGE_RANGE: (i64, i64) = (0, 31_536_000);
pub const AUDIT_RETENTION_RANGE: (i64, i64) = (1, 3650);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Settings {
    pub default_ttl_seconds: i64,
    pub max_ttl_seconds: i64,
    pub allow_no_expiry: bool,
    pub reset_grace_seconds: i64,
    pub purge_after_seconds: i64,
    pub allow_signup: bool,
    pub token_prefix: String,
    /// Days audit entries are kept (§11).
    pub audit_retention_days: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            default_ttl_seconds: 4 * 3600,
            max_ttl_seconds: 30 * 86_400,
            allow_no_expiry: false,
            reset_grace_seconds: 12 * 3600,
            purge_after_seconds: 86_400,
            allow_signup: false,
            token_prefix: "tw_".to_owned(),
            audit_retention_days: 365,
        }
    }
}

/// A `PATCH /settings` body: every field optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettingsPatch {
    pub default_ttl_seconds: Option<i64>,
    pub max_ttl_seconds: Option<i64>,
    pub allow_no_expiry: Option<bool>,
    pub reset_grace_seconds: Option<i64>,
    pub purge_after_seconds: Option<i64>,
    pub allow_signup: Option<bool>,
    pub token_prefix: Option<String>,
    pub audit_retention_days: Option<i64>,
}

/// Field name → problem, for a `422 validation_failed`.
pub type Problems = BTreeMap<String, String>;

impl Settings {
    /// The settings after `patch`, or every problem with it. A patch that
    /// fails changes nothing, and one that would leave the default longer
    /// than the maximum fails (send both to lower both).
    pub fn apply(&self, patch: &SettingsPatch) -> Result<Settings, Problems> {
        let mut problems = Problems::new();
        let mut next = self.clone();
        let mut range = |field: &str, value: Option<i64>, (lo, hi): (i64, i64), slot: &mut i64| {
            if let Some(value) = value {
                if (lo..=hi).contains(&value) {
                    *slot = value;
                } else {
                    problems.insert(field.to_owned(), format!("must be between {lo} and {hi}"));
                }
            }
        };
        range(
            "default_ttl_seconds",
            patch.default_ttl_seconds,
            TTL_RANGE,
            &mut next.default_ttl_seconds,
        );
        range(
            "max_ttl_seconds",
            patch.max_ttl_seconds,
            TTL_RANGE,
            &mut next.max_ttl_seconds,
        );
        range(
            "reset_grace_seconds",
            patch.reset_grace_seconds,
            GRACE_RANGE,
            &mut next.reset_grace_seconds,
        );
        range(
            "purge_after_seconds",
            patch.purge_after_seconds,
            PURGE_RANGE,
            &mut next.purge_after_seconds,
        );
        range(
            "audit_retention_days",
            patch.audit_retention_days,
            AUDIT_RETENTION_RANGE,
            &mut next.audit_retention_days,
        );
        if let Some(allow) = patch.allow_no_expiry {
            next.allow_no_expiry = allow;
        }
        if let Some(allow) = patch.allow_signup {
            next.allow_signup = allow;
        }
        if let Some(prefix) = &patch.token_prefix {
            match Prefix::parse(prefix) {
                Some(prefix) => next.token_prefix = prefix.as_str().to_owned(),
                None => {
                    problems.insert("token_prefix".into(), PREFIX_RULE.into());
                }
            }
        }
        if problems.is_empty() && next.default_ttl_seconds > next.max_ttl_seconds {
            let field = if patch.default_ttl_seconds.is_some() {
                "default_ttl_seconds"
            } else {
                "max_ttl_seconds"
            };
            problems.insert(
                field.to_owned(),
                format!(
                    "default_ttl_seconds ({}) must not exceed max_ttl_seconds ({})",
                    next.default_ttl_seconds, next.max_ttl_seconds
                ),
            );
        }
        if problems.is_empty() {
            Ok(next)
        } else {
            Err(problems)
        }
    }
}

pub const PREFIX_RULE: &str = "must match [a-z][a-z0-9_]{0,14}_ (a lower-case letter, up to 14 letters, digits or _, then _), e.g. tw_ or tm_pro_";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let s = Settings::default();
        assert_eq!(s.default_ttl_seconds, 14_400);
        assert_eq!(s.max_ttl_seconds, 2_592_000);
        assert!(!s.allow_no_expiry);
        assert_eq!(s.reset_grace_seconds, 43_200);
        assert_eq!(s.purge_after_seconds, 86_400);
        assert!(!s.allow_signup);
        assert_eq!(s.token_prefix, "tw_");
    }

    #[test]
    fn a_valid_patch_changes_only_what_it_names() {
        let patch = SettingsPatch {
            allow_no_expiry: Some(true),
            token_prefix: Some("mb_".into()),
            purge_after_seconds: Some(0),
            ..Default::default()
        };
        let next = Settings::default().apply(&patch).unwrap();
        assert!(next.allow_no_expiry);
        assert_eq!(next.token_prefix, "mb_");
        assert_eq!(next.purge_after_seconds, 0);
        assert_eq!(next.default_ttl_seconds, 14_400);
    }

    #[test]
    fn ranges_are_enforced_and_reported_per_field() {
        let patch = SettingsPatch {
            default_ttl_seconds: Some(59),
            reset_grace_seconds: Some(604_801),
            token_prefix: Some("Bad".into()),
            ..Default::default()
        };
        let problems = Settings::default().apply(&patch).unwrap_err();
        assert_eq!(
            problems.keys().collect::<Vec<_>>(),
            ["default_ttl_seconds", "reset_grace_seconds", "token_prefix"]
        );
    }

    #[test]
    fn default_may_not_exceed_max() {
        let lower_max = SettingsPatch {
            max_ttl_seconds: Some(3600),
            ..Default::default()
        };
        let problems = Settings::default().apply(&lower_max).unwrap_err();
        assert!(problems.contains_key("max_ttl_seconds"));

        let lower_both = SettingsPatch {
            max_ttl_seconds: Some(3600),
            default_ttl_seconds: Some(600),
            ..Default::default()
        };
        let next = Settings::default().apply(&lower_both).unwrap();
        assert_eq!(
            (next.default_ttl_seconds, next.max_ttl_seconds),
            (600, 3600)
        );

        let raise_default = SettingsPatch {
            default_ttl_seconds: Some(2_592_001),
            ..Default::default()
        };
        assert!(Settings::default().apply(&raise_default).is_err());
    }
}
