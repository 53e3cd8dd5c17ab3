//! Pure domain logic: no database, no HTTP. Everything here is unit-tested
//! directly.

pub mod acting;
pub mod audit;
pub mod expiry;
pub mod forward_auth;
pub mod ids;
pub mod keyhash;
pub mod model;
pub mod ratelimit;
pub mod scopes;
pub mod settings;
pub mod time;
pub mod token_format;
pub mod validate;
pub mod verdict;
