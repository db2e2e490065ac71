//! voxd's own endpoints, under `/v1/voxd/`: the control protocol's
//! commands that make sense from another program (`POST
//! /v1/voxd/{command}` with the command's arguments as a JSON object, as
//! on the socket: `status`, `ping`, `notes`, `images`, `rag`, `history`,
//! `forget`, `listen`, `models`, `say`), an image's caption (`POST /v1/voxd/caption`, a multipart
//! upload), a note's text for reading what a citation points at (`GET
//! /v1/voxd/note?path=`, only inside the notes folders), a captioned
//! image's file (`GET /v1/voxd/image?path=`, only inside the watched
//! folders) and the daemon's
//! events as server-sent events (`GET
//! /v1/voxd/events?events=assistant.,engine.`). Each runs through the
//! same handlers, checks and metrics as on the socket (`commands::call`);
//! commands that read or write files on the daemon's machine by path
//! (`transcribe`, `caption`, `say`'s `wav`, `listen`'s `file`) are not
//! offered here.

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::error::{Dialect, Failure};
use super::stream::channel;
use super::Api;
use crate::doors::commands::{self, protocol::Message};

const D: Dialect = Dialect::OpenAi;

/// The commands offered, each with the arguments it may not take here.
const COMMANDS: &[(&str, &[&str])] = &[
    ("ping", &[]),
    ("status", &[]),
    ("notes", &[]),
    ("images", &[]),
    ("rag", &[]),
    ("history", &[]),
    ("forget", &[]),
    ("listen", &["file"]),
    ("models", &[]),
    ("say", &["wav"]),
];

/// `POST /v1/voxd/{command}` (and `GET` for commands without arguments).
#[utoipa::path(method(get, post), path = "/v1/voxd/{command}", tag = "voxd",
    params(("command" = String, Path, description = "status, ping, notes, images, rag, history, forget, listen, models or say")),
    request_body(content = Object, description = "The command's arguments, as on the control socket (docs/protocol.md)"),
    responses((status = 200, description = "The command's result, as on the control socket"),
        (status = 400, description = "Bad arguments"), (status = 404, description = "A command not offered here")))]
pub async fn command(
    State(api): State<Api>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Failure> {
    let Some((_, barred)) = COMMANDS.iter().find(|(c, _)| *c == name) else {
        let offered: Vec<&str> = COMMANDS.iter().map(|(c, _)| *c).collect();
        return Err(Failure::new(
            D,
            StatusCode::NOT_FOUND,
            "unknown_command",
            format!(
                "no command {name:?} here: /v1/voxd/ offers {}",
                offered.join(", ")
            ),
        ));
    };
    let args: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Failure::new(D, StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))?
    };
    if let Some(key) = barred.iter().find(|k| args.get(**k).is_some()) {
        return Err(Failure::bad_request(
            D,
            format!("`{key}` names a file on the daemon's machine: use the control socket for it"),
        ));
    }
    commands::call(&api.ctx, &name, args)
        .await
        .map(Json)
        .map_err(|e| Failure::from_api(D, e))
}

/// `POST /v1/voxd/caption`: the caption of an uploaded image (`file`;
/// `prompt` optional), not recorded in the image store.
#[utoipa::path(post, path = "/v1/voxd/caption", tag = "voxd",
    request_body(content = String, content_type = "multipart/form-data",
        description = "`file`: a JPEG, PNG, WebP, GIF or BMP image; `prompt`: a conditional prompt (\"a photo of\")"),
    responses((status = 200, description = "`caption`, `width`, `height`, `format`, `model`, `hash`"),
        (status = 400, description = "Not an image voxd can read, or no `file`")))]
