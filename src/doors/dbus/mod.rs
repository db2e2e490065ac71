//! The D-Bus interface: `io.github.voxd.Assistant1` at
//! `/io/github/voxd/Assistant1`, owning the bus name `io.github.voxd` on the
//! session bus (or the system bus, by `dbus.bus`). Documented in
//! `docs/dbus.md`.
//!
//! It owns the bus connection and may touch nothing else. `Ask` calls the
//! assistant itself, streaming its answer to the caller as signals; every
//! other method runs the socket command of the same meaning through
//! [`commands::call`] (the same parsing, handlers, metrics and errors as
//! the socket); every event on the daemon's bus is re-emitted as a signal.
//!
//! # Adding a command
//!
//! A new socket command is reachable at once through the generic
//! `Call(command, args_json)` method; give it a typed method here (one line
//! calling `Assistant::run`) when desktop callers want it. A new event
//! flows as the generic `Event(name, data_json)` signal without code; give
//! it a typed signal in `bridge` when it deserves one.

mod caller;
mod error;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zbus::message::Header;
use zbus::object_server::{InterfaceRef, SignalEmitter};

use crate::api::ask::{Ask, AskResult};
use crate::api::ApiError;
use crate::assistant::{AskEvent, AssistantEvent};
use crate::config::DbusBus;
use crate::doors::commands::{self, Context};
use crate::engine::EngineEvent;
use crate::events::Event;
use crate::listen::ListenEvent;
use crate::speak::SpeechEvent;
use crate::vision::ImageEvent;
use caller::Callers;
pub use error::Error;

/// The well-known bus name voxd owns.
pub const BUS_NAME: &str = "io.github.voxd";
/// The object that carries the interface.
pub const OBJECT_PATH: &str = "/io/github/voxd/Assistant1";
/// The interface; the trailing number changes on incompatible changes.
pub const INTERFACE: &str = "io.github.voxd.Assistant1";
/// Prefix of every error name: `io.github.voxd.Error.EngineFailed`, …
pub const ERROR_PREFIX: &str = "io.github.voxd.Error";

/// The object served at [`OBJECT_PATH`].
pub struct Assistant {
    ctx: Arc<Context>,
    /// Every method checks its caller is the daemon's own user.
    callers: Arc<Callers>,
    /// `daemon.shutdown` was published (it comes just before the shutdown
    /// token is cancelled, so the signal for it must not read the token).
    stopping: bool,
}

impl Assistant {
    /// Runs socket command `cmd` with `args` as a D-Bus call.
    async fn run(&self, cmd: &str, args: Value) -> Result<Value, Error> {
        Ok(commands::call(&self.ctx, cmd, args).await?)
    }

    /// Runs `cmd` and returns its result as JSON text.
    async fn run_json(&self, cmd: &str, args: Value) -> Result<String, Error> {
        Ok(self.run(cmd, args).await?.to_string())
    }
}

#[zbus::interface(name = "io.github.voxd.Assistant1")]
impl Assistant {
    /// Liveness: returns the control protocol version.
    async fn ping(&self, #[zbus(header)] header: Header<'_>) -> Result<u32, Error> {
        self.callers.check(&header).await?;
        let reply = self.run("ping", json!({})).await?;
        Ok(reply["protocol"].as_u64().unwrap_or_default() as u32)
    }

    /// The `status` command's result as JSON: version, uptime, profile,
    /// memory and budget, engines.
    async fn status(&self, #[zbus(header)] header: Header<'_>) -> Result<String, Error> {
        self.callers.check(&header).await?;
        self.run_json("status", json!({})).await
    }

    /// The effective configuration and each value's origin, as JSON.
    async fn config(&self, #[zbus(header)] header: Header<'_>) -> Result<String, Error> {
        self.callers.check(&header).await?;
        self.run_json("config", json!({})).await
    }

    /// Every model in the manifest with its install state, as JSON.
    async fn models(&self, #[zbus(header)] header: Header<'_>) -> Result<String, Error> {
        self.callers.check(&header).await?;
        self.run_json("models", json!({})).await
    }

    /// Every metric in the Prometheus/OpenMetrics text format.
    async fn metrics(&self, #[zbus(header)] header: Header<'_>) -> Result<String, Error> {
        self.callers.check(&header).await?;
        let reply = self.run("metrics", json!({})).await?;
        Ok(reply["text"].as_str().unwrap_or_default().to_owned())
    }

    /// Starts (preloads) engine `name` and waits until it is ready; returns
    /// its status as JSON.
    async fn start_engine(
        &self,
        #[zbus(header)] header: Header<'_>,
        name: String,
    ) -> Result<String, Error> {
        self.callers.check(&header).await?;
        self.run_json("engine", json!({ "name": name, "action": "start" }))
            .await
    }

