//! The original's cookies, `access_token` and `refresh_token`: HttpOnly, SameSite=Lax, Path=/,
//! Secure when PUBLIC_URL is https.

use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue};

pub const ACCESS_COOKIE: &str = "access_token";
pub const REFRESH_COOKIE: &str = "refresh_token";

/// Reads one cookie from a request's `Cookie` headers.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// Adds a `Set-Cookie` for `name=value` living `max_age`.
pub fn set(headers: &mut HeaderMap, name: &str, value: &str, max_age: Duration, secure: bool) {
    let line = format!(
        "{name}={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    append(headers, &line);
}

/// Adds a `Set-Cookie` that clears `name`.
pub fn clear(headers: &mut HeaderMap, name: &str, secure: bool) {
    let line = format!(
        "{name}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT{}",
        if secure { "; Secure" } else { "" }
    );
    append(headers, &line);
}

fn append(headers: &mut HeaderMap, line: &str) {
    if let Ok(v) = HeaderValue::from_str(line) {
        headers.append(header::SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_cookie_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; access_token=xyz; refresh_token=r"),
        );
        assert_eq!(read(&h, ACCESS_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(read(&h, REFRESH_COOKIE).as_deref(), Some("r"));
        assert_eq!(read(&h, "missing"), None);
    }

    #[test]
    fn set_cookie_has_the_protocol_attributes() {
        let mut h = HeaderMap::new();
        set(&mut h, ACCESS_COOKIE, "t", Duration::from_secs(900), true);
        let line = h.get(header::SET_COOKIE).unwrap().to_str().unwrap();
        assert_eq!(
            line,
            "access_token=t; HttpOnly; SameSite=Lax; Path=/; Max-Age=900; Secure"
        );
    }
}
