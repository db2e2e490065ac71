//! Utterance endpointing: turns the VAD's per-frame speech probabilities
//! into speech segments. A segment opens at the first frame at or above
//! the threshold, counts as speech once it has lasted the minimum speech
//! time, stays open while frames stay above the lower (hysteresis)
//! threshold, and closes after the hangover of silence. Pure logic over
//! frame indices: no audio, no clock.

/// Endpointing parameters, in VAD frames.
#[derive(Debug, Clone, Copy)]
pub struct EndpointSettings {
    pub threshold: f32,
    pub neg_threshold: f32,
    pub min_speech_frames: u64,
    pub hangover_frames: u64,
}

/// What a frame changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// A segment that began at frame `onset` has lasted the minimum speech.
    Start { onset: u64 },
    /// The segment ended: `end` is the frame after its last speech frame.
    End { onset: u64, end: u64 },
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    onset: u64,
    /// Frame after the last speech frame.
    last_speech: u64,
    confirmed: bool,
}

/// Frames a restarted endpointer waits for a pause before it opens a
/// segment anyway (speech that runs on without one).
const RESTART_GRACE: u64 = 10;

/// The endpointer's state.
#[derive(Debug)]
pub struct Endpointer {
    settings: EndpointSettings,
    segment: Option<Segment>,
    frame: u64,
    /// After [`Endpointer::restart`]: frames left to wait for a non-speech
    /// frame, so the tail of the speech before it opens no segment.
    settling: Option<u64>,
}

impl Endpointer {
    pub fn new(settings: EndpointSettings) -> Endpointer {
        Endpointer {
            settings,
            segment: None,
            frame: 0,
            settling: None,
        }
    }

    /// The onset of a segment that has lasted the minimum speech and has
    /// not ended.
    pub fn speaking_since(&self) -> Option<u64> {
        self.segment.filter(|s| s.confirmed).map(|s| s.onset)
    }

    /// In a segment that has lasted the minimum speech and has not ended:
    /// the frame after its last speech frame (where it ends if no speech
    /// follows), and the frames of silence since (0 while speech goes on).
    pub fn pause(&self) -> Option<(u64, u64)> {
        self.segment
            .filter(|s| s.confirmed)
            .map(|s| (s.last_speech, self.frame - s.last_speech))
    }

    /// Drops the open segment. A new one opens at the first speech frame
    /// after a pause (a frame below the lower threshold), or, if the speech
    /// runs on without one, after 320 ms of it.
    pub fn restart(&mut self) {
        self.segment = None;
        self.settling = Some(RESTART_GRACE);
    }

    /// Takes the next frame's speech probability.
    pub fn push(&mut self, probability: f32) -> Option<Boundary> {
        let frame = self.frame;
        self.frame += 1;
        let s = self.settings;
        if let Some(left) = self.settling {
            self.settling = (probability >= s.neg_threshold && left > 1).then(|| left - 1);
            if probability < s.neg_threshold || left > 1 {
                return None;
            }
        }
        let Some(segment) = self.segment.as_mut() else {
            if probability >= s.threshold {
                self.segment = Some(Segment {
                    onset: frame,
                    last_speech: frame + 1,
                    confirmed: s.min_speech_frames <= 1,
                });
                return (s.min_speech_frames <= 1).then_some(Boundary::Start { onset: frame });
            }
            return None;
        };
        if probability >= s.neg_threshold {
            segment.last_speech = frame + 1;
            if !segment.confirmed && frame + 1 - segment.onset >= s.min_speech_frames {
                segment.confirmed = true;
                return Some(Boundary::Start {
                    onset: segment.onset,
                });
            }
            return None;
        }
        if frame + 1 - segment.last_speech >= s.hangover_frames {
            let ended = *segment;
            self.segment = None;
            return ended.confirmed.then_some(Boundary::End {
                onset: ended.onset,
                end: ended.last_speech,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(probabilities: &[f32]) -> Vec<Boundary> {
        let mut e = Endpointer::new(EndpointSettings {
            threshold: 0.5,
            neg_threshold: 0.35,
            min_speech_frames: 3,
            hangover_frames: 4,
        });
        probabilities.iter().filter_map(|&p| e.push(p)).collect()
    }

    #[test]
    fn a_segment_needs_min_speech_and_ends_after_the_hangover() {
        // Frames 2..8 speech (one dip to 0.4 kept by hysteresis), then silence.
        let p = [
            0.0, 0.1, 0.9, 0.8, 0.4, 0.9, 0.7, 0.6, 0.1, 0.2, 0.1, 0.0, 0.0, 0.0,
        ];
        assert_eq!(
            run(&p),
            [
                Boundary::Start { onset: 2 },
                Boundary::End { onset: 2, end: 8 }
            ]
        );
    }

    #[test]
    fn a_pause_is_counted_from_the_last_speech_frame() {
        let mut e = Endpointer::new(EndpointSettings {
            threshold: 0.5,
            neg_threshold: 0.35,
            min_speech_frames: 2,
            hangover_frames: 4,
        });
        let mut pauses = Vec::new();
        for p in [0.9, 0.9, 0.9, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1, 0.1] {
            e.push(p);
            pauses.push(e.pause());
        }
        // Confirmed at frame 1; speech to frame 2, a pause, speech at 5, then
        // a pause that ends the segment after the hangover (frame 9).
        assert_eq!(
            pauses,
            [
                None,
                Some((2, 0)),
                Some((3, 0)),
                Some((3, 1)),
                Some((3, 2)),
                Some((6, 0)),
                Some((6, 1)),
                Some((6, 2)),
                Some((6, 3)),
                None,
            ]
        );
    }

    #[test]
    fn a_restart_waits_for_a_pause_or_the_grace() {
        let settings = EndpointSettings {
            threshold: 0.5,
            neg_threshold: 0.35,
            min_speech_frames: 2,
            hangover_frames: 4,
        };
        // The tail of earlier speech, a pause, new speech at frame 3.
        let mut e = Endpointer::new(settings);
        e.restart();
        let got: Vec<_> = [0.9, 0.8, 0.1, 0.9, 0.9]
            .iter()
            .filter_map(|&p| e.push(p))
            .collect();
        assert_eq!(got, [Boundary::Start { onset: 3 }]);
        // Speech that never pauses opens a segment after the grace.
        let mut e = Endpointer::new(settings);
        e.restart();
        let got: Vec<_> = std::iter::repeat_n(0.9, 14)
            .filter_map(|p| e.push(p))
            .collect();
        assert_eq!(
            got,
            [Boundary::Start {
                onset: RESTART_GRACE - 1
            }]
        );
    }

    #[test]
    fn short_noises_and_short_pauses_are_not_boundaries() {
        // A two-frame click: no segment.
        assert!(run(&[0.9, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0]).is_empty());
        // A three-frame pause inside speech (hangover is 4): one segment.
        let p = [0.9, 0.9, 0.9, 0.0, 0.0, 0.0, 0.9, 0.9, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(
            run(&p),
            [
                Boundary::Start { onset: 0 },
                Boundary::End { onset: 0, end: 8 }
            ]
        );
    }
}