    /// Stops engine `name`, freeing its memory; returns its status as JSON.
    async fn stop_engine(
        &self,
        #[zbus(header)] header: Header<'_>,
        name: String,
    ) -> Result<String, Error> {
        self.callers.check(&header).await?;
        self.run_json("engine", json!({ "name": name, "action": "stop" }))
            .await
    }

    /// Answers `question` from the notes (`ask`); returns the answer, its
    /// citations and mode as JSON. While the answer is written, each piece
    /// of it goes to the caller as an `AskToken` signal (and `AskReset`
    /// when streamed text is withdrawn), before the reply.
    async fn ask(
        &self,
        question: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<String, Error> {
        self.callers.check(&header).await?;
        // Only the caller hears its answer stream.
        let emitter = match header.sender() {
            Some(caller) => emitter.set_destination(caller.to_owned().into()),
            None => emitter,
        };
        let (events, mut stream) = mpsc::unbounded_channel();
        let answer = async {
            let request = Ask::new(question).into();
            let cancel = CancellationToken::new();
            let reply = self.ctx.assistant.ask(request, &events, &cancel).await;
            drop(events);
            reply
        };
        let forward = async {
            while let Some(event) = stream.recv().await {
                let sent = match &event {
                    AskEvent::Token(text) => Assistant::ask_token(&emitter, text).await,
                    AskEvent::Reset(reason) => Assistant::ask_reset(&emitter, reason.name()).await,
                };
                if let Err(e) = sent {
                    tracing::debug!(error = %e, "could not emit an ask signal");
                }
            }
        };
        let asked = async {
            let (reply, ()) = tokio::join!(answer, forward);
            serde_json::to_string(&AskResult::from(&reply?)).map_err(ApiError::internal)
        };
        Ok(commands::counted(&self.ctx.assistant, "ask", asked).await?)
    }

    /// Speaks `text` through the daemon's audio output (`say`) and returns
    /// when it has been spoken (or stopped), with the outcome as JSON.
    async fn say(&self, #[zbus(header)] header: Header<'_>, text: String) -> Result<String, Error> {
        self.callers.check(&header).await?;
        self.run_json("say", json!({ "text": text })).await
    }

    /// Stops speaking and clears the speech queue (`stop`); returns whether
    /// anything was speaking.
    async fn stop(&self, #[zbus(header)] header: Header<'_>) -> Result<bool, Error> {
        self.callers.check(&header).await?;
        let reply = self.run("stop", json!({})).await?;
        Ok(reply["stopped"].as_bool().unwrap_or_default())
    }

    /// Starts listening to the configured input (`listen start`); returns
    /// the listening status as JSON.
    async fn listen(&self, #[zbus(header)] header: Header<'_>) -> Result<String, Error> {
        self.callers.check(&header).await?;
        self.run_json("listen", json!({ "action": "start" })).await
    }

    /// Stops listening (`listen stop`); returns the status as JSON.
    async fn stop_listening(&self, #[zbus(header)] header: Header<'_>) -> Result<String, Error> {
        self.callers.check(&header).await?;
        self.run_json("listen", json!({ "action": "stop" })).await
    }

    /// Transcribes the WAV file at absolute `path` (`transcribe`); returns
    /// the text, segments and timings as JSON.
    async fn transcribe(
        &self,
        #[zbus(header)] header: Header<'_>,
        path: String,
    ) -> Result<String, Error> {
        self.callers.check(&header).await?;
        self.run_json("transcribe", json!({ "path": path })).await
    }

    /// Captions the image at absolute `path` (`caption`); returns the
    /// caption as JSON.
    async fn caption(
        &self,
        #[zbus(header)] header: Header<'_>,
        path: String,
    ) -> Result<String, Error> {
        self.callers.check(&header).await?;
        self.run_json("caption", json!({ "paths": [path] })).await
    }

    /// Loads the language model afresh (`reload`): the GGUF at absolute
    /// `model`, or the configured one when `model` is empty. Returns the
    /// model's info as JSON.
    async fn reload(
        &self,
        #[zbus(header)] header: Header<'_>,
        model: String,
    ) -> Result<String, Error> {
        self.callers.check(&header).await?;
        let model = Some(model).filter(|m| !m.is_empty());
        self.run_json("reload", json!({ "model": model })).await
    }

    /// Stops the daemon gracefully.
    async fn shutdown(&self, #[zbus(header)] header: Header<'_>) -> Result<(), Error> {
        self.callers.check(&header).await?;
        self.run("shutdown", json!({})).await.map(|_| ())
    }

    /// Any socket command by name, with its arguments as a JSON object
    /// (`""` for none); returns its result as JSON. Commands without a
    /// typed method yet are reachable this way.
    async fn call(
        &self,
        #[zbus(header)] header: Header<'_>,
        command: String,
        args: String,
    ) -> Result<String, Error> {
        self.callers.check(&header).await?;
        let args = if args.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&args).map_err(|e| {
                Error::invalid_params(format!("args is not JSON: {e} (use \"\" or an object)"))
            })?
        };
        self.run_json(&command, args).await
    }

    /// The hardware profile the daemon runs with (`tiny`, `2gb`, …).
    #[zbus(property(emits_changed_signal = "const"))]
    fn profile(&self) -> String {
        self.ctx.assistant.config.config.profile.to_string()
    }

    /// voxd's version.
    #[zbus(property(emits_changed_signal = "const"))]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_owned()
    }

    /// `running`, or `stopping` once shutdown has begun.
    #[zbus(property)]
    fn state(&self) -> String {
        if self.stopping || self.ctx.assistant.shutdown.is_cancelled() {
            "stopping".into()
        } else {
            "running".into()
        }
    }

    /// Whether the listening loop runs (`PropertiesChanged` is emitted on
    /// `listen.started` and `listen.stopped`).
    #[zbus(property)]
    fn listening(&self) -> bool {
        self.ctx.assistant.listener.status().listening
    }

    /// A wake word was heard (`wake.detected`): its name and score (0–1).
    #[zbus(signal)]
    async fn wake_detected(emitter: &SignalEmitter<'_>, name: &str, score: f64)
        -> zbus::Result<()>;

    /// A transcript (`transcript.partial` with `is_final` false,
    /// `transcript.final` with true).
    #[zbus(signal)]
    async fn transcript(
        emitter: &SignalEmitter<'_>,
        text: &str,
        is_final: bool,
    ) -> zbus::Result<()>;

    /// A sentence of a reply is being spoken (`speech.chunk`).
    #[zbus(signal)]
    async fn reply_chunk(
        emitter: &SignalEmitter<'_>,
        utterance: u64,
        text: &str,
    ) -> zbus::Result<()>;

    /// An image was captioned (`image.captioned`).
    #[zbus(signal)]
    async fn image_captioned(
        emitter: &SignalEmitter<'_>,
        path: &str,
        caption: &str,
    ) -> zbus::Result<()>;

    /// An engine changed state (`engine.state` event). `pid` is 0 while
    /// there is no worker process; `error` is empty unless it failed.
    #[zbus(signal)]
    async fn engine_state_changed(
        emitter: &SignalEmitter<'_>,
        engine: &str,
        state: &str,
        pid: u32,
        error: &str,
    ) -> zbus::Result<()>;

    /// A piece of the answer to the caller's `Ask`, as it is written.
    #[zbus(signal)]
    async fn ask_token(emitter: &SignalEmitter<'_>, text: &str) -> zbus::Result<()>;

    /// The text of the caller's `Ask` streamed so far is withdrawn
    /// (`reason`: `unsupported_replaced` or `llm_unavailable`); the
    /// replacement follows as `AskToken`s.
    #[zbus(signal)]
    async fn ask_reset(emitter: &SignalEmitter<'_>, reason: &str) -> zbus::Result<()>;

    /// Every daemon event, by its dotted name, with its data as JSON.
    #[zbus(signal)]
    async fn event(emitter: &SignalEmitter<'_>, name: &str, data: &str) -> zbus::Result<()>;
}

/// The running D-Bus service; [`Service::close`] it on shutdown.
pub struct Service {
    conn: zbus::Connection,
    bridge: JoinHandle<()>,
}

/// Connects to the bus `dbus.bus` names, serves the interface, owns
/// [`BUS_NAME`], and starts re-emitting events as signals. Returns `None`
/// (after a warning) when that is not possible: voxd keeps serving on its
/// socket.
pub async fn start(ctx: Arc<Context>) -> Option<Service> {
    let bus = ctx.assistant.config.config.dbus.bus;
    if bus == DbusBus::Off {
        return None;
    }
    match connect(bus, ctx.clone()).await {
        Ok(service) => {
            tracing::info!(bus = ?bus, name = BUS_NAME, path = OBJECT_PATH, "D-Bus interface ready");
            Some(service)
        }
        Err(e) => {
            tracing::warn!(
                bus = ?bus,
                error = %e,
                "no D-Bus interface (set dbus.bus = \"off\" to silence this); still serving on the control socket"
            );
            None
        }
    }
}

async fn connect(bus: DbusBus, ctx: Arc<Context>) -> zbus::Result<Service> {
    // Subscribe before the name is visible, so no event is missed.
    let events = ctx.assistant.events.subscribe();
    let builder = match bus {
        DbusBus::System => zbus::connection::Builder::system()?,
        _ => zbus::connection::Builder::session()?,
    };
    let callers = Arc::new(Callers::default());
    let conn = builder
        .serve_at(
            OBJECT_PATH,
            Assistant {
                ctx,
                callers: callers.clone(),
                stopping: false,
            },
        )?
        .name(BUS_NAME)?
        .build()
        .await?;
    callers.connected(conn.clone());
    let iface = conn
        .object_server()
        .interface::<_, Assistant>(OBJECT_PATH)
        .await?;
    let bridge = tokio::spawn(bridge(events, iface));
    Ok(Service { conn, bridge })
}

impl Service {
    /// Lets the last signals (`daemon.shutdown`) go out, then leaves the bus.
    pub async fn close(self) {
        if tokio::time::timeout(Duration::from_secs(2), self.bridge)
            .await
            .is_err()
        {
            tracing::warn!("D-Bus signals still pending at shutdown; dropping them");
        }
        // Emitting queues a signal; it may not be written yet. A call's
        // reply comes after everything sent before the call, so once the
        // bus answers one, the last signals are out.
        let flushed = async { zbus::fdo::DBusProxy::new(&self.conn).await?.get_id().await };
        if !matches!(
            tokio::time::timeout(Duration::from_secs(2), flushed).await,
            Ok(Ok(_))
        ) {
            tracing::warn!("the bus did not answer at shutdown; the last signals may be lost");
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.conn.graceful_shutdown()).await;
    }
}

/// Re-emits every event as signals until the daemon shuts down.
async fn bridge(
    mut events: tokio::sync::broadcast::Receiver<Event>,
    iface: InterfaceRef<Assistant>,
) {
    let emitter = iface.signal_emitter();
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(missed)) => {
                let data = json!({ "missed": missed }).to_string();
                if let Err(e) = Assistant::event(emitter, "events.lagged", &data).await {
                    tracing::debug!(error = %e, "could not emit a D-Bus signal");
                }
                continue;
            }
            Err(RecvError::Closed) => break,
        };
        if let Err(e) = emit(emitter, &iface, &event).await {
            tracing::debug!(event = event.name(), error = %e, "could not emit a D-Bus signal");
        }
        if matches!(event.get(), Some(AssistantEvent::Shutdown { .. })) {
            break;
        }
    }
}

