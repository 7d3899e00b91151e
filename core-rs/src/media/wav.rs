//! WAV files to the engine's audio: 8 kHz, mono, 16-bit linear PCM.
//!
//! Reads RIFF/WAVE with PCM samples of 8, 16, 24 or 32 bits (format 1, or 0xFFFE with a PCM
//! sub-format), G.711 u-law (7) and A-law (6), any rate and channel count; mixes to mono and
//! resamples with a windowed-sinc low-pass (Blackman window, cut-off at 0.45 of the lower rate).

use super::g711;
use crate::{Error, Result};

/// The engine's sample rate (G.711).
pub const RATE: u32 = 8000;

fn bad(why: impl Into<String>) -> Error {
    Error::invalid("wav", why.into())
}

/// Decode a WAV file into 8 kHz mono samples.
pub fn to_pcm8k(data: &[u8]) -> Result<Vec<i16>> {
    let (rate, mono) = decode(data)?;
    Ok(resample(&mono, rate, RATE))
}

/// Decode a WAV file: its sample rate and its samples mixed to mono.
pub fn decode(data: &[u8]) -> Result<(u32, Vec<i16>)> {
    if data.len() < 12 || &data[0..4] != b"RIFF" || &data[8..12] != b"WAVE" {
        return Err(bad("not a RIFF/WAVE file"));
    }
    let mut at = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while at + 8 <= data.len() {
        let id = &data[at..at + 4];
        let declared =
            u32::from_le_bytes([data[at + 4], data[at + 5], data[at + 6], data[at + 7]]) as usize;
        let body = &data[at + 8..];
        // A streamed WAV (espeak-ng --stdout) declares a data size it cannot know: take what is there.
        let size = declared.min(body.len());
        let chunk = &body[..size];
        match id {
            b"fmt " => {
                if size < 16 {
                    return Err(bad("fmt chunk too short"));
                }
                let mut format = u16::from_le_bytes([chunk[0], chunk[1]]);
                let channels = u16::from_le_bytes([chunk[2], chunk[3]]);
                let rate = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
                let bits = u16::from_le_bytes([chunk[14], chunk[15]]);
                if format == 0xFFFE && size >= 26 {
                    format = u16::from_le_bytes([chunk[24], chunk[25]]); // the sub-format GUID's first bytes
                }
                if channels == 0 || !(1000..=384_000).contains(&rate) {
                    return Err(bad(format!("{channels} channels at {rate} Hz")));
                }
                fmt = Some((format, channels, rate, bits));
            }
            b"data" => {
                let (format, channels, rate, bits) =
                    fmt.ok_or_else(|| bad("data chunk before fmt chunk"))?;
                return Ok((rate, samples(chunk, format, channels as usize, bits)?));
            }
            _ => {}
        }
        at += 8 + size + (size & 1);
    }
    Err(bad("no data chunk"))
}

fn samples(chunk: &[u8], format: u16, channels: usize, bits: u16) -> Result<Vec<i16>> {
    let width = match (format, bits) {
        (1, 8 | 16 | 24 | 32) => bits as usize / 8,
        (6 | 7, 8) => 1,
        _ => {
            return Err(bad(format!(
                "format {format} with {bits}-bit samples is not supported"
            )))
        }
    };
    let one = |b: &[u8]| -> i32 {
        match (format, width) {
            (7, _) => g711::ulaw_to_linear(b[0]) as i32,
            (6, _) => g711::alaw_to_linear(b[0]) as i32,
            (_, 1) => (b[0] as i32 - 128) << 8,
            (_, 2) => i16::from_le_bytes([b[0], b[1]]) as i32,
            (_, 3) => i16::from_le_bytes([b[1], b[2]]) as i32,
            _ => i16::from_le_bytes([b[2], b[3]]) as i32,
        }
    };
    let frame = width * channels;
    Ok(chunk
        .chunks_exact(frame)
        .map(|f| {
            let sum: i32 = f.chunks_exact(width).map(one).sum();
            (sum / channels as i32) as i16
        })
        .collect())
}

