//! Typed UUID v4 identifiers, so an account id cannot be passed where a
//! token id is expected.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use uuid::Uuid;

/// The id of a `T` (an account, a workspace, a token, a domain, a session).
pub struct Id<T> {
    uuid: Uuid,
    kind: PhantomData<fn() -> T>,
}

impl<T> Id<T> {
    pub fn new() -> Self {
        Self::from_uuid(Uuid::new_v4())
    }

    pub fn from_uuid(uuid: Uuid) -> Self {
        Id {
            uuid,
            kind: PhantomData,
        }
    }

    pub fn uuid(&self) -> Uuid {
        self.uuid
    }
}

impl<T> Default for Id<T> {
    fn default() -> Self {
        Self::new()
    }
}

// Written out rather than derived: a derive would demand `T: Clone` and so on
// of the marker types, which are never instantiated.
impl<T> Clone for Id<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Id<T> {}
impl<T> PartialEq for Id<T> {
    fn eq(&self, other: &Self) -> bool {
        self.uuid == other.uuid
    }
}
impl<T> Eq for Id<T> {}
impl<T> Hash for Id<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.uuid.hash(state);
    }
}
impl<T> fmt::Debug for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.uuid, f)
    }
}
impl<T> fmt::Display for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.uuid.hyphenated(), f)
    }
}

/// Only the canonical hyphenated form is accepted, so `/tokens/{id}` has one
/// spelling per token.
impl<T> FromStr for Id<T> {
    type Err = NotAnId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match Uuid::try_parse(s) {
            Ok(uuid) if s.len() == 36 => Ok(Self::from_uuid(uuid)),
            _ => Err(NotAnId),
        }
    }
}

/// The text is not a hyphenated UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAnId;

impl<T> Serialize for Id<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Through a stack buffer: ids are in every response of the verify path.
        let mut buffer = Uuid::encode_buffer();
        serializer.serialize_str(self.uuid.hyphenated().encode_lower(&mut buffer))
    }
}
