//! The one canonical path of §10: what the rules are matched against.
//!
//! Reverse proxies and the services behind them each normalise a request
//! target their own way; a path that one of them reads as `/admin` while the
//! rules see `/public/whatever` is a way round the rules. So the target is
//! reduced to a single spelling, and anything that two readers could
//! disagree about is refused rather than guessed at:
//!
//! 1. take the path of the target (absolute-form `http://host/p?q` → `/p`);
//! 2. raw non-ASCII bytes stand for themselves (as if percent-encoded);
//! 3. decode each `%XX` exactly once;
//! 4. refuse raw `#` or `\`, control bytes, bad escapes, escapes that decode
//!    to `/`, `\`, `%` or a control byte, invalid UTF-8, and any `.` or `..`
//!    segment (raw or decoded) or one starting `.;` or `..;`;
//! 5. drop empty segments (`//admin` is `/admin`).
//!
//! Matching is then case-sensitive on the decoded segments.

use std::borrow::Cow;
use std::fmt;

/// A request target reduced to its canonical path, with its raw query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    /// `/` then the decoded segments joined by `/`; never an empty, `.` or
    /// `..` segment, never a `/` inside a segment. Borrowed from the input
    /// when it was already canonical, which is the common case.
    pub path: Cow<'a, str>,
    /// The raw query, without its `?`; it never takes part in matching.
    pub query: &'a [u8],
}

/// Why a target has no canonical path: a `403 invalid_path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidPath {
    /// Neither `/…` nor `scheme://authority/…`.
    NotAPath,
    Fragment,
    Backslash,
    ControlByte,
    BadEscape,
    EncodedSlash,
    EncodedBackslash,
    EncodedPercent,
    EncodedControl,
    NotUtf8,
    DotSegment,
    DotSemicolon,
}

impl InvalidPath {
    /// Why, as the end of a sentence for the error's `message`.
    pub fn reason(self) -> &'static str {
        match self {
            InvalidPath::NotAPath => {
                "the target is not a path (it must start with / or be an absolute URL)"
            }
            InvalidPath::Fragment => "the target contains a raw #",
            InvalidPath::Backslash => "the path contains a backslash",
            InvalidPath::ControlByte => "the target contains a control character",
            InvalidPath::BadEscape => "the path has a % that is not followed by two hex digits",
            InvalidPath::EncodedSlash => "the path has an escaped / (%2F)",
            InvalidPath::EncodedBackslash => "the path has an escaped backslash (%5C)",
            InvalidPath::EncodedPercent => "the path is encoded twice (%25)",
            InvalidPath::EncodedControl => "the path has an escaped control character",
            InvalidPath::NotUtf8 => "the path does not decode to UTF-8",
            InvalidPath::DotSegment => "the path has a . or .. segment",
            InvalidPath::DotSemicolon => "the path has a segment starting with .; or ..;",
        }
    }
}

impl fmt::Display for InvalidPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

fn is_control(byte: u8) -> bool {
    byte < 0x20 || byte == 0x7f
}

/// The canonical path of a request target (origin-form or absolute-form).
pub fn canonicalize(target: &[u8]) -> Result<Target<'_>, InvalidPath> {
    if target.iter().any(|&b| is_control(b)) {
        return Err(InvalidPath::ControlByte);
    }
    if target.contains(&b'#') {
        return Err(InvalidPath::Fragment);
    }
    let rest = path_and_query(target)?;
    let (raw, query) = match rest.iter().position(|&b| b == b'?') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    if raw.contains(&b'\\') {
        return Err(InvalidPath::Backslash);
    }
    let mut needs_copy = raw.is_empty();
    for segment in raw.split(|&b| b == b'/').skip(1) {
        if segment.is_empty() {
            needs_copy = true;
            continue;
        }
        let escaped = segment.contains(&b'%');
        needs_copy |= escaped;
        if escaped {
            check_segment(&decode(segment)?)?;
        } else {
            check_segment(segment)?;
        }
    }
    // A lone `/` is the root, already canonical.
    if raw == b"/" {
        needs_copy = false;
    }
    if !needs_copy {
        let path = std::str::from_utf8(raw).map_err(|_| InvalidPath::NotUtf8)?;
        return Ok(Target {
            path: Cow::Borrowed(path),
            query,
        });
    }
    let mut bytes = Vec::with_capacity(raw.len() + 1);
    for segment in raw.split(|&b| b == b'/').filter(|s| !s.is_empty()) {
        bytes.push(b'/');
        bytes.extend_from_slice(&decode(segment)?);
    }
    if bytes.is_empty() {
        bytes.push(b'/');
    }
    let path = String::from_utf8(bytes).map_err(|_| InvalidPath::NotUtf8)?;
    Ok(Target {
        path: Cow::Owned(path),
        query,
    })
}

