//! The web dashboard: one HTML page with its style and script inline, built into the binary
//! (no build step, no separate server). The script reads the API token from the page's
//! `?token=` (keeping it in `sessionStorage`), loads everything through the REST API, and
//! stays live on the event stream.

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

/// The page, assembled at compile time.
pub const PAGE: &str = concat!(
    include_str!("head.html"),
    "<style>\n",
    include_str!("style.css"),
    "</style>\n",
    include_str!("body.html"),
    "<script>\n",
    include_str!("app.js"),
    "</script>\n</body>\n</html>\n"
);

/// GET /
pub async fn page() -> Response {
    let mut r = Html(PAGE).into_response();
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'",
        ),
    );
    r
}