/// Emits `event`'s own signal, if it has one, then the generic `Event`.
async fn emit(
    emitter: &SignalEmitter<'_>,
    iface: &InterfaceRef<Assistant>,
    event: &Event,
) -> zbus::Result<()> {
    let data = json!(event.data());
    if let Some(EngineEvent::State {
        engine, pid, error, ..
    }) = event.get()
    {
        let state = data["state"].as_str().unwrap_or_default();
        let error = error.as_deref().unwrap_or_default();
        Assistant::engine_state_changed(emitter, engine, state, pid.unwrap_or_default(), error)
            .await?
    } else if let Some(AssistantEvent::Shutdown { .. }) = event.get() {
        let mut assistant = iface.get_mut().await;
        assistant.stopping = true;
        assistant.state_changed(emitter).await?
    } else if let Some(ListenEvent::Started { .. } | ListenEvent::Stopped { .. }) = event.get() {
        iface.get().await.listening_changed(emitter).await?
    } else if let Some(ListenEvent::Wake { name, score, .. }) = event.get() {
        Assistant::wake_detected(emitter, name, f64::from(*score)).await?
    } else if let Some((text, is_final)) = transcript(event) {
        Assistant::transcript(emitter, text, is_final).await?
    } else if let Some(SpeechEvent::Chunk {
        utterance, text, ..
    }) = event.get()
    {
        Assistant::reply_chunk(emitter, *utterance, text).await?
    } else if let Some(ImageEvent::Captioned { path, caption, .. }) = event.get() {
        let path = path.to_string_lossy();
        Assistant::image_captioned(emitter, &path, caption).await?
    }
    Assistant::event(emitter, event.name(), &data.to_string()).await
}

/// A transcript's text, and whether it is final: the listener's, or a
/// `transcribe` request's.
fn transcript(event: &Event) -> Option<(&str, bool)> {
    match (event.get(), event.get()) {
        (Some(ListenEvent::Partial { text, .. }), _) => Some((text, false)),
        (Some(ListenEvent::Final { text, .. }), _) => Some((text, true)),
        (_, Some(AssistantEvent::Partial(partial))) => Some((&partial.text, false)),
        (_, Some(AssistantEvent::Transcribed { text, .. })) => Some((text, true)),
        _ => None,
    }
}
