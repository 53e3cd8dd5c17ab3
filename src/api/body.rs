//! Request bodies: at most 64 KiB of `application/json` holding an object,
//! read field by field so that every problem is reported at once, by name.

use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use hyper::body::{Body, Incoming};
use serde_json::{Map, Value};
use warp::{Buf, Filter, Rejection};

use crate::core::scopes::{self, Scope};
use crate::error::{ApiError, Details};

pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A body that must be present.
pub fn json() -> impl Filter<Extract = (Fields,), Error = Rejection> + Clone {
    read(true)
}

/// A body that may be empty (then it reads as `{}`).
pub fn optional_json() -> impl Filter<Extract = (Fields,), Error = Rejection> + Clone {
    read(false)
}

fn read(required: bool) -> impl Filter<Extract = (Fields,), Error = Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .and_then(move |content_type, length, body| async move {
            parse(content_type, length, body, required)
                .await
                .map_err(warp::reject::custom)
        })
}

async fn parse<S, B>(
    content_type: Option<String>,
    length: Option<u64>,
    body: S,
    required: bool,
) -> Result<Fields, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    if length.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut bytes = Vec::new();
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| unreadable())?;
        append(&mut bytes, chunk)?;
    }
    from_bytes(content_type.as_deref(), &bytes, required)
}

/// A body taken straight from hyper, for the routes served without warp
/// (`super::hot`): the same limit and answers as [`json`], but kept as
/// bytes, so that the common shape can be read without [`Fields`].
pub async fn read_incoming(length: Option<u64>, mut body: Incoming) -> Result<Vec<u8>, ApiError> {
    if length.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut bytes = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        // Trailers carry nothing a JSON body needs.
        if let Ok(data) = frame.map_err(|_| unreadable())?.into_data() {
            append(&mut bytes, data)?;
        }
    }
    Ok(bytes)
}

/// `{"token": "…"}` and nothing else, the body of nearly every
/// verification, read without building a tree: the token, or `None` for
/// any other body (which [`from_bytes`] then reads, and judges).
pub fn just_a_token<'a>(content_type: Option<&str>, bytes: &'a [u8]) -> Option<&'a str> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct JustAToken<'a> {
        token: &'a str,
    }
    if !is_json(content_type) {
        return None;
    }
    if let Some(token) = plain_token(bytes) {
        return Some(token);
    }
    // serde would take `["…"]` for the struct too; only an object is one.
    let object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !object {
        return None;
    }
    // A token with escapes cannot be borrowed; it takes the long way.
    serde_json::from_slice::<JustAToken>(bytes)
        .ok()
        .map(|body| body.token)
}

