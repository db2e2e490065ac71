//! The `cpal` sink: a sound device through cpal (ALSA on Linux, CoreAudio
//! on macOS), at the device's own rate and channel count; speech is
//! resampled to it with rubato and copied to every channel. The device
//! callback pulls from a queue that [`Sink::interrupter`] empties, so a
//! stop is heard within one device buffer.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};
use serde::Serialize;

use super::{AudioError, Interrupter, Sink, SinkOptions};

/// An output device as `voxd audio devices` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfo {
    /// What `audio.device` accepts.
    pub name: String,
    pub id: String,
    pub default: bool,
    pub sample_rate: Option<u32>,
    pub channels: Option<u16>,
    /// The default stream's sample format (`f32`, `i16`, ...).
    pub sample_format: Option<String>,
}

pub(super) fn device_name(device: &cpal::Device) -> String {
    device
        .description()
        .map(|d| d.name().to_string())
        .unwrap_or_default()
}

fn device_id(device: &cpal::Device) -> String {
    device.id().map(|id| id.to_string()).unwrap_or_default()
}

/// Capture or playback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Input,
    Output,
}

/// The output devices of the default host.
pub fn output_devices() -> Result<Vec<DeviceInfo>, AudioError> {
    devices(Direction::Output)
}

/// The input (capture) devices of the default host.
pub fn input_devices() -> Result<Vec<DeviceInfo>, AudioError> {
    devices(Direction::Input)
}

fn devices(direction: Direction) -> Result<Vec<DeviceInfo>, AudioError> {
    let host = cpal::default_host();
    let (default, devices) = match direction {
        Direction::Input => (host.default_input_device(), host.input_devices()),
        Direction::Output => (host.default_output_device(), host.output_devices()),
    };
    let default_id = default.map(|d| device_id(&d));
    let devices = devices.map_err(|e| AudioError::Device(e.to_string()))?;
    Ok(devices
        .map(|d| {
            let config = match direction {
                Direction::Input => d.default_input_config(),
                Direction::Output => d.default_output_config(),
            }
            .ok();
            let id = device_id(&d);
            DeviceInfo {
                name: device_name(&d),
                default: default_id.as_deref() == Some(id.as_str()),
                id,
                sample_rate: config.as_ref().map(|c| c.sample_rate()),
                channels: config.as_ref().map(|c| c.channels()),
                sample_format: config.as_ref().map(|c| c.sample_format().to_string()),
            }
        })
        .collect())
}

/// The device called `name` (by name or id), or the default one when
/// `name` is empty.
pub(super) fn find_device(name: &str, direction: Direction) -> Result<cpal::Device, AudioError> {
    let host = cpal::default_host();
    let missing = |message: String| AudioError::NoDevice {
        device: name.to_string(),
        message,
    };
    let (default, devices, what) = match direction {
        Direction::Input => (host.default_input_device(), host.input_devices(), "input"),
        Direction::Output => (
            host.default_output_device(),
            host.output_devices(),
            "output",
        ),
    };
    if name.is_empty() {
        return default.ok_or_else(|| missing(format!("the system has no default {what}")));
    }
    let mut devices = devices.map_err(|e| missing(e.to_string()))?;
    devices
        .find(|d| device_name(d) == name || device_id(d) == name)
        .ok_or_else(|| missing(format!("not among the {what} devices")))
}

type Queue = Arc<Mutex<VecDeque<f32>>>;

pub struct DeviceSink {
    _stream: cpal::Stream,
    queue: Queue,
    rate: u32,
}

pub fn open(options: &SinkOptions) -> Result<Box<dyn Sink>, AudioError> {
    let device = find_device(options.device, Direction::Output)?;
    let supported = device
        .default_output_config()
        .map_err(|e| AudioError::NoDevice {
            device: options.device.to_string(),
            message: e.to_string(),
        })?;
    let config = supported.config();
    let queue: Queue = Arc::default();
    let stream = match supported.sample_format() {
        SampleFormat::F32 => build::<f32>(&device, &config, queue.clone()),
        SampleFormat::I16 => build::<i16>(&device, &config, queue.clone()),
        SampleFormat::U16 => build::<u16>(&device, &config, queue.clone()),
        SampleFormat::I32 => build::<i32>(&device, &config, queue.clone()),
        other => Err(AudioError::Device(format!(
            "sample format {other} is not supported"
        ))),
    }?;
    stream
        .play()
        .map_err(|e| AudioError::Device(e.to_string()))?;
    tracing::info!(
        device = %device_name(&device),
        rate = config.sample_rate,
        channels = config.channels,
        "audio output open"
    );
    Ok(Box::new(DeviceSink {
        _stream: stream,
        queue,
        rate: config.sample_rate,
    }))
}

fn build<T: SizedSample + FromSample<f32>>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    queue: Queue,
) -> Result<cpal::Stream, AudioError> {
    let channels = usize::from(config.channels.max(1));
    device
        .build_output_stream::<T, _, _>(
            *config,
            move |data: &mut [T], _| {
                let mut queue = queue.lock().unwrap_or_else(|e| e.into_inner());
                for frame in data.chunks_mut(channels) {
                    let sample = T::from_sample(queue.pop_front().unwrap_or(0.0));
                    frame.fill(sample);
                }
            },
            |e| tracing::warn!(error = %e, "audio output error"),
            None,
        )
        .map_err(|e| AudioError::Device(e.to_string()))
}

impl Sink for DeviceSink {
    fn write(&mut self, samples: &[f32], rate: u32) -> Result<(), AudioError> {
        let samples = super::resample(samples, rate, self.rate)?;
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(samples);
        Ok(())
    }

    fn drain(&mut self, cancelled: &dyn Fn() -> bool) -> Result<(), AudioError> {
        loop {
            if cancelled() {
                (self.interrupter())();
                return Ok(());
            }
            if self
                .queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn interrupter(&self) -> Interrupter {
        let queue = self.queue.clone();
        Arc::new(move || queue.lock().unwrap_or_else(|e| e.into_inner()).clear())
    }
}
