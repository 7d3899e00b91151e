//! Prompts: audio encoded once for both codecs, shared by every call that plays it.

use std::time::Duration;

use super::g711::Codec;

/// Samples per millisecond at 8 kHz.
pub(super) const PER_MS: u32 = 8;

/// A prompt encoded once for both codecs.
#[derive(Debug)]
pub struct Prompt {
    pcmu: Vec<u8>,
    pcma: Vec<u8>,
}

impl Prompt {
    pub fn new(pcm8k: &[i16]) -> Prompt {
        Prompt {
            pcmu: Codec::Pcmu.encode(pcm8k),
            pcma: Codec::Pcma.encode(pcm8k),
        }
    }

    pub(super) fn bytes(&self, codec: Codec) -> &[u8] {
        match codec {
            Codec::Pcmu => &self.pcmu,
            Codec::Pcma => &self.pcma,
        }
    }

    /// No samples: played at once (reported, never sent).
    pub(super) fn is_empty(&self) -> bool {
        self.pcmu.is_empty()
    }

    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.pcmu.len() as u64 * 1000 / PER_MS as u64)
    }
}