/// `{"token":"…"}` as clients write it (with or without JSON's spaces),
/// read by hand: serde's reader was a tenth of a verification's own work.
/// `None` for anything else, escapes included, which serde then reads.
fn plain_token(bytes: &[u8]) -> Option<&str> {
    fn after_space(bytes: &[u8]) -> &[u8] {
        let start = bytes
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .unwrap_or(bytes.len());
        &bytes[start..]
    }
    let rest = after_space(bytes).strip_prefix(b"{")?;
    let rest = after_space(rest).strip_prefix(br#""token""#)?;
    let rest = after_space(rest).strip_prefix(b":")?;
    let rest = after_space(rest).strip_prefix(b"\"")?;
    let end = rest.iter().position(|&b| b == b'"')?;
    let (token, rest) = rest.split_at(end);
    // A backslash or a control character sends the body to serde, which
    // unescapes or refuses it. Tested without an early exit, which the
    // compiler turns into vector code.
    if token
        .iter()
        .fold(false, |odd, &b| odd | (b == b'\\') | (b < 0x20))
    {
        return None;
    }
    let rest = rest.strip_prefix(b"\"")?;
    let rest = after_space(rest).strip_prefix(b"}")?;
    if !after_space(rest).is_empty() {
        return None;
    }
    std::str::from_utf8(token).ok()
}

fn unreadable() -> ApiError {
    ApiError::BadRequest("the request body could not be read".into())
}

/// Adds a chunk, refusing a body that grows past the limit.
fn append(bytes: &mut Vec<u8>, mut chunk: impl Buf) -> Result<(), ApiError> {
    if bytes.len() + chunk.remaining() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    while chunk.has_remaining() {
        let part = chunk.chunk();
        bytes.extend_from_slice(part);
        let read = part.len();
        chunk.advance(read);
    }
    Ok(())
}

/// Reads a whole body, once it is in memory: what every handler taking JSON
/// gets from the filters above, and what the fuzz targets call directly.
pub fn from_bytes(
    content_type: Option<&str>,
    bytes: &[u8],
    required: bool,
) -> Result<Fields, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return if required {
            Err(ApiError::BadRequest(
                "this request needs a JSON object as its body".into(),
            ))
        } else {
            Ok(Fields::default())
        };
    }
    if !is_json(content_type) {
        return Err(ApiError::BadRequest(
            "send the body as JSON with the header Content-Type: application/json".into(),
        ));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(Fields::new(map)),
        Ok(_) => Err(ApiError::invalid_field("body", "must be a JSON object")),
        Err(err) => Err(ApiError::BadRequest(format!(
            "the body is not valid JSON: {err}"
        ))),
    }
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|value| {
        // What nearly every client sends, before the general reading.
        value == "application/json"
            || value
                .split(';')
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// The fields of a JSON object, taken one by one. What is never taken is an
/// unknown field; every wrong type or value is collected, and `finish`
/// reports them together as `422 validation_failed`.
#[derive(Debug, Default)]
pub struct Fields {
    map: Map<String, Value>,
    problems: Details,
}

impl Fields {
    pub fn new(map: Map<String, Value>) -> Self {
        Fields {
            map,
            problems: Details::new(),
        }
    }

    pub fn problem(&mut self, key: &str, problem: impl Into<String>) {
        self.problems
            .entry(key.to_owned())
            .or_insert_with(|| problem.into());
    }

    /// Keeps a validated value, or records why it is not valid.
    pub fn check<T, E: Into<String>>(&mut self, key: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|problem| self.problem(key, problem)).ok()
    }

    /// A present field, `null` included.
    fn take_raw(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.take_raw(key).filter(|v| !v.is_null())
    }

    fn required(&mut self, key: &str, value: Option<Value>) -> Option<Value> {
        if value.is_none() {
            self.problem(key, "is required");
        }
        value
    }

    fn as_string(&mut self, key: &str, value: Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s),
            _ => {
                self.problem(key, "must be a string");
                None
            }
        }
    }

    /// A field as raw JSON (`null` included), for values with a grammar of
    /// their own, such as a rules document.
    pub fn value(&mut self, key: &str) -> Option<Value> {
        self.take_raw(key)
    }

    pub fn string(&mut self, key: &str) -> Option<String> {
        let value = self.take(key)?;
        self.as_string(key, value)
    }

    pub fn required_string(&mut self, key: &str) -> Option<String> {
        let value = self.take(key);
        let value = self.required(key, value)?;
        self.as_string(key, value)
    }

    /// Absent: `None`; `null`: `Some(None)`; a string: `Some(Some(s))`.
    pub fn nullable_string(&mut self, key: &str) -> Option<Option<String>> {
        match self.take_raw(key)? {
            Value::Null => Some(None),
            value => self.as_string(key, value).map(Some),
        }
    }

    pub fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.take(key)? {
            Value::Bool(b) => Some(b),
            _ => {
                self.problem(key, "must be true or false");
                None
            }
        }
    }

    pub fn integer(&mut self, key: &str) -> Option<i64> {
        let value = self.take(key)?;
        match value.as_i64() {
            Some(n) => Some(n),
            None => {
                self.problem(key, "must be a whole number");
                None
            }
        }
    }

    fn as_string_list(&mut self, key: &str, value: Value) -> Option<Vec<String>> {
        let Value::Array(items) = value else {
            self.problem(key, "must be a list of strings");
            return None;
        };
        let strings: Option<Vec<String>> = items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect();
        if strings.is_none() {
            self.problem(key, "must be a list of strings");
        }
        strings
    }

    /// A list of scopes, parsed and normalised.
    pub fn scopes(&mut self, key: &str) -> Option<Vec<Scope>> {
        let value = self.take(key)?;
        let texts = self.as_string_list(key, value)?;
        let mut parsed = Vec::with_capacity(texts.len());
        for text in texts {
            match text.parse::<Scope>() {
                Ok(scope) => parsed.push(scope),
                Err(_) => {
                    self.problem(
                        key,
                        format!("{text:?} is not a scope: use <resource> or <resource>:read"),
                    );
                    return None;
                }
            }
        }
        Some(scopes::normalize(parsed))
    }

    pub fn required_scopes(&mut self, key: &str) -> Option<Vec<Scope>> {
        if self.map.get(key).is_none_or(Value::is_null) {
            self.problem(key, "is required");
            self.map.remove(key);
            return None;
        }
        self.scopes(key)
    }

    /// Unknown fields and collected problems, as one `422`.
    pub fn finish(mut self) -> Result<(), ApiError> {
        let unknown: Vec<String> = self.map.keys().cloned().collect();
        for key in unknown {
            self.problem(&key, "is not a known field");
        }
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Fields {
        match value {
            Value::Object(map) => Fields::new(map),
            _ => unreachable!(),
        }
    }

    fn details(err: ApiError) -> Details {
        err.details().cloned().unwrap_or_default()
    }

    #[test]
    fn only_a_plain_token_alone_takes_the_short_way() {
        let json = Some("application/json; charset=utf-8");
        assert_eq!(just_a_token(json, br#"{"token":"tw_abc"}"#), Some("tw_abc"));
        assert_eq!(just_a_token(json, br#" { "token" : "" } "#), Some(""));
        assert_eq!(
            just_a_token(json, b"{\"token\": \"tw_abc\"}\n"),
            Some("tw_abc")
        );
        assert_eq!(just_a_token(json, br#"{"token":"tw_\u0061bc"}"#), None);
        assert_eq!(
            just_a_token(json, "{\"token\":\"caf\u{e9}\"}".as_bytes()),
            Some("caf\u{e9}")
        );
        // serde's reader takes what the hand reader leaves to it.
        assert_eq!(just_a_token(json, b"\x0c{\"token\":\"tw\"}"), None);
        assert_eq!(just_a_token(json, b"{\"token\":\"tw\"}\x0c"), None);
        assert_eq!(just_a_token(json, b"{\"token\":\"t\tw\"}"), None);
        assert_eq!(just_a_token(json, b"{\"token\":\"tw\xff\"}"), None);
        assert_eq!(just_a_token(json, br#"{"token":"tw"#), None);
        assert_eq!(just_a_token(json, br#"{"token":"tw"}}"#), None);
        assert_eq!(just_a_token(json, br#"{"token" "tw"}"#), None);
        assert_eq!(just_a_token(json, br#"{"tokens":"tw"}"#), None);
        for other in [
            &br#"{"token":"tw_abc","scopes":[]}"#[..],
            br#"{"token":"tw_abc","workspace_id":null}"#,
            br#"{"token":"tw_abc","token":"tw_def"}"#,
            br#"{"token":"tw_\u0061bc"}"#,
            br#"{"token":null}"#,
            br#"{"token":5}"#,
            br#"{}"#,
            br#"["tw_abc"]"#,
            br#"{"token":"tw_abc"} x"#,
            b"",
        ] {
            let text = String::from_utf8_lossy(other);
            assert_eq!(just_a_token(json, other), None, "{text}");
        }
        assert_eq!(just_a_token(Some("text/plain"), br#"{"token":"tw"}"#), None);
        assert_eq!(just_a_token(None, br#"{"token":"tw"}"#), None);
    }

    #[test]
    fn collects_every_problem_by_field() {
        let mut f =
            fields(json!({"name": 5, "scopes": ["contacts", "Bad"], "extra": true, "flag": "yes"}));
        assert_eq!(f.required_string("name"), None);
        assert_eq!(f.scopes("scopes"), None);
        assert_eq!(f.boolean("flag"), None);
        assert_eq!(f.integer("missing"), None);
        assert_eq!(f.required_string("email"), None);
        let problems = details(f.finish().unwrap_err());
        assert_eq!(
            problems.keys().collect::<Vec<_>>(),
            ["email", "extra", "flag", "name", "scopes"]
        );
        assert_eq!(problems["extra"], "is not a known field");
        assert_eq!(problems["email"], "is required");
    }

    #[test]
    fn reads_good_values() {
        let mut f = fields(json!({"name": "CRM", "n": 3, "p": null, "s": ["b:read", "a", "b"]}));
        assert_eq!(f.required_string("name").as_deref(), Some("CRM"));
        assert_eq!(f.integer("n"), Some(3));
        assert_eq!(f.nullable_string("p"), Some(None));
        assert_eq!(f.nullable_string("absent"), None);
        assert_eq!(scopes::encode(&f.scopes("s").unwrap()), "a b");
        assert!(f.finish().is_ok());
    }

    #[test]
    fn fractions_and_huge_numbers_are_not_integers() {
        let mut f = fields(json!({"a": 1.5, "b": 1e30}));
        assert_eq!(f.integer("a"), None);
        assert_eq!(f.integer("b"), None);
        assert_eq!(details(f.finish().unwrap_err()).len(), 2);
    }
}
