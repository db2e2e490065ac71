//! The `cpal` source: a capture device through cpal (ALSA on Linux), at the
//! device's own rate, format and channel count, converted to 16 kHz mono.
//! The device callback only copies samples into a bounded channel. When the device
//! fails (unplugged, or its sound server gone), the source publishes `listen.device` `{"state":
//! "lost"}`, delivers silence-free empty reads, tries to reopen it every
//! second, and publishes `{"state": "restored"}` when it is back.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{SampleFormat, SizedSample};
use serde::Serialize;

use super::{Source, SourceOptions, To16k};
use crate::audio::device::{device_name, find_device, Direction};
use crate::audio::AudioError;
use crate::events::{Events, Observed};

/// How often a lost device is looked for.
const RETRY: Duration = Duration::from_secs(1);

/// What the device callbacks send.
enum Captured {
    Samples(Vec<f32>),
    Failed(String),
}

/// Device buffers queued between the callback and the listener. When the
/// listener falls this far behind, the callback waits (the device then
/// overruns and drops audio itself, or, unpaced like ALSA's null device,
/// is paced by the listener): memory stays bounded either way.
const QUEUE: usize = 256;

struct Open {
    // Dropped before the stream, so a callback waiting to send is released.
    rx: mpsc::Receiver<Captured>,
    _stream: cpal::Stream,
    conv: To16k,
    name: String,
}

pub struct MicSource {
    device: String,
    events: Events,
    open: Option<Open>,
    lost_since: Option<Instant>,
    last_try: Instant,
}

pub fn open(options: &SourceOptions) -> Result<Box<dyn Source>, AudioError> {
    let open = open_device(options.device)?;
    tracing::info!(device = %open.name, "audio input open");
    Ok(Box::new(MicSource {
        device: options.device.to_string(),
        events: options.events.clone(),
        open: Some(open),
        lost_since: None,
        last_try: Instant::now(),
    }))
}

fn open_device(name: &str) -> Result<Open, AudioError> {
    let device = find_device(name, Direction::Input).map_err(|e| match e {
        AudioError::NoDevice { device, message } => AudioError::NoInputDevice { device, message },
        other => other,
    })?;
    let supported = device
        .default_input_config()
        .map_err(|e| AudioError::NoInputDevice {
            device: name.to_string(),
            message: e.to_string(),
        })?;
    let config = supported.config();
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    let stream = match supported.sample_format() {
        SampleFormat::F32 => build::<f32>(&device, &config, tx),
        SampleFormat::I16 => build::<i16>(&device, &config, tx),
        SampleFormat::U16 => build::<u16>(&device, &config, tx),
        SampleFormat::I32 => build::<i32>(&device, &config, tx),
        other => Err(AudioError::Device(format!(
            "sample format {other} is not supported"
        ))),
    }?;
    stream
        .play()
        .map_err(|e| AudioError::Device(e.to_string()))?;
    Ok(Open {
        rx,
        _stream: stream,
        conv: To16k::new(config.sample_rate, config.channels)?,
        name: device_name(&device),
    })
}

fn build<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    tx: mpsc::SyncSender<Captured>,
) -> Result<cpal::Stream, AudioError>
where
    T: SizedSample,
    f32: cpal::FromSample<T>,
{
    let errors = tx.clone();
    device
        .build_input_stream::<T, _, _>(
            *config,
            move |data: &[T], _| {
                let samples = data.iter().map(|s| cpal::Sample::to_sample::<f32>(*s));
                let _ = tx.send(Captured::Samples(samples.collect()));
            },
            move |e: cpal::Error| {
                use cpal::ErrorKind::*;
                match e.kind() {
                    // Survivable: cpal recovers the stream itself.
                    Xrun | DeviceBusy | DeviceChanged | RealtimeDenied => {
                        tracing::warn!(error = %e, "audio input error");
                    }
                    // A vanished device, or a failing one (a sound server
                    // that went away reads as an I/O error, again and
                    // again): reopened once it works.
                    _ => {
                        let _ = errors.try_send(Captured::Failed(e.to_string()));
                    }
                }
            },
            None,
        )
        .map_err(|e| AudioError::Device(e.to_string()))
}

impl MicSource {
    fn publish(&self, change: DeviceChange) {
        self.events.publish(DeviceEvent {
            device: self.device.clone(),
            change,
        });
    }

    fn lose(&mut self, error: String) {
        tracing::warn!(device = %self.device, %error, "audio input lost; retrying every second");
        self.open = None;
        self.lost_since = Some(Instant::now());
        self.last_try = Instant::now();
        self.publish(DeviceChange::Lost { error });
    }
}

impl Source for MicSource {
    fn read(&mut self, timeout: Duration) -> Result<Vec<f32>, AudioError> {
        let Some(open) = self.open.as_mut() else {
            if self.last_try.elapsed() >= RETRY {
                self.last_try = Instant::now();
                if let Ok(open) = open_device(&self.device) {
                    let lost_ms = self
                        .lost_since
                        .take()
                        .map_or(0, |t| t.elapsed().as_millis() as u64);
                    tracing::info!(device = %open.name, "audio input restored");
                    self.open = Some(open);
                    self.publish(DeviceChange::Restored { lost_ms });
                    return Ok(Vec::new());
                }
            }
            std::thread::sleep(timeout.min(RETRY));
            return Ok(Vec::new());
        };
        let first = match open.rx.recv_timeout(timeout) {
            Ok(c) => c,
            Err(mpsc::RecvTimeoutError::Timeout) => return Ok(Vec::new()),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.lose("the capture stream ended".into());
                return Ok(Vec::new());
            }
        };
        let mut batch = vec![first];
        batch.extend(std::iter::from_fn(|| open.rx.try_recv().ok()));
        let mut out = Vec::new();
        for captured in batch {
            match captured {
                Captured::Samples(s) => out.extend(open.conv.push(&s)?),
                Captured::Failed(error) => {
                    self.lose(error);
                    break;
                }
            }
        }
        Ok(out)
    }

    fn describe(&self) -> String {
        match &self.open {
            Some(open) => format!("cpal: {}", open.name),
            None => format!("cpal: {} (lost)", self.device),
        }
    }
}

/// `listen.device`: the input device was lost, or is back.
#[derive(Debug, Clone, Serialize)]
struct DeviceEvent {
    device: String,
    #[serde(flatten)]
    change: DeviceChange,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
enum DeviceChange {
    Lost { error: String },
    Restored { lost_ms: u64 },
}

impl Observed for DeviceEvent {
    fn name(&self) -> &'static str {
        "listen.device"
    }
}
