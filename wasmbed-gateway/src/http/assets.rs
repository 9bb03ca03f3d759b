//! The dashboard's static files, embedded in the binary: our own `app.js`/`app.css` and the
//! vendored libraries (assets/vendor/VENDOR.md: htmx, its SSE extension, uPlot).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// (name, content type, bytes).
const FILES: &[(&str, &str, &[u8])] = &[
    ("app.css", "text/css", include_bytes!("assets/app.css")),
    ("app.js", "text/javascript", include_bytes!("assets/app.js")),
    (
        "htmx.min.js",
        "text/javascript",
        include_bytes!("assets/vendor/htmx.min.js"),
    ),
    (
        "htmx-ext-sse.min.js",
        "text/javascript",
        include_bytes!("assets/vendor/htmx-ext-sse.min.js"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript",
        include_bytes!("assets/vendor/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css",
        include_bytes!("assets/vendor/uPlot.min.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("assets/favicon.svg"),
    ),
];

/// `GET /assets/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == file) {
        Some((_, ty, bytes)) => (
            [
                (header::CONTENT_TYPE, *ty),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