/// The `/path?query` part of an origin-form or absolute-form target.
fn path_and_query(target: &[u8]) -> Result<&[u8], InvalidPath> {
    if target.first() == Some(&b'/') {
        return Ok(target);
    }
    // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then "://".
    let scheme_end = target
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))
        .unwrap_or(target.len());
    let starts_alpha = target.first().is_some_and(u8::is_ascii_alphabetic);
    let Some(after) = target[scheme_end..].strip_prefix(b"://") else {
        return Err(InvalidPath::NotAPath);
    };
    if !starts_alpha {
        return Err(InvalidPath::NotAPath);
    }
    match after.iter().position(|&b| b == b'/' || b == b'?') {
        Some(at) if after[at] == b'/' => Ok(&after[at..]),
        // `http://host?q`: the path is empty, that is the root.
        Some(at) => Ok(&after[at..]),
        None => Ok(b""),
    }
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// One segment with each `%XX` decoded once, refusing what decodes to a
/// separator, an escape or a control byte.
fn decode(segment: &[u8]) -> Result<Cow<'_, [u8]>, InvalidPath> {
    if !segment.contains(&b'%') {
        return Ok(Cow::Borrowed(segment));
    }
    let mut out = Vec::with_capacity(segment.len());
    let mut bytes = segment.iter();
    while let Some(&byte) = bytes.next() {
        if byte != b'%' {
            out.push(byte);
            continue;
        }
        let high = bytes.next().copied().and_then(hex);
        let low = bytes.next().copied().and_then(hex);
        let (Some(high), Some(low)) = (high, low) else {
            return Err(InvalidPath::BadEscape);
        };
        let decoded = high << 4 | low;
        match decoded {
            b'/' => return Err(InvalidPath::EncodedSlash),
            b'\\' => return Err(InvalidPath::EncodedBackslash),
            b'%' => return Err(InvalidPath::EncodedPercent),
            b if is_control(b) => return Err(InvalidPath::EncodedControl),
            b => out.push(b),
        }
    }
    Ok(Cow::Owned(out))
}

fn check_segment(decoded: &[u8]) -> Result<(), InvalidPath> {
    if decoded == b"." || decoded == b".." {
        return Err(InvalidPath::DotSegment);
    }
    if decoded.starts_with(b".;") || decoded.starts_with(b"..;") {
        return Err(InvalidPath::DotSemicolon);
    }
    Ok(())
}

