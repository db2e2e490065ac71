//! `voxd serve`, the composition root: start-up (private socket directory,
//! single-instance lock, stale socket clean-up), building the services and
//! the [`Assistant`] over them, opening every door, signal handling and
//! graceful shutdown. Owns the daemon's lifetime; the work itself is done
//! by the assistant, its services and the doors.
//!
//! Shutdown runs one way: the shutdown token is cancelled (a signal, the
//! `shutdown` command); every door stops taking work and gets
//! `daemon.shutdown_grace_secs` for its requests in flight (the socket's
//! connections, and one [`TaskTracker`] for the HTTP and Wyoming doors,
//! the voice loop and the image watchers); then D-Bus leaves the bus, listening stops and
//! the engines stop last.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::assistant::{commands, voice_loop, Assistant, AssistantEvent, Services};
use crate::config::Loaded;
use crate::conversation::History;
use crate::doors::commands::Context;
use crate::doors::socket::{paths, Server};
use crate::doors::{dbus, http, wyoming};
use crate::engine;
use crate::events::Events;
use crate::metrics::Metrics;
use crate::rag::Rag;
use crate::service::notify;
use crate::vision;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("voxd is already running (pid {pid}) with its socket at {socket}; stop it with `voxd shutdown` first")]
    AlreadyRunning { pid: String, socket: PathBuf },
    #[error("cannot prepare the socket directory {path}: {source}")]
    SocketDir { path: PathBuf, source: io::Error },
    #[error("cannot take the instance lock {path}: {source}")]
    Lock { path: PathBuf, source: io::Error },
    #[error("cannot listen on {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
    #[error("image captions: {0}")]
    Vision(String),
    #[error("cannot install signal handlers: {0}")]
    Signals(io::Error),
    #[error(transparent)]
    Http(#[from] http::HttpError),
    #[error(transparent)]
    Wyoming(#[from] wyoming::BindError),
    #[error("the language model: {0}")]
    Llm(#[from] crate::llm::LlmError),
}

/// Events kept for subscribers that fall behind.
const EVENT_BACKLOG: usize = 1024;

/// Runs the daemon until SIGTERM, SIGINT or the `shutdown` command, then
/// shuts down gracefully: stop accepting, let in-flight requests finish
/// (up to `daemon.shutdown_grace_secs`), stop the engine workers, leave
/// D-Bus, remove the socket. Under systemd (`Type=notify`) it reports
/// READY, WATCHDOG, STATUS and STOPPING (see [`notify`]).
pub async fn serve(config: Loaded) -> Result<(), DaemonError> {
    let started = Instant::now();
    raise_fd_limit();
    let socket = paths::socket_path(&config.config.daemon);
    let custom_socket = !config.config.daemon.socket.as_os_str().is_empty();
    prepare_dir(&socket, custom_socket)?;
    let _lock = InstanceLock::acquire(&socket)?;
    let http = http::bind(&config.config).await?;
    let wyoming_listener = wyoming::bind(&config.config.wyoming).await?;
    let listener = bind(&socket)?;

    let assistant = Arc::new(Assistant::new(services(config)?));
    let ctx = Arc::new(Context {
        assistant: assistant.clone(),
        socket: socket.clone(),
        http: http.as_ref().map(|bound| bound.addr),
        wyoming: wyoming_listener.as_ref().map(wyoming::Listener::uri),
        utterances: Default::default(),
    });
    spawn_signal_handler(assistant.clone())?;
    let dbus = dbus::start(ctx.clone()).await;
    let tasks = TaskTracker::new();
    if let Some(bound) = http {
        tracing::info!(addr = %bound.addr, "HTTP API: /v1 (OpenAI), /api (Ollama), /health, /metrics");
        tasks.spawn(http::serve(bound, ctx.clone()));
    }
    let cfg = &assistant.config.config;
    if let Some(listener) = wyoming_listener {
        tasks.spawn(wyoming::serve(
            listener,
            assistant.clone(),
            cfg.wyoming.clone(),
        ));
    }
    if cfg.assistant.voice_loop {
        tasks.spawn(voice_loop::run(assistant.clone()));
    }
    tasks.spawn(vision::service::unload_when_idle(
        assistant.vision.clone(),
        assistant.shutdown.clone(),
    ));
    let watch = vision::watch::WatchSettings::from_config(&cfg.vision);
    if !watch.folders.is_empty() {
        let watcher =
            vision::watch::spawn(assistant.vision.clone(), watch, assistant.shutdown.clone())
                .map_err(|e| DaemonError::Vision(e.to_string()))?;
        tasks.spawn(async move {
            let _ = watcher.await;
        });
    }
    if let Some(watcher) =
        commands::watch::spawn(assistant.commands().clone(), assistant.shutdown.clone())
    {
        tasks.spawn(async move {
            let _ = watcher.await;
        });
    }
    tasks.close();

    let grace = Duration::from_secs(cfg.daemon.shutdown_grace_secs);
    tracing::info!(
        socket = %socket.display(),
        profile = %cfg.profile,
        pid = std::process::id(),
        startup_ms = started.elapsed().as_millis() as u64,
        "voxd ready"
    );
    assistant.events.publish(AssistantEvent::Ready {
        pid: std::process::id(),
    });
    let manager = notify::ServiceManager::ready(&socket, dbus.is_some(), &assistant.shutdown);
    assistant.listener.start_if_configured();
    Server::new(listener, ctx.clone()).run(grace).await;
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        tracing::warn!("the voice loop or an HTTP request still busy after {grace:?}; stopping");
    }
    if let Some(dbus) = dbus {
        dbus.close().await;
    }
    assistant.listener.stop().await;
    assistant.engines.shutdown().await;
    manager.stop();

    if let Err(e) = fs::remove_file(&socket) {
        tracing::warn!(socket = %socket.display(), error = %e, "could not remove the socket");
    }
    tracing::info!("voxd stopped");
    Ok(())
}

/// The domain services, each given the handles it needs.
fn services(config: Loaded) -> Result<Services, DaemonError> {
    let events = Events::new(EVENT_BACKLOG);
    let metrics = Metrics::new();
    let engines = engine::Host::new(
        &config.config.engines,
        events.clone(),
        engine::Host::sizes_file(),
    );
    // Always present: with no model installed (or no backend reachable) it
    // answers an error, which `ask` turns into the extractive fallback
    // (auto) or a clear error, and `reload` picks up a model pulled while
    // the daemon runs.
    let llm = crate::llm::from_config(engines.clone(), &config.config)?;
    let speaker =
        crate::speak::Speaker::new(&config.config, events.clone(), metrics.pipeline.clone());
    let shutdown = CancellationToken::new();
    let rag = Rag::start(
        &config.config,
        events.clone(),
        shutdown.clone(),
        metrics.pipeline.clone(),
    );
    let history_path = crate::rag::data_file(&config.config.conversation.history, "history.sqlite");
    let retention = config.config.conversation.retention_days;
    let history = History::open(&history_path)
        .and_then(|h| h.keep_days(retention))
        .map(Arc::new)
        .map_err(|e| {
            tracing::error!(error = %e, "session history unavailable");
            e.to_string()
        });
    let vision = start_vision(&config, &events, &rag, &metrics)?;
    let stt: Arc<dyn crate::stt::Stt> = Arc::new(crate::stt::LocalStt::new(
        engines.clone(),
        config.config.clone(),
    ));
    let listener =
        crate::listen::Listener::new(&config.config, events.clone(), stt.clone(), speaker.clone());
    Ok(Services {
        config,
        events,
        engines,
        speaker,
        listener,
        stt,
        llm,
        rag,
        history,
        vision,
        metrics,
        shutdown,
    })
}

/// The captioning service, with the RAG index as its caption sink. The
/// index is brought in step with the image store in the background (it may
/// have been rebuilt, or changed while voxd was down); that job is queued
/// before any change the watcher makes, and reads the store when it runs.
fn start_vision(
    config: &Loaded,
    events: &Events,
    rag: &Arc<Rag>,
    metrics: &Metrics,
) -> Result<Arc<vision::Vision>, DaemonError> {
    let settings = vision::service::Settings::from_config(&config.config)
        .map_err(|e| DaemonError::Vision(e.to_string()))?;
    let sink: Arc<dyn vision::CaptionSink> = rag.clone();
    let vision = vision::Vision::open(settings, events.clone(), Some(sink))
        .map(|v| Arc::new(v.with_metrics(metrics.pipeline.clone())))
        .map_err(|e| DaemonError::Vision(e.to_string()))?;
    let store = vision.clone();
    rag.sync_captions(move || store.documents().map_err(|e| e.to_string()));
    Ok(vision)
}

fn prepare_dir(socket: &Path, custom_socket: bool) -> Result<(), DaemonError> {
    let dir = socket.parent().unwrap_or(Path::new("."));
    let result = if custom_socket && dir.exists() {
        Ok(()) // the user's own choice of directory; the socket itself is 0600
    } else {
        paths::prepare_private_dir(dir)
    };
    result.map_err(|source| DaemonError::SocketDir {
        path: dir.to_path_buf(),
        source,
    })
}

fn bind(socket: &Path) -> Result<UnixListener, DaemonError> {
    // We hold the instance lock, so a socket file here was left by a voxd
    // that died without cleaning up.
    if fs::symlink_metadata(socket).is_ok() {
        tracing::info!(socket = %socket.display(), "removing a stale socket left by a previous voxd");
        let _ = fs::remove_file(socket);
    }
    let bind_err = |source| DaemonError::Bind {
        path: socket.to_path_buf(),
        source,
    };
    let listener = UnixListener::bind(socket).map_err(bind_err)?;
    fs::set_permissions(socket, fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
    Ok(listener)
}

fn spawn_signal_handler(assistant: Arc<Assistant>) -> Result<(), DaemonError> {
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => assistant.begin_shutdown("SIGTERM"),
            _ = int.recv() => assistant.begin_shutdown("SIGINT"),
            _ = assistant.shutdown.cancelled() => {}
        }
    });
    Ok(())
}

/// An exclusive `flock` on `<socket>.lock`, held for the daemon's life; the
/// kernel releases it when the process dies, however it dies.
struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    fn acquire(socket: &Path) -> Result<InstanceLock, DaemonError> {
        let path = paths::lock_path(socket);
        let lock_err = |source| DaemonError::Lock {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(lock_err)?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(DaemonError::AlreadyRunning {
                    pid: pid.trim().to_string(),
                    socket: socket.to_path_buf(),
                });
            }
            Err(e) => return Err(lock_err(e.into())),
        }
        file.set_len(0).map_err(lock_err)?;
        file.rewind().map_err(lock_err)?;
        writeln!(file, "{}", std::process::id()).map_err(lock_err)?;
        Ok(InstanceLock { _file: file })
    }
}

/// Raises the soft limit on open files to the hard one (often 1,024 of
/// 524,288): every door caps its connections well below it, so that
/// clients of one door cannot starve the others, or the engines' pipes
/// and the stores, of descriptors.
fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(error = %e, "could not raise the open-file limit");
        }
    }
}
