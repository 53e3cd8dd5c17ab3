//! Shape rules for the values clients send: emails, passwords, names,
//! domain names, catalog names. Each returns the normalised value or a
//! sentence for the `details` of a `422`.

pub const PASSWORD_MIN: usize = 10;
pub const PASSWORD_MAX: usize = 1024;
pub const NAME_MAX: usize = 100;
pub const DESCRIPTION_MAX: usize = 500;
pub const EMAIL_MAX: usize = 254;

/// Lower-cases an email address and checks it looks deliverable:
/// `local@domain`, the domain of at least two non-empty labels, no spaces.
pub fn email(text: &str) -> Result<String, &'static str> {
    let email = text.trim().to_lowercase();
    if email.is_empty() {
        return Err("is required");
    }
    if email.len() > EMAIL_MAX {
        return Err("must be at most 254 characters");
    }
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.split('.').count() >= 2
                && domain.split('.').all(|label| !label.is_empty())
                && !domain.contains('@')
                && !email
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || is_invisible_trick(c))
        }
        None => false,
    };
    if valid {
        Ok(email)
    } else {
        Err("must be an email address such as ada@example.com")
    }
}

/// Passwords are counted in characters, not bytes.
pub fn password(text: &str) -> Result<(), &'static str> {
    match text.chars().count() {
        n if n < PASSWORD_MIN => Err("must be at least 10 characters"),
        n if n > PASSWORD_MAX => Err("must be at most 1024 characters"),
        _ => Ok(()),
    }
}

/// Characters that change how the text around them is shown without
/// showing themselves: bidirectional overrides and isolates, which can make
/// a name read backwards ("CRM\u{202E}nimda"), and zero-width characters,
/// which make two names that look alike differ (§9 "Names").
fn is_invisible_trick(c: char) -> bool {
    matches!(c,
        '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}'
        | '\u{200B}'..='\u{200F}'
        | '\u{2060}'
        | '\u{FEFF}')
}

/// A display name (token, workspace): trimmed, 1–100 characters, no
/// control, bidirectional or zero-width characters.
pub fn display_name(text: &str) -> Result<String, &'static str> {
    let name = text.trim();
    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.chars().count() > NAME_MAX {
        return Err("must be at most 100 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    if name.chars().any(is_invisible_trick) {
        return Err("must not contain bidirectional or zero-width characters");
    }
    Ok(name.to_owned())
}

pub fn description(text: &str) -> Result<String, &'static str> {
    let text = text.trim();
    if text.chars().count() > DESCRIPTION_MAX {
        return Err("must be at most 500 characters");
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err("must not contain control characters");
    }
    if text.chars().any(is_invisible_trick) {
        return Err("must not contain bidirectional or zero-width characters");
    }
    Ok(text.to_owned())
}

/// Names that the scope grammar reserves and a catalog may not take.
const RESERVED_SCOPE_NAMES: [&str; 6] =
    ["tokens", "domains", "domain", "verify", "routes", "audit"];

/// A scope catalog name: `[a-z][a-z0-9-]{0,63}`.
pub fn is_catalog_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=64).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

pub fn catalog_name(name: &str) -> Result<(), &'static str> {
    if !is_catalog_name(name) {
        return Err("must match [a-z][a-z0-9-]{0,63}, e.g. contacts or knowledge-base");
    }
    if RESERVED_SCOPE_NAMES.contains(&name) {
        return Err("is reserved for a built-in scope");
    }
    Ok(())
}

/// A DNS host name already in lower case: at least two labels of
/// `[a-z0-9-]`, 1–63 characters, no leading or trailing `-`, at most 253 in all.
pub fn is_domain_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').count() >= 2
        && name.split('.').all(|label| {
            let bytes = label.as_bytes();
            (1..=63).contains(&bytes.len())
                && bytes[0] != b'-'
                && bytes[bytes.len() - 1] != b'-'
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        })
}

/// Lower-cases a domain name, then checks it (§9 "Domains").
pub fn domain_name(text: &str) -> Result<String, &'static str> {
    let name = text.trim().to_ascii_lowercase();
    if is_domain_name(&name) {
        Ok(name)
    } else {
        Err(
            "must be a host name such as example.com (letters, digits and hyphens, at least two labels)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(email(" Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@.com",
            "ada@example..com",
            "ada@a.",
            "ada@.a",
            "ada@example.com.",
            "ad\u{202E}a@example.com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(email(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn password_length_counts_characters() {
        assert!(password("short").is_err());
        assert!(password("éééééééééé").is_ok());
        assert!(password(&"x".repeat(1024)).is_ok());
        assert!(password(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(display_name("  CRM  ").unwrap(), "CRM");
        assert!(display_name("   ").is_err());
        assert!(display_name("a\u{7}b").is_err());
        assert!(display_name(&"n".repeat(101)).is_err());
        for trick in [
            "CRM\u{202E}nimda",
            "a\u{2066}b",
            "a\u{200B}b",
            "a\u{200D}b",
            "\u{FEFF}x",
        ] {
            assert!(display_name(trick).is_err(), "{trick:?}");
            assert!(description(trick).is_err(), "{trick:?}");
        }
        assert_eq!(
            display_name("Café – ünïcode 🙂").unwrap(),
            "Café – ünïcode 🙂"
        );
    }

    #[test]
    fn catalog_names_follow_the_grammar() {
        assert!(catalog_name("contacts").is_ok());
        assert!(catalog_name("knowledge-base").is_ok());
        assert!(catalog_name(&format!("a{}", "b".repeat(63))).is_ok());
        for bad in [
            "", "Contacts", "1abc", "a_b", "a:b", "tokens", "domains", "domain",
        ] {
            assert!(catalog_name(bad).is_err(), "{bad}");
        }
        assert!(catalog_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn domain_names_are_host_names() {
        assert_eq!(domain_name("Example.COM").unwrap(), "example.com");
        assert!(domain_name("mail.example.co.uk").is_ok());
        assert!(domain_name("xn--bcher-kva.example").is_ok());
        for bad in [
            "example",
            "-a.com",
            "a-.com",
            "a..com",
            "a.com.",
            "exa mple.com",
            "a_b.com",
            "",
        ] {
            assert!(domain_name(bad).is_err(), "{bad}");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(domain_name(&long_label).is_err());
        let long_name = vec!["abcdefghi"; 26].join(".");
        assert!(long_name.len() > 253);
        assert!(domain_name(&long_name).is_err());
    }
}