/// The segments of a canonical path (none for the root).
pub fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(target: &str) -> Result<String, InvalidPath> {
        canonicalize(target.as_bytes()).map(|t| t.path.into_owned())
    }

    #[test]
    fn canonical_paths_pass_unchanged_and_borrowed() {
        for target in [
            "/",
            "/contacts",
            "/contacts/42",
            "/a/b/c",
            "/caf\u{e9}",
            "/.well-known/x",
        ] {
            let got = canonicalize(target.as_bytes()).unwrap();
            assert_eq!(got.path, target);
            assert!(matches!(got.path, Cow::Borrowed(_)), "{target} was copied");
        }
    }

    #[test]
    fn the_path_is_taken_from_the_target() {
        let cases = [
            ("/contacts?x=1", "/contacts", "x=1"),
            (
                "http://api.example.com/contacts/1?a=b",
                "/contacts/1",
                "a=b",
            ),
            ("https://api.example.com", "/", ""),
            ("https://api.example.com?q", "/", "q"),
            ("HTTP://h:8080/x", "/x", ""),
            ("/", "/", ""),
            ("/?", "/", ""),
        ];
        for (target, want_path, want_query) in cases {
            let got = canonicalize(target.as_bytes()).unwrap();
            assert_eq!(got.path, want_path, "{target}");
            assert_eq!(got.query, want_query.as_bytes(), "{target}");
        }
    }

    #[test]
    fn escapes_are_decoded_once_and_empty_segments_dropped() {
        let cases = [
            ("//admin", "/admin"),
            ("/contacts/", "/contacts"),
            ("/a//b///c/", "/a/b/c"),
            ("/%61dmin", "/admin"),
            ("/caf%C3%A9", "/caf\u{e9}"),
            ("/caf\u{e9}", "/caf\u{e9}"),
            ("/a%20b", "/a b"),
            ("/a%3Fb%23c", "/a?b#c"),
            ("/...", "/..."),
            ("/.hidden", "/.hidden"),
            ("/a.;b", "/a.;b"),
            ("/admin;jsessionid=1", "/admin;jsessionid=1"),
            ("/%2e%2e%2e", "/..."),
        ];
        for (target, want) in cases {
            assert_eq!(path(target).as_deref(), Ok(want), "{target}");
        }
    }

    #[test]
    fn every_refusal_of_section_10() {
        use InvalidPath::*;
        let cases: &[(&[u8], InvalidPath)] = &[
            (b"admin", NotAPath),
            (b"*", NotAPath),
            (b"", NotAPath),
            (b"1http://h/x", NotAPath),
            (b"/a#b", Fragment),
            (b"/a?b#c", Fragment),
            (b"/a\\b", Backslash),
            (b"\\admin", NotAPath),
            (b"/a\x00b", ControlByte),
            (b"/a\tb", ControlByte),
            (b"/a\x7fb", ControlByte),
            (b"/a?x=\x01", ControlByte),
            (b"/a%", BadEscape),
            (b"/a%2", BadEscape),
            (b"/a%zz", BadEscape),
            (b"/a%2g", BadEscape),
            (b"/a%2Fb", EncodedSlash),
            (b"/a%2fb", EncodedSlash),
            (b"/a%5Cb", EncodedBackslash),
            (b"/a%5cb", EncodedBackslash),
            (b"/%252e%252e/admin", EncodedPercent),
            (b"/a%25", EncodedPercent),
            (b"/a%00", EncodedControl),
            (b"/a%0a", EncodedControl),
            (b"/a%7F", EncodedControl),
            (b"/%ff", NotUtf8),
            (b"/\xff", NotUtf8),
            (b"/caf%C3", NotUtf8),
            (b"/.", DotSegment),
            (b"/..", DotSegment),
            (b"/public/../admin", DotSegment),
            (b"/public/./admin", DotSegment),
            (b"/%2e%2e/admin", DotSegment),
            (b"/%2E/admin", DotSegment),
            (b"/.%2e/admin", DotSegment),
            (b"/a/..", DotSegment),
            (b"http://h/a/../b", DotSegment),
            (b"/..;/admin", DotSemicolon),
            (b"/.;/admin", DotSemicolon),
            (b"/public/..;x/admin", DotSemicolon),
            (b"/%2e%2e;/admin", DotSemicolon),
            (b"/.%2e%3b/admin", DotSemicolon),
        ];
        for (target, want) in cases {
            assert_eq!(
                canonicalize(target).map(|t| t.path.into_owned()),
                Err(*want),
                "{}",
                String::from_utf8_lossy(target)
            );
        }
    }

    #[test]
    fn segments_of_the_root_are_none() {
        assert_eq!(segments("/").count(), 0);
        assert_eq!(segments("/a/b").collect::<Vec<_>>(), ["a", "b"]);
    }
}