/// Resample `x` from `from` Hz to `to` Hz (windowed sinc; 8 zero crossings each side).
pub fn resample(x: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || x.is_empty() {
        return x.to_vec();
    }
    let ratio = to as f64 / from as f64;
    let cutoff = 0.45 * ratio.min(1.0); // in cycles per input sample
    let half = (8.0 / (2.0 * cutoff)).ceil() as i64; // input samples each side
    let n_out = ((x.len() as f64) * ratio).floor() as usize;
    let mut out = Vec::with_capacity(n_out);
    for n in 0..n_out {
        let p = n as f64 / ratio;
        let centre = p.floor() as i64;
        let (mut acc, mut norm) = (0.0f64, 0.0f64);
        for k in (centre - half + 1)..=(centre + half) {
            let t = p - k as f64;
            let w = t / half as f64; // -1..1
            if w.abs() >= 1.0 {
                continue;
            }
            let arg = 2.0 * cutoff * t;
            let sinc = if arg == 0.0 {
                1.0
            } else {
                (std::f64::consts::PI * arg).sin() / (std::f64::consts::PI * arg)
            };
            let a = std::f64::consts::PI * (w + 1.0);
            let blackman = 0.42 - 0.5 * a.cos() + 0.08 * (2.0 * a).cos();
            let h = sinc * blackman;
            norm += h;
            if k >= 0 && (k as usize) < x.len() {
                acc += h * x[k as usize] as f64;
            }
        }
        let y = if norm != 0.0 { acc / norm } else { 0.0 };
        out.push(y.round().clamp(i16::MIN as f64, i16::MAX as f64) as i16);
    }
    out
}

/// A minimal 16-bit mono PCM WAV file (used by tests and to cache rendered prompts).
pub fn encode(rate: u32, pcm: &[i16]) -> Vec<u8> {
    let data = pcm.len() as u32 * 2;
    let mut w = Vec::with_capacity(44 + data as usize);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&rate.to_le_bytes());
    w.extend_from_slice(&(rate * 2).to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data.to_le_bytes());
    for s in pcm {
        w.extend_from_slice(&s.to_le_bytes());
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f64, secs: f64) -> Vec<i16> {
        (0..(rate as f64 * secs) as usize)
            .map(|i| {
                (10000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / rate as f64).sin()) as i16
            })
            .collect()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn keeps_speech_band_and_removes_what_aliases() {
        // 1 kHz passes; 6 kHz (above 8 kHz's Nyquist) would alias to 2 kHz and must be filtered out.
        let pass = to_pcm8k(&encode(22050, &tone(22050, 1000.0, 0.5))).unwrap();
        let stop = to_pcm8k(&encode(22050, &tone(22050, 6000.0, 0.5))).unwrap();
        assert_eq!(pass.len(), 4000);
        let inner = |x: &[i16]| rms(&x[200..3800]);
        assert!(
            (inner(&pass) - 7071.0).abs() < 150.0,
            "1 kHz rms {}",
            inner(&pass)
        );
        assert!(inner(&stop) < 70.0, "6 kHz leaks: rms {}", inner(&stop));
    }

    #[test]
    fn reads_stereo_8_bit_and_g711() {
        let mut w = encode(8000, &[0, 0]);
        // stereo 16-bit: one frame (1000, 3000) -> 2000
        w[22] = 2;
        w[40..44].copy_from_slice(&4u32.to_le_bytes());
        w.truncate(44);
        w.extend_from_slice(&1000i16.to_le_bytes());
        w.extend_from_slice(&3000i16.to_le_bytes());
        assert_eq!(decode(&w).unwrap(), (8000, vec![2000]));
        let mut u = encode(8000, &[]);
        u[20] = 7; // u-law
        u[34] = 8;
        u[40..44].copy_from_slice(&2u32.to_le_bytes());
        u.extend_from_slice(&[0xFF, 0x80]);
        assert_eq!(decode(&u).unwrap().1, vec![0, 32124]);
    }

    #[test]
    fn streamed_size_and_garbage() {
        let mut w = encode(16000, &tone(16000, 500.0, 0.1));
        w[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(to_pcm8k(&w).unwrap().len(), 800);
        assert!(to_pcm8k(b"RIFF....WAVE").is_err());
        assert!(to_pcm8k(b"hello").is_err());
        let mut f = encode(8000, &[1, 2]);
        f[34] = 12;
        assert!(to_pcm8k(&f).unwrap_err().to_string().contains("12-bit"));
    }
}
