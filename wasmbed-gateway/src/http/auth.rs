//! Who may use the HTTP side, and from where.
//!
//! - The token: the same one the JSON-lines API takes (`token_file`). Sent as
//!   `Authorization: Bearer TOKEN` (curl, scripts) or as the `wasmbed_token` cookie the login
//!   page sets (HttpOnly, SameSite=Strict). Without a token file the gateway only listens on
//!   loopback and asks for none.
//! - Cross-site requests: a state-changing request (any method but GET/HEAD) whose `Origin` is
//!   not this gateway's own, or that the browser marks `Sec-Fetch-Site: cross-site/same-site`,
//!   is refused (403), so another web page cannot make a visitor's browser drive a board.
//! - DNS rebinding: without a token, only `Host: localhost`, `127.0.0.1`, `[::1]` (any port) or
//!   another IP literal is served, so a hostile name resolving to 127.0.0.1 reaches nothing.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use wasmbed_api::{ErrorBody, ErrorCode};

use super::{api, pages, Http};

/// The cookie holding the (hex-encoded) token.
pub const COOKIE: &str = "wasmbed_token";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if s.len() % 2 != 0 {
        return None;
    }
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// The token a request carries (bearer header first, then the cookie).
fn token_of(headers: &HeaderMap) -> Option<String> {
    if let Some(t) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(t.trim().to_string());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .and_then(|(_, v)| unhex(v))
}

/// An `UNAUTHORIZED` reply with an HTTP status that says why (401 no token, 403 cross-origin,
/// 421 foreign host name).
fn refuse(status: StatusCode, message: &str, help: &str) -> Response {
    let mut e = ErrorBody::new(ErrorCode::Unauthorized, message);
    e.help = Some(help.into());
    api::refuse(status, e)
}

fn host_is_local_or_ip(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => {
            return rest
                .split(']')
                .next()
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
        }
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

/// Refuses cross-site state changes and, without a token, foreign host names (all routes).
pub async fn same_origin(State(http): State<Arc<Http>>, req: Request, next: Next) -> Response {
    let h = req.headers();
    let host = h
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if http.gw.token.is_none() && !host_is_local_or_ip(&host) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            &format!("this gateway has no token and only answers to localhost or an IP address, not `{host}`"),
            "open it as http://127.0.0.1:PORT/, or give the gateway a token_file",
        );
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let origin = h.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let fetch_site = h.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        let cross = match origin {
            Some(o) => {
                let scheme = if http.gw.tls.is_some() {
                    "https"
                } else {
                    "http"
                };
                o != format!("{scheme}://{host}")
            }
            None => fetch_site.is_some_and(|s| s != "same-origin" && s != "none"),
        };
        if cross {
            return refuse(
                StatusCode::FORBIDDEN,
                &format!(
                    "cross-origin {} refused (Origin {}, Host {host})",
                    req.method(),
                    origin.unwrap_or("none")
                ),
                "send state-changing requests from the dashboard itself, or without an Origin header (curl)",
            );
        }
    }
    next.run(req).await
}

/// Requires the gateway's token, when it has one (all but the login page and assets).
pub async fn require_token(State(http): State<Arc<Http>>, req: Request, next: Next) -> Response {
    if http.gw.token_ok(token_of(req.headers()).as_deref()) {
        return next.run(req).await;
    }
    if req.uri().path().starts_with("/api/") {
        refuse(
            StatusCode::UNAUTHORIZED,
            "missing or wrong token",
            "send `Authorization: Bearer TOKEN` with the contents of the gateway's token file",
        )
    } else {
        // A page: off to the sign-in form (a redirect, not an error page, keeps the browser's
        // console clean).
        Redirect::to("/login").into_response()
    }
}

/// The login form.
pub async fn login_page() -> Response {
    pages::login(None).into_response()
}

/// The login form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// Checks the token and sets the cookie.
pub async fn login(State(http): State<Arc<Http>>, Form(f): Form<LoginForm>) -> Response {
    let token = f.token.trim();
    if http.gw.token.is_none() || !http.gw.token_ok(Some(token)) {
        let why = if http.gw.token.is_none() {
            "this gateway has no token: no need to sign in"
        } else {
            "wrong token"
        };
        return (StatusCode::UNAUTHORIZED, pages::login(Some(why))).into_response();
    }
    // Over HTTPS ([tls]) the browser sends the cookie back over HTTPS only.
    let secure = if http.gw.tls.is_some() {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/{secure}",
        hex(token.as_bytes())
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

/// Clears the cookie.
pub async fn logout() -> Response {
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_from_bearer_or_cookie() {
        let mut h = HeaderMap::new();
        assert_eq!(token_of(&h), None);
        h.insert(
            header::COOKIE,
            format!("a=b; {COOKIE}={}", hex(b"s3cret")).parse().unwrap(),
        );
        assert_eq!(token_of(&h).as_deref(), Some("s3cret"));
        h.insert(header::AUTHORIZATION, "Bearer other".parse().unwrap());
        assert_eq!(token_of(&h).as_deref(), Some("other"));
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn local_hosts() {
        for ok in [
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:80",
            "10.0.0.2",
            "LOCALHOST",
        ] {
            assert!(host_is_local_or_ip(ok), "{ok}");
        }
        for bad in ["evil.example:8080", "", "[nope]:1", "localhost.evil"] {
            assert!(!host_is_local_or_ip(bad), "{bad}");
        }
    }
}
