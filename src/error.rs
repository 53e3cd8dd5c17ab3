//! The one error type of the API. Each variant maps, here and only here, to
//! the contract's status and `error` code (§1). Internal details are logged,
//! never sent.

use std::collections::BTreeMap;

use crate::core::expiry::ExpiryError;
use crate::core::model::TokenState;
use crate::store::StoreError;

pub type Details = BTreeMap<String, String>;

/// Seconds a client is told to wait when the database is busy.
pub const UNAVAILABLE_RETRY_AFTER: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// A missing, malformed, unknown, expired or revoked credential.
    #[error("{message}")]
    InvalidToken { message: String, presented: bool },
    #[error("the email or password is wrong")]
    InvalidCredentials,
    #[error("this needs the scope {needed}")]
    InsufficientScope { needed: String },
    #[error("{0}")]
    Forbidden(String),
    /// Forward-auth: no rule matched and the workspace's default is deny.
    #[error("no rule allows this request, and the workspace's default is deny")]
    NoMatchingRule,
    /// Forward-auth: the request's path has no canonical form (§10).
    #[error("the request path is refused: {0}")]
    InvalidPath(&'static str),
    #[error("not found")]
    NotFound,
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A write whose `If-Match` names a version that is no longer current.
    #[error(
        "the rules were changed since you read them: read them again, reapply your change and send their new ETag in If-Match"
    )]
    PreconditionFailed,
    #[error("the request body is larger than 64 KiB")]
    PayloadTooLarge,
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
        message: String,
        details: Details,
    },
    #[error("too many attempts; try again in {retry_after} seconds")]
    RateLimited { retry_after: u64 },
    /// The database is busy (lock or pool wait timed out) or unreachable:
    /// worth retrying, never a `500` (§9 "Busy is not broken").
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Logged in full; the client sees only a generic sentence.
    #[error("internal error: {0}")]
    Internal(String),
    /// Forward-auth: the proxy left out what it must send (fail closed).
    /// The sentence says what to fix; it holds nothing secret.
    #[error("{0}")]
    ProxyMisconfigured(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::InvalidToken { .. } | ApiError::InvalidCredentials => 401,
            ApiError::InsufficientScope { .. }
            | ApiError::Forbidden(_)
            | ApiError::NoMatchingRule
            | ApiError::InvalidPath(_) => 403,
            ApiError::NotFound => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::Conflict { .. } => 409,
            ApiError::PreconditionFailed => 412,
            ApiError::PayloadTooLarge => 413,
            ApiError::Unprocessable { .. } => 422,
            ApiError::RateLimited { .. } => 429,
            ApiError::Internal(_) | ApiError::ProxyMisconfigured(_) => 500,
            ApiError::Unavailable(_) => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::InvalidToken { .. } => "invalid_token",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::InsufficientScope { .. } => "insufficient_scope",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NoMatchingRule => "no_matching_rule",
            ApiError::InvalidPath(_) => "invalid_path",
            ApiError::PreconditionFailed => "precondition_failed",
            ApiError::ProxyMisconfigured(_) => "proxy_misconfigured",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict { code, .. } | ApiError::Unprocessable { code, .. } => code,
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Internal(_) => "internal",
            ApiError::Unavailable(_) => "unavailable",
        }
    }

    /// The sentence sent to the client.
    pub fn message(&self) -> String {
        match self {
            ApiError::Internal(_) => {
                "something went wrong on the server; it has been logged".to_owned()
            }
            ApiError::NotFound => "no such resource".to_owned(),
            ApiError::Unavailable(_) => "the database is busy; try again in a moment".to_owned(),
            other => other.to_string(),
        }
    }

    pub fn details(&self) -> Option<&Details> {
        match self {
            ApiError::Unprocessable { details, .. } if !details.is_empty() => Some(details),
            _ => None,
        }
    }

    /// `422 validation_failed` with per-field problems.
    pub fn validation(details: Details) -> ApiError {
        let fields: Vec<&str> = details.keys().map(String::as_str).collect();
        ApiError::Unprocessable {
            code: "validation_failed",
            message: format!("the request has invalid fields: {}", fields.join(", ")),
            details,
        }
    }

    pub fn invalid_field(field: &str, problem: impl Into<String>) -> ApiError {
        ApiError::validation(Details::from([(field.to_owned(), problem.into())]))
    }

    pub fn unknown_scope(scope: &str, field: &str) -> ApiError {
        ApiError::Unprocessable {
            code: "unknown_scope",
            message: format!(
                "{scope} is not a scope of this workspace: add it to the scope catalog, or add the domain, first"
            ),
            details: Details::from([(field.to_owned(), format!("unknown scope {scope}"))]),
        }
    }

    pub fn internal(context: &str, err: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(format!("{context}: {err}"))
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::EmailTaken => ApiError::Conflict {
                code: "email_taken",
                message: "an account with this email already exists".into(),
            },
            StoreError::SignUpClosed => ApiError::Forbidden(
                "sign-up is closed on this server: an instance admin can create your account, or open sign-up in the settings"
                    .into(),
            ),
            StoreError::SetupCodeNeeded => ApiError::Forbidden(
                "the first account needs the one-time setup code that the server printed in its log"
                    .into(),
            ),
            StoreError::Refused(message) => ApiError::Forbidden(message),
            StoreError::NoSuchAccount => {
                ApiError::invalid_field("email", "no account has this email; it must sign up first")
            }
            StoreError::AlreadyMember => ApiError::invalid_field(
                "email",
                "is already a member; change the role or scopes with PATCH instead",
            ),
            StoreError::LastAdmin => ApiError::Conflict {
                code: "last_admin",
                message: "a workspace needs at least one admin: make someone else admin first"
                    .into(),
            },
            StoreError::LastInstanceAdmin => ApiError::Conflict {
                code: "last_admin",
                message: "this is the last enabled instance admin: the instance needs one to manage accounts and settings".into(),
            },
            StoreError::OnlyWorkspaceAdmin(workspace) => ApiError::Conflict {
                code: "last_admin",
                message: format!(
                    "the account is the only admin of the workspace \"{workspace}\", which has other members: \
                     make one of them admin first, or disable the account instead"
                ),
            },
            StoreError::TokenInactive(state) => ApiError::Conflict {
                code: "token_inactive",
                message: match state {
                    TokenState::Revoked => "the token is revoked and cannot be changed".into(),
                    _ => "the token has expired and cannot be changed".into(),
                },
            },
            StoreError::TokenReplaced => ApiError::Conflict {
                code: "token_inactive",
                message: "the token was already reset; reset its replacement instead".into(),
            },
            StoreError::LastDomainToken(domain) => ApiError::Conflict {
                code: "last_domain_token",
                message: format!(
                    "this is the last active token with full access to {domain}; \
                     create another one for the domain first, or reset this one instead"
                ),
            },
            StoreError::DomainExists => ApiError::Conflict {
                code: "domain_exists",
                message: "this workspace already has that domain".into(),
            },
            StoreError::UnknownScope(scope) => ApiError::unknown_scope(&scope, "scopes"),
            StoreError::InvalidSettings(problems) | StoreError::InvalidRoutes(problems) => {
                ApiError::validation(problems)
            }
            StoreError::PreconditionFailed => ApiError::PreconditionFailed,
            StoreError::Unavailable(detail) => ApiError::Unavailable(detail),
            StoreError::Internal(detail) => ApiError::Internal(detail),
        }
    }
}

impl From<ExpiryError> for ApiError {
    fn from(err: ExpiryError) -> Self {
        match err {
            ExpiryError::Conflict(field, problem) | ExpiryError::Invalid(field, problem) => {
                ApiError::invalid_field(field, problem)
            }
            ExpiryError::TooLong {
                field,
                max_ttl_seconds,
            } => ApiError::Unprocessable {
                code: "expiry_too_long",
                message: format!("tokens may live at most {max_ttl_seconds} seconds on this server"),
                details: Details::from([(
                    field.to_owned(),
                    format!("must be at most {max_ttl_seconds} seconds from now"),
                )]),
            },
            ExpiryError::NoExpiryNotAllowed => ApiError::Unprocessable {
                code: "no_expiry_not_allowed",
                message: "tokens without expiry are turned off on this server; an instance admin can allow them in the settings".into(),
                details: Details::from([(
                    "never_expires".to_owned(),
                    "is not allowed by the instance settings".to_owned(),
                )]),
            },
            ExpiryError::BeyondCreator => ApiError::Forbidden(
                "a token cannot create a token that outlives itself: choose an earlier expiry".into(),
            ),
        }
    }
}
