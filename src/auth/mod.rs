//! Credentials: passwords, session JWTs, API tokens, and the callers they
//! make.

pub mod caller;
pub mod jwt;
pub mod password;
pub mod presented_token;
