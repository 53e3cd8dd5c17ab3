//! Session tokens: HS256 JWTs (RFC 7519) carrying `sub`, `jti`, `iat`,
//! `exp`. Only this one algorithm is produced or accepted, so there is no
//! algorithm to confuse; the signature is checked in constant time before
//! the claims are read.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// `{"alg":"HS256","typ":"JWT"}`, encoded.
const HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
/// Far beyond any token this server issues; refuses work on junk.
const MAX_LEN: usize = 2048;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    Malformed,
    BadSignature,
    Expired,
}

/// The HMAC key that signs sessions, keyed once.
#[derive(Clone)]
pub struct SessionKey {
    keyed: Hmac<Sha256>,
}

#[derive(Debug, thiserror::Error)]
#[error("the session signing key is unusable")]
pub struct BadKey;

impl SessionKey {
    pub fn new(key: &[u8]) -> Result<Self, BadKey> {
        let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(|_| BadKey)?;
        Ok(SessionKey { keyed })
    }

    fn mac(&self) -> Hmac<Sha256> {
        self.keyed.clone()
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signing_input = format!("{HEADER}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// The claims of a token this key signed, if it has not expired at `now`.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, JwtError> {
        if token.len() > MAX_LEN {
            return Err(JwtError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        if header != HEADER {
            return Err(JwtError::Malformed);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| JwtError::Malformed)?;
        let mut mac = self.mac();
        mac.update(header.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| JwtError::BadSignature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| JwtError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)?;
        if claims.exp <= now {
            return Err(JwtError::Expired);
        }
        Ok(claims)
    }
}

/// Cheap shape test used to route a bearer credential: JWTs have two dots,
/// API tokens none.
pub fn looks_like_jwt(credential: &str) -> bool {
    credential.bytes().filter(|&b| b == b'.').count() == 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "account".into(),
            jti: "session".into(),
            iat: 100,
            exp,
        }
    }

    #[test]
    fn header_constant_is_what_it_claims() {
        let decoded = URL_SAFE_NO_PAD.decode(HEADER).unwrap();
        assert_eq!(decoded, br#"{"alg":"HS256","typ":"JWT"}"#);
    }

    #[test]
    fn round_trips_and_expires() {
        let key = SessionKey::new(&[7; 32]).unwrap();
        let token = key.sign(&claims(200));
        assert!(looks_like_jwt(&token));
        assert_eq!(key.verify(&token, 150), Ok(claims(200)));
        assert_eq!(key.verify(&token, 200), Err(JwtError::Expired));
    }

    #[test]
    fn rejects_tampering_other_keys_and_other_algorithms() {
        let key = SessionKey::new(&[7; 32]).unwrap();
        let token = key.sign(&claims(200));
        let other = SessionKey::new(&[8; 32]).unwrap();
        assert_eq!(other.verify(&token, 150), Err(JwtError::BadSignature));

        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_payload =
            URL_SAFE_NO_PAD.encode(br#"{"sub":"admin","jti":"x","iat":1,"exp":999}"#);
        parts[1] = &forged_payload;
        assert_eq!(
            key.verify(&parts.join("."), 150),
            Err(JwtError::BadSignature)
        );

        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let unsigned = format!("{none_header}.{}.", token.split('.').nth(1).unwrap());
        assert_eq!(key.verify(&unsigned, 150), Err(JwtError::Malformed));

        for junk in ["", "a.b", "a.b.c.d", "...", &"x".repeat(5000)] {
            assert!(key.verify(junk, 150).is_err());
        }
    }
}