pub async fn caption(
    State(api): State<Api>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, Failure> {
    let bad = |e: &dyn std::fmt::Display| Failure::bad_request(D, e.to_string());
    let mut form =
        form.map_err(|r| Failure::new(D, r.status(), "invalid_multipart", r.body_text()))?;
    let (mut image, mut prompt) = (None, None);
    while let Some(field) = form.next_field().await.map_err(|e| bad(&e))? {
        let name = field.name().unwrap_or_default().to_string();
        let value = field.bytes().await.map_err(|e| bad(&e))?;
        match name.as_str() {
            "file" => image = Some(value),
            "prompt" => prompt = Some(String::from_utf8_lossy(&value).into_owned()),
            _ => {}
        }
    }
    let image = image.ok_or_else(|| bad(&"no `file` field: upload the image as `file`"))?;
    let vision = api.assistant.vision.clone();
    let caption =
        tokio::task::spawn_blocking(move || vision.caption_upload(&image, prompt.as_deref()))
            .await
            .map_err(|e| Failure::from_api(D, crate::api::ApiError::internal(e)))?
            .map_err(|reason| bad(&format!("cannot caption this image: {reason}")))?;
    Ok(Json(json!({
        "caption": caption.caption,
        "width": caption.width,
        "height": caption.height,
        "format": caption.format,
        "model": caption.model,
        "prompt": caption.prompt,
        "hash": caption.hash,
    })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct Filter {
    /// Comma-separated event name prefixes; empty: every event.
    #[serde(default)]
    events: String,
}

/// `GET /v1/voxd/events`: the socket's `subscribe`, as server-sent events
/// named like the socket's (`event: assistant.reply`).
#[utoipa::path(get, path = "/v1/voxd/events", tag = "voxd", params(Filter),
    responses((status = 200, description = "Server-sent events named as on the socket (`event: assistant.reply`)")))]
pub async fn events(
    State(api): State<Api>,
    Query(filter): Query<Filter>,
) -> Result<Response, Failure> {
    let prefixes: Vec<&str> = filter
        .events
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let closed = CancellationToken::new();
    let mut messages = commands::open(
        &api.ctx,
        "subscribe",
        json!({ "events": prefixes }),
        closed.clone(),
    )
    .await
    .map_err(|e| Failure::from_api(D, e))?;
    let events = channel(&api.assistant, Vec::new(), move |tx| async move {
        let _stop = closed.drop_guard();
        loop {
            let message = tokio::select! {
                _ = tx.closed() => return,
                message = messages.recv() => message,
            };
            let event = match message {
                Some(Message::Event { event, data, .. }) => {
                    Event::default().event(event).data(data.to_string())
                }
                Some(_) => continue,
                None => return,
            };
            if tx.send(Ok::<_, Infallible>(event)).await.is_err() {
                return;
            }
        }
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct FilePath {
    /// The file's absolute path, as citations, search hits and the image
    /// list give it.
    #[param(value_type = String)]
    path: std::path::PathBuf,
}

/// `GET /v1/voxd/note?path=`: a note's text, for reading the lines a
/// citation points at. Only files inside the notes folders are served.
#[utoipa::path(get, path = "/v1/voxd/note", tag = "voxd", params(FilePath),
    responses((status = 200, description = "`path` (the real path), `name` (relative to its notes folder), `text`"),
        (status = 403, description = "Outside the notes folders (a `..`, a link out of them), or not a note"),
        (status = 404, description = "No such note")))]
pub async fn note(
    State(api): State<Api>,
    query: Result<Query<FilePath>, QueryRejection>,
) -> Result<Json<crate::rag::Note>, Failure> {
    let Query(query) = query.map_err(|r| Failure::bad_request(D, r.body_text()))?;
    api.assistant
        .rag
        .note(query.path)
        .await
        .map(Json)
        .map_err(|e| Failure::from_api(D, e.into()))
}

/// `GET /v1/voxd/image?path=`: an image file from the watched folders (the
/// page's thumbnails). Only image files inside those folders are served.
#[utoipa::path(get, path = "/v1/voxd/image", tag = "voxd", params(FilePath),
    responses((status = 200, description = "The image file, with its media type"),
        (status = 403, description = "Outside the watched folders (a `..`, a link out of them), or not an image"),
        (status = 404, description = "No such image")))]
pub async fn image(
    State(api): State<Api>,
    query: Result<Query<FilePath>, QueryRejection>,
) -> Result<Response, Failure> {
    let Query(query) = query.map_err(|r| Failure::bad_request(D, r.body_text()))?;
    let vision = api.assistant.vision.clone();
    let image = tokio::task::spawn_blocking(move || vision.image(&query.path))
        .await
        .map_err(|e| Failure::from_api(D, crate::api::ApiError::internal(e)))?
        .map_err(|e| Failure::from_api(D, e.into()))?;
    Ok((
        [
            (CONTENT_TYPE, image.media_type),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (CACHE_CONTROL, "private, max-age=60"),
        ],
        image.bytes,
    )
        .into_response())
}
