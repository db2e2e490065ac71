//! `ask`: answer a question from the notes (or, with RAG off, from the
//! language model alone) through [`crate::assistant::Assistant::ask`].
//! Streams `ask.token` events carrying the request's id as text is
//! produced (and `ask.reset` when streamed text is replaced), then replies
//! with the final text, the mode used, the citations (from retrieval only)
//! and flags. A client that disconnects cancels the answer. See
//! `docs/protocol.md`.

use serde_json::Value;

use super::relay::relay;
use super::{Context, Peer};
use crate::api::ask::{self, Ask, AskResult};
use crate::api::ApiError;

pub async fn apply(args: Ask, ctx: &Context, peer: &Peer, id: &Value) -> Result<Value, ApiError> {
    let request = args.into();
    let reply = relay(
        peer,
        id,
        |events, stop| async move { ctx.assistant.ask(request, &events, &stop).await },
        ask::event,
    )
    .await?;
    serde_json::to_value(AskResult::from(&reply)).map_err(ApiError::internal)
}
