//! The web page (`GET /`): status, chat with citations, notes, images and
//! models, for a person with a browser rather than a script. Its files are
//! built into the binary (`web/`: plain HTML, CSS and JavaScript modules;
//! no build step, no library) and served without the token: they hold no
//! data, only the page's code. Everything the page shows it fetches from
//! the API with the token the user enters (kept in the browser's
//! `localStorage`), so the API's rules hold for the page as for any
//! client.
//!
//! The page may talk to this server only: its Content-Security-Policy
//! allows no other origin for scripts, styles, images, media or fetches.

use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::error::{Dialect, Failure};

/// The page's files: name, content type, bytes.
const FILES: &[(&str, &str, &str)] = &[
    ("index.html", HTML, include_str!("web/index.html")),
    ("style.css", CSS, include_str!("web/style.css")),
    ("api.js", JS, include_str!("web/api.js")),
    ("app.js", JS, include_str!("web/app.js")),
    ("chat.js", JS, include_str!("web/chat.js")),
    ("viewer.js", JS, include_str!("web/viewer.js")),
    ("status.js", JS, include_str!("web/status.js")),
    ("notes.js", JS, include_str!("web/notes.js")),
    ("images.js", JS, include_str!("web/images.js")),
    ("models.js", JS, include_str!("web/models.js")),
    ("talk.js", JS, include_str!("web/talk.js")),
    ("dom.js", JS, include_str!("web/dom.js")),
    ("live.js", JS, include_str!("web/live.js")),
    ("icon.svg", SVG, include_str!("web/icon.svg")),
];

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Same origin only: no CDN, font or tracker can be reached from the page.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /`: the page.
pub async fn page() -> Response {
    file("index.html")
}

/// `GET /web/{name}`: one of the page's files.
pub async fn asset(Path(name): Path<String>) -> Response {
    file(&name)
}

fn file(name: &str) -> Response {
    let Some((_, kind, body)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return Failure::new(
            Dialect::OpenAi,
            StatusCode::NOT_FOUND,
            "not_found",
            format!("the page has no file {name:?}"),
        )
        .into_response();
    };
    (
        [
            (CONTENT_TYPE, *kind),
            (CONTENT_SECURITY_POLICY, POLICY),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (X_FRAME_OPTIONS, "DENY"),
            (REFERRER_POLICY, "no-referrer"),
            // The files change with voxd: a browser asks again each time
            // (a 304 would need ETags; the files are small).
            (CACHE_CONTROL, "no-cache"),
        ],
        *body,
    )
        .into_response()
}
